// The node's containers as state machines (containers.ts). Shows that a container only moves along the
// documented transitions, counts its calls and use, and that the table reports what it holds.
import { describe, expect, it } from 'vitest';
import { ContainerTable, fnKey, IllegalTransition, rtKey } from './containers.js';
import { put } from './containers.fixture.js';

describe('container state machine', () => {
  it('starts in creating and follows creating -> starting -> loading -> busy -> idle -> busy -> removing -> removed', () => {
    const t = new ContainerTable();
    const r = t.add({ id: 'c', owner: 'w1', key: fnKey('f', 1), runtime: 'node', lined: true }, 5);
    expect(r).toMatchObject({ state: 'creating', createdAt: 5, lastUsed: 5, calls: 0, lined: true });
    for (const s of ['starting', 'loading', 'busy', 'idle', 'busy', 'removing'] as const) t.move('c', s, 10);
    expect(t.get('c')?.state).toBe('removing');
    t.move('c', 'removed');
    expect(t.get('c')).toBeUndefined();
    expect(t.all()).toEqual([]);
  });

  it('lets a stem cell go starting -> warm -> loading -> busy, and a preloaded container warm -> busy', () => {
    const t = new ContainerTable();
    put(t, 'stem', 'warm', { key: rtKey('node') });
    t.move('stem', 'loading');
    t.move('stem', 'busy');
    put(t, 'pre', 'loading');
    t.move('pre', 'warm');
    t.move('pre', 'busy');
    expect(t.byState()).toMatchObject({ busy: 2, warm: 0, loading: 0 });
  });

  it('cancels only a busy container, and a cancelled one can only be removed', () => {
    const t = new ContainerTable();
    put(t, 'c', 'idle');
    expect(() => t.move('c', 'cancelling')).toThrow(IllegalTransition);
    t.move('c', 'busy');
    t.move('c', 'cancelling');
    expect(() => t.move('c', 'idle')).toThrow(IllegalTransition);
    expect(() => t.move('c', 'busy')).toThrow(IllegalTransition);
    t.move('c', 'removing');
    t.move('c', 'removed');
    expect(t.get('c')).toBeUndefined();
  });

  it.each([
    ['creating', 'warm'],
    ['creating', 'busy'],
    ['starting', 'idle'],
    ['loading', 'idle'],
    ['warm', 'idle'],
    ['busy', 'warm'],
    ['busy', 'loading'],
    ['idle', 'warm'],
    ['idle', 'loading'],
    ['removing', 'idle'],
    ['removing', 'busy'],
  ] as const)('refuses %s -> %s and leaves the container as it was', (from, to) => {
    const t = new ContainerTable();
    put(t, 'c', from);
    expect(() => t.move('c', to)).toThrow(IllegalTransition);
    expect(t.get('c')?.state).toBe(from);
  });

  it('counts calls when a container becomes busy and marks it used on busy and idle only', () => {
    const t = new ContainerTable();
    put(t, 'c', 'warm', { at: 1 });
    expect(t.get('c')).toMatchObject({ calls: 0, lastUsed: 1 });
    t.move('c', 'busy', 10);
    expect(t.get('c')).toMatchObject({ calls: 1, lastUsed: 10 });
    t.move('c', 'idle', 20);
    t.move('c', 'busy', 30);
    t.move('c', 'busy', 99); // already busy: no move, not a second call
    expect(t.get('c')).toMatchObject({ calls: 2, lastUsed: 30, createdAt: 1 });
    t.move('c', 'removing', 50);
    expect(t.get('c')?.lastUsed).toBe(30);
  });

  it('answers undefined for a container it does not know', () => {
    expect(new ContainerTable().move('nope', 'busy')).toBeUndefined();
  });

  it('counts live containers (not those on their way out) and reports warm functions and ready stem cells', () => {
    const t = new ContainerTable();
    put(t, 'a', 'creating', { key: fnKey('f', 1) });
    put(t, 'b', 'warm', { key: fnKey('f', 1) });
    put(t, 'c', 'idle', { key: fnKey('f', 1) });
    put(t, 'd', 'busy', { key: fnKey('g', 2) });
    put(t, 'e', 'cancelling', { key: fnKey('g', 2) });
    put(t, 'f', 'removing', { key: fnKey('f', 1) });
    put(t, 's1', 'warm', { key: rtKey('node') });
    put(t, 's2', 'starting', { key: rtKey('node') });
    put(t, 's3', 'warm', { key: rtKey('python'), runtime: 'python' });
    expect(t.live()).toBe(7);
    expect(t.count(fnKey('f', 1))).toBe(3);
    expect(t.count(fnKey('f', 1), ['removing'])).toBe(1);
    expect(t.warmByFunction()).toEqual({ 'f@1': 2, 'g@2': 1 });
    expect(t.stemsByRuntime()).toEqual({ node: 1, python: 1 });
    expect(t.byState()).toEqual({
      creating: 1,
      starting: 1,
      loading: 0,
      warm: 3,
      busy: 1,
      idle: 1,
      cancelling: 1,
      removing: 1,
      removed: 0,
    });
    expect(t.ownedBy('w1').length).toBe(9);
  });
});

describe('a container of several calls at once (slots)', () => {
  it('takes calls up to its slots while busy, stays busy until the last ends, and takes none once closed', () => {
    const t = new ContainerTable();
    t.add({ id: 'c', owner: 'w1', key: 'fn:f@1', runtime: 'node', lined: true, slots: 3 }, 0);
    t.move('c', 'starting', 0);
    t.move('c', 'busy', 1);
    t.join('c', 2);
    t.join('c', 3);
    expect(t.get('c')).toMatchObject({ state: 'busy', inflight: 3, calls: 3, lastUsed: 3 });
    expect(() => t.join('c')).toThrow(IllegalTransition);
    t.leave('c', 4);
    t.leave('c', 5);
    expect(() => t.leave('c')).toThrow(IllegalTransition); // the last one ends with idle
    t.move('c', 'idle', 6);
    expect(t.get('c')).toMatchObject({ state: 'idle', inflight: 0 });
    t.move('c', 'busy', 7);
    expect(t.spareSlots()).toBe(2); // what it may take beyond one call: the node takes that many more
    t.close('c');
    expect(() => t.join('c')).toThrow(IllegalTransition);
    expect(t.spareSlots()).toBe(0);
  });
});
