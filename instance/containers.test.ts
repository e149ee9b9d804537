// The node's containers as state machines, and the two pure decisions made over them: which container
// serves a call (decide) and which containers go (toEvict). Shows that a container only moves along the
// documented transitions; that a call uses a container already holding its function (a lined one even
// while its miniworker is busy, an exec one only when its miniworker is free, the most recently used
// first), then a stem cell (only without network, only on a free miniworker), then a new container on the
// least loaded free miniworker, and waits when nothing fits; and that eviction takes idle function
// containers past their TTL, stem cells beyond their runtime's target past the stem TTL and the least
// recently used spare containers over the cap, never a container that is busy or still starting.
import { describe, expect, it } from 'vitest';
import {
  ContainerTable,
  decide,
  fnKey,
  IllegalTransition,
  rtKey,
  toEvict,
  type ContainerState,
  type EvictInput,
  type PlacementInput,
} from './containers.js';

// The moves that bring a new container (in `creating`) to each state.
const PATH: Record<ContainerState, ContainerState[]> = {
  creating: [],
  starting: ['starting'],
  loading: ['starting', 'loading'],
  warm: ['starting', 'warm'],
  busy: ['starting', 'busy'],
  idle: ['starting', 'busy', 'idle'],
  cancelling: ['starting', 'busy', 'cancelling'],
  removing: ['removing'],
  removed: ['removed'],
};

interface Put {
  owner?: string;
  key?: string;
  runtime?: string;
  lined?: boolean;
  at?: number; // when it was created and last used
}

// Adds a container and moves it to `state` along legal transitions, all at time `at`.
function put(t: ContainerTable, id: string, state: ContainerState, o: Put = {}): void {
  const at = o.at ?? 0;
  t.add({ id, owner: o.owner ?? 'w1', key: o.key ?? fnKey('f', 1), runtime: o.runtime ?? 'node', lined: o.lined ?? true }, at);
  for (const s of PATH[state]) t.move(id, s, at);
}

const call = (p: Partial<PlacementInput> & { ready: string[] }): PlacementInput => ({
  policy: 'function',
  key: fnKey('f', 1),
  runtime: 'node',
  stemsAllowed: true,
  ...p,
});

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

describe('decide: which container serves a call', () => {
  it('policy none runs each call in a fresh container on the least loaded ready miniworker, even with a warm holder', () => {
    const t = new ContainerTable();
    put(t, 'warm', 'warm', { owner: 'w2' });
    put(t, 'x', 'idle', { owner: 'w1', key: fnKey('x', 1) });
    expect(decide(t, call({ policy: 'none', ready: ['w1', 'w2', 'w3'] }))).toEqual({ kind: 'once', worker: 'w3' });
    expect(decide(t, call({ policy: 'none', ready: ['w1'] }))).toEqual({ kind: 'once', worker: 'w1' });
  });

  it('policy none waits without a ready miniworker, even when a warm container holds the function', () => {
    const t = new ContainerTable();
    put(t, 'warm', 'warm', { owner: 'w1', lined: true });
    expect(decide(t, call({ policy: 'none', ready: [] }))).toEqual({ kind: 'wait' });
  });

  it('uses a lined warm or idle holder even while its owner miniworker is busy', () => {
    const t = new ContainerTable();
    put(t, 'c', 'idle', { owner: 'w1', lined: true });
    expect(decide(t, call({ ready: [] }))).toEqual({ kind: 'use', id: 'c' });
    expect(decide(t, call({ ready: ['w2'] }))).toEqual({ kind: 'use', id: 'c' });
    const u = new ContainerTable();
    put(u, 'p', 'warm', { owner: 'w1', lined: true });
    expect(decide(u, call({ ready: [] }))).toEqual({ kind: 'use', id: 'p' });
  });

  it('uses an exec (not lined) holder only when its owner is ready', () => {
    const t = new ContainerTable();
    put(t, 'c', 'idle', { owner: 'w1', lined: false });
    expect(decide(t, call({ ready: ['w1'] }))).toEqual({ kind: 'use', id: 'c' });
    expect(decide(t, call({ ready: ['w2'] }))).toEqual({ kind: 'create', worker: 'w2' });
    expect(decide(t, call({ ready: [] }))).toEqual({ kind: 'wait' });
  });

  it('picks the most recently used holder', () => {
    const t = new ContainerTable();
    put(t, 'old', 'idle', { owner: 'w1', at: 10 });
    put(t, 'new', 'idle', { owner: 'w2', at: 30 });
    put(t, 'mid', 'warm', { owner: 'w3', at: 20 });
    expect(decide(t, call({ ready: ['w1', 'w2', 'w3'] }))).toEqual({ kind: 'use', id: 'new' });
    t.move('new', 'busy', 40);
    expect(decide(t, call({ ready: ['w1', 'w2', 'w3'] }))).toEqual({ kind: 'use', id: 'mid' });
    // an exec holder that is more recent but whose owner is busy does not win
    put(t, 'exec', 'idle', { owner: 'w4', lined: false, at: 50 });
    expect(decide(t, call({ ready: ['w1'] }))).toEqual({ kind: 'use', id: 'mid' });
    expect(decide(t, call({ ready: ['w1', 'w4'] }))).toEqual({ kind: 'use', id: 'exec' });
  });

  it.each(['creating', 'starting', 'loading', 'busy', 'cancelling', 'removing'] as const)(
    'never gives a call to a holder that is %s',
    (state) => {
      const t = new ContainerTable();
      put(t, 'c', state, { owner: 'w1' });
      expect(decide(t, call({ ready: ['w2'] }))).toEqual({ kind: 'create', worker: 'w2' });
    },
  );

  it('does not use a container of another function or another version', () => {
    const t = new ContainerTable();
    put(t, 'v1', 'idle', { owner: 'w1', key: fnKey('f', 1) });
    put(t, 'g', 'idle', { owner: 'w1', key: fnKey('g', 2) });
    expect(decide(t, call({ key: fnKey('f', 2), ready: ['w2'] }))).toEqual({ kind: 'create', worker: 'w2' });
    expect(decide(t, call({ key: fnKey('g', 1), ready: ['w2'] }))).toEqual({ kind: 'create', worker: 'w2' });
  });

  it('gives a warm stem cell of the runtime the function when no holder is free and its owner is ready', () => {
    const t = new ContainerTable();
    put(t, 'busy', 'busy', { owner: 'w1' });
    put(t, 'stem', 'warm', { owner: 'w2', key: rtKey('node') });
    put(t, 'c1', 'idle', { owner: 'w3', key: fnKey('x', 1) });
    expect(decide(t, call({ ready: ['w2', 'w3'] }))).toEqual({ kind: 'adopt', worker: 'w2', id: 'stem' });
    // a holder beats the stem cell
    put(t, 'idle', 'idle', { owner: 'w1' });
    expect(decide(t, call({ ready: ['w2', 'w3'] }))).toEqual({ kind: 'use', id: 'idle' });
  });

  it('does not use a stem cell for a function with network, whose owner is busy, of another runtime, or not yet warm', () => {
    const t = new ContainerTable();
    put(t, 'stem', 'warm', { owner: 'w1', key: rtKey('node') });
    put(t, 'py', 'warm', { owner: 'w2', key: rtKey('python'), runtime: 'python' });
    put(t, 'starting', 'starting', { owner: 'w2', key: rtKey('node') });
    expect(decide(t, call({ stemsAllowed: false, ready: ['w1'] }))).toEqual({ kind: 'create', worker: 'w1' });
    expect(decide(t, call({ ready: ['w2', 'w3'] }))).toEqual({ kind: 'create', worker: 'w3' });
    expect(decide(t, call({ runtime: 'go', ready: ['w1'] }))).toEqual({ kind: 'create', worker: 'w1' });
  });

  it('creates on the ready miniworker holding the fewest containers', () => {
    const t = new ContainerTable();
    put(t, 'a', 'idle', { owner: 'w1', key: fnKey('x', 1) });
    put(t, 'b', 'busy', { owner: 'w1', key: fnKey('y', 1) });
    put(t, 'c', 'starting', { owner: 'w2', key: fnKey('z', 1) });
    put(t, 'd', 'idle', { owner: 'w3', key: fnKey('x', 1) });
    put(t, 'e', 'idle', { owner: 'w3', key: fnKey('x', 1) });
    put(t, 'f', 'idle', { owner: 'w3', key: fnKey('x', 1) });
    expect(decide(t, call({ ready: ['w1', 'w2', 'w3'] }))).toEqual({ kind: 'create', worker: 'w2' });
    expect(decide(t, call({ ready: ['w1', 'w3'] }))).toEqual({ kind: 'create', worker: 'w1' });
    // a miniworker that holds nothing at all
    expect(decide(t, call({ ready: ['w3', 'w9'] }))).toEqual({ kind: 'create', worker: 'w9' });
  });

  it('waits when no holder is free and no miniworker is ready', () => {
    const t = new ContainerTable();
    put(t, 'busy', 'busy', { owner: 'w1' });
    put(t, 'stem', 'warm', { owner: 'w2', key: rtKey('node') });
    expect(decide(t, call({ ready: [] }))).toEqual({ kind: 'wait' });
    expect(decide(new ContainerTable(), call({ ready: [] }))).toEqual({ kind: 'wait' });
  });
});

describe('toEvict: which containers go', () => {
  const evict = (t: ContainerTable, o: Partial<EvictInput>): string[] =>
    toEvict(t, { idleTtlMs: 500, maxContainers: 100, stemTarget: () => 0, stemTtlMs: 500, now: 1000, ...o })
      .map((r) => r.id)
      .sort();

  it('removes idle and warm function containers unused past the idle TTL', () => {
    const t = new ContainerTable();
    put(t, 'stale', 'idle', { at: 100 });
    put(t, 'preloaded', 'warm', { key: fnKey('g', 1), at: 0 });
    put(t, 'fresh', 'idle', { key: fnKey('h', 1), at: 600 });
    put(t, 'edge', 'idle', { key: fnKey('h', 1), at: 500 }); // exactly the TTL: stays
    expect(evict(t, {})).toEqual(['preloaded', 'stale']);
  });

  it('never removes a busy, creating, starting or loading container, however old', () => {
    const t = new ContainerTable();
    for (const s of ['creating', 'starting', 'loading', 'busy', 'cancelling', 'removing'] as const) put(t, s, s, { at: 0 });
    put(t, 'stem', 'starting', { key: rtKey('node'), at: 0 });
    expect(evict(t, {})).toEqual([]);
    expect(evict(t, { maxContainers: 1 })).toEqual([]);
  });

  it('removes stem cells beyond their runtime target once they have waited past the stem TTL, oldest first', () => {
    const t = new ContainerTable();
    put(t, 'a', 'warm', { key: rtKey('node'), at: 0 });
    put(t, 'b', 'warm', { key: rtKey('node'), at: 100 });
    put(t, 'c', 'warm', { key: rtKey('node'), at: 900 }); // younger than the stem TTL
    put(t, 'p', 'warm', { key: rtKey('python'), runtime: 'python', at: 0 });
    const target = (n: Record<string, number>) => (rt: string) => n[rt] ?? 0;
    expect(evict(t, { stemTarget: target({ node: 3, python: 1 }) })).toEqual([]);
    expect(evict(t, { stemTarget: target({ node: 2, python: 1 }) })).toEqual(['a']);
    expect(evict(t, { stemTarget: target({ node: 1, python: 1 }) })).toEqual(['a', 'b']);
    // beyond the target, but the young one waits for its TTL
    expect(evict(t, { stemTarget: target({ node: 0, python: 0 }) })).toEqual(['a', 'b', 'p']);
    // stem cells are not function containers: the idle TTL does not touch them
    expect(evict(t, { idleTtlMs: 0, stemTarget: target({ node: 3, python: 1 }) })).toEqual([]);
  });

  it('over the cap, removes the least recently used spare containers until the live ones fit', () => {
    const t = new ContainerTable();
    put(t, 'busy', 'busy', { at: 0 });
    put(t, 'starting', 'starting', { key: fnKey('s', 1), at: 0 });
    put(t, 'i1', 'idle', { key: fnKey('a', 1), at: 700 });
    put(t, 'i2', 'idle', { key: fnKey('b', 1), at: 800 });
    put(t, 'stem', 'warm', { key: rtKey('node'), at: 750 });
    put(t, 'i3', 'idle', { key: fnKey('c', 1), at: 900 });
    put(t, 'gone', 'removing', { key: fnKey('d', 1), at: 0 }); // does not count
    const target = () => 1;
    expect(evict(t, { maxContainers: 6, stemTarget: target })).toEqual([]);
    expect(evict(t, { maxContainers: 4, stemTarget: target })).toEqual(['i1', 'stem']);
    expect(evict(t, { maxContainers: 0, stemTarget: target })).toEqual(['i1', 'i2', 'i3', 'stem']);
  });

  it('counts what the TTLs already remove towards the cap', () => {
    const t = new ContainerTable();
    put(t, 'old', 'idle', { key: fnKey('a', 1), at: 0 });
    put(t, 'i1', 'idle', { key: fnKey('b', 1), at: 800 });
    put(t, 'i2', 'idle', { key: fnKey('c', 1), at: 900 });
    expect(evict(t, { maxContainers: 2 })).toEqual(['old']);
    expect(evict(t, { maxContainers: 1 })).toEqual(['i1', 'old']);
  });
});
