// The container pool's state machine and its one placement decision.
import { describe, expect, it } from 'vitest';
import { ContainerTable, decide, fnKey, IllegalTransition, rtKey, toEvict } from './containers.js';

const base = { policy: 'function' as const, key: fnKey('f', 1), runtime: 'node', stemsAllowed: true };

describe('container states', () => {
  it('follows starting -> warm -> busy -> idle -> busy -> removed and refuses other moves', () => {
    const t = new ContainerTable();
    t.add({ id: 'c1', owner: 'w1', key: fnKey('f', 1), runtime: 'node' });
    expect(() => t.move('c1', 'idle')).toThrow(IllegalTransition);
    t.move('c1', 'warm');
    expect(() => t.move('c1', 'idle')).toThrow(IllegalTransition);
    t.move('c1', 'busy');
    t.move('c1', 'idle');
    t.move('c1', 'busy');
    expect(t.get('c1')?.calls).toBe(2);
    t.move('c1', 'removed');
    expect(t.get('c1')).toBeUndefined();
    expect(t.byState()).toMatchObject({ busy: 0, idle: 0 });
  });
});

describe('which container serves a call', () => {
  it('waits when no miniworker is free', () => {
    expect(decide(new ContainerTable(), { ...base, ready: [] })).toEqual({ kind: 'wait' });
  });

  it('policy none always gets a fresh container, even with a warm one present', () => {
    const t = new ContainerTable();
    t.add({ id: 'c1', owner: 'w1', key: fnKey('f', 1), runtime: 'node' });
    t.move('c1', 'warm');
    expect(decide(t, { ...base, policy: 'none', ready: ['w1'] })).toEqual({ kind: 'once', worker: 'w1' });
  });

  it('prefers the most recently used container holding the function, then a stem cell, then a new one', () => {
    const t = new ContainerTable();
    t.add({ id: 'old', owner: 'w1', key: fnKey('f', 1), runtime: 'node' }, 'starting', 1);
    t.add({ id: 'new', owner: 'w2', key: fnKey('f', 1), runtime: 'node' }, 'starting', 1);
    t.add({ id: 'stem', owner: 'w3', key: rtKey('node'), runtime: 'node' });
    for (const id of ['old', 'new', 'stem']) t.move(id, 'warm');
    t.move('old', 'busy', 10);
    t.move('old', 'idle', 10);
    t.move('new', 'busy', 20);
    t.move('new', 'idle', 20);
    expect(decide(t, { ...base, ready: ['w1', 'w2', 'w3'] })).toEqual({ kind: 'use', worker: 'w2', id: 'new' });
    // holders' miniworkers busy: the stem cell takes it
    expect(decide(t, { ...base, ready: ['w3'] })).toEqual({ kind: 'adopt', worker: 'w3', id: 'stem' });
    // another version is another function
    expect(decide(t, { ...base, key: fnKey('f', 2), ready: ['w1'] })).toEqual({ kind: 'create', worker: 'w1' });
    // a function with network cannot use a stem cell (they have none)
    expect(decide(t, { ...base, key: fnKey('g', 1), stemsAllowed: false, ready: ['w3'] })).toEqual({ kind: 'create', worker: 'w3' });
  });

  it('never gives a busy container a second call', () => {
    const t = new ContainerTable();
    t.add({ id: 'c', owner: 'w1', key: fnKey('f', 1), runtime: 'node' });
    t.move('c', 'busy');
    expect(decide(t, { ...base, ready: ['w2'] })).toEqual({ kind: 'create', worker: 'w2' });
  });

  it('creates on the miniworker holding the fewest containers', () => {
    const t = new ContainerTable();
    t.add({ id: 'a', owner: 'w1', key: fnKey('x', 1), runtime: 'node' });
    t.add({ id: 'b', owner: 'w1', key: fnKey('y', 1), runtime: 'node' });
    t.add({ id: 'c', owner: 'w2', key: fnKey('z', 1), runtime: 'node' });
    expect(decide(t, { ...base, ready: ['w1', 'w2', 'w3'] })).toEqual({ kind: 'create', worker: 'w3' });
  });
});

describe('eviction', () => {
  it('removes idle function containers past the TTL and the least recently used over the cap, never stem cells or busy ones', () => {
    const t = new ContainerTable();
    t.add({ id: 'stale', owner: 'w1', key: fnKey('a', 1), runtime: 'node' }, 'starting', 0);
    t.add({ id: 'lru', owner: 'w1', key: fnKey('b', 1), runtime: 'node' }, 'starting', 0);
    t.add({ id: 'fresh', owner: 'w1', key: fnKey('c', 1), runtime: 'node' }, 'starting', 0);
    t.add({ id: 'busy', owner: 'w1', key: fnKey('d', 1), runtime: 'node' }, 'starting', 0);
    t.add({ id: 'stem', owner: 'w1', key: rtKey('node'), runtime: 'node' }, 'starting', 0);
    t.move('stale', 'warm');
    t.get('stale')!.lastUsed = 0;
    t.move('lru', 'busy', 900);
    t.move('lru', 'idle', 900);
    t.move('fresh', 'busy', 950);
    t.move('fresh', 'idle', 950);
    t.move('busy', 'busy', 0);
    t.move('stem', 'warm');
    t.get('stem')!.lastUsed = 0;
    const ids = (maxContainers: number): string[] =>
      toEvict(t, { idleTtlMs: 500, maxContainers, now: 1000 })
        .map((r) => r.id)
        .sort();
    expect(ids(10)).toEqual(['stale']);
    expect(ids(3)).toEqual(['lru', 'stale']);
  });
});
