// The node's one scheduling decision (placement.ts), without Docker: which container serves each call,
// which chores a free miniworker takes, and which spare container goes to make room. Shows that a call uses
// a container already holding its function (a lined one even while its miniworker is busy, an exec one only
// when its miniworker is free, the most recently used first), then a stem cell (only without network, only
// on a free miniworker), then a new container on the least loaded free miniworker, and waits when nothing
// fits; that nothing that makes a container starts while the node holds its limit, counting every container
// on the engine, and that a full node removes one spare container per waiting call (none while a removal
// already under way will make the room); that a function never holds more than its own limit; that urgent
// chores go before calls and spare ones only into room no call wants; and, for random tables and queues,
// that a plan never gives a miniworker two jobs, a container two calls, or the node more than its limit.
// Several calls per container (slots > 1): a container with a free slot takes the call, the fullest first,
// a closed one none, a container being made counts as its slots, and for random tables a container never
// gets more calls than its slots. Also which containers the reaper takes (toEvict).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContainerTable, fnKey, rtKey, type ContainerState } from './containers.js';
import { put } from './containers.fixture.js';
import {
  plan,
  QUICK_WAIT_MIN_MS,
  toEvict,
  type CallNeed,
  type ChoreNeed,
  type Decision,
  type EvictInput,
  type PlanInput,
} from './placement.js';

interface One extends Partial<CallNeed> {
  ready: string[];
  max?: number;
  transient?: number;
}
const call = (p: One): One => p;

// The decision plan() makes for one call alone (evictions aside), or 'wait'.
function decide(t: ContainerTable, p: One): Decision | { kind: 'wait' } {
  const need: CallNeed = { policy: 'function', key: fnKey('f', 1), runtime: 'node', stemsAllowed: true, ...p };
  const actions = plan({
    containers: t.all(),
    transient: p.transient ?? 0,
    calls: [need],
    chores: [],
    ready: p.ready,
    maxContainers: p.max ?? 100,
  });
  const a = actions.find((x) => x.kind === 'call');
  return a?.kind === 'call' ? a.decision : { kind: 'wait' };
}

describe('one call: which container serves it', () => {
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
    expect(decide(t, call({ ready: ['w1'] }))).toEqual({ kind: 'use', id: 'c', worker: 'w1' });
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
    expect(decide(t, call({ ready: ['w1', 'w4'] }))).toEqual({ kind: 'use', id: 'exec', worker: 'w4' });
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
    toEvict(t.all(), { idleTtlMs: 500, maxContainers: 100, stemTarget: () => 0, stemTtlMs: 500, now: 1000, ...o })
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

  it('lets a quick function keep its bound: its idle containers beyond it go, the least recently used first', () => {
    const t = new ContainerTable();
    put(t, 'busy1', 'busy', { at: 900 });
    put(t, 'busy2', 'busy', { at: 950 });
    put(t, 'idle-old', 'idle', { at: 700 });
    put(t, 'idle-new', 'idle', { at: 990 });
    put(t, 'other', 'idle', { key: fnKey('g', 1), at: 990 });
    const bound = (n: number | undefined) => (key: string) => (key === fnKey('f', 1) ? n : undefined);
    expect(evict(t, { quickBound: bound(2) })).toEqual(['idle-new', 'idle-old']);
    expect(evict(t, { quickBound: bound(3) })).toEqual(['idle-old']);
    expect(evict(t, { quickBound: bound(undefined) })).toEqual([]); // not quick: the idle TTL decides
    // never below its floor (minWarm)
    expect(evict(t, { quickBound: bound(2), floor: (key) => (key === fnKey('f', 1) ? 3 : 0) })).toEqual(['idle-old']);
  });

  it("keeps a function's floor (minWarm) past the idle TTL: busy ones count first, then the most recently used", () => {
    const t = new ContainerTable();
    put(t, 'old', 'idle', { at: 0 });
    put(t, 'older', 'idle', { at: -50 });
    put(t, 'newest', 'warm', { at: 100 });
    put(t, 'other', 'idle', { key: fnKey('g', 1), at: 0 });
    const floor = (n: number) => (key: string) => (key === fnKey('f', 1) ? n : 0);
    expect(evict(t, { floor: floor(0) })).toEqual(['newest', 'old', 'older', 'other']);
    expect(evict(t, { floor: floor(2) })).toEqual(['older', 'other']);
    expect(evict(t, { floor: floor(5) })).toEqual(['other']);
    put(t, 'running', 'busy', { at: 0 });
    expect(evict(t, { floor: floor(2) })).toEqual(['old', 'older', 'other']); // the busy one is one of the two
    // Over the node's cap, the floor gives way like any spare container.
    expect(evict(t, { floor: floor(5), maxContainers: 1 })).toEqual(['newest', 'old', 'older', 'other']);
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

describe('the node limit: room for new containers', () => {
  const needs = (n: number, o: Partial<CallNeed> = {}): CallNeed[] =>
    Array.from({ length: n }, () => ({ policy: 'function', key: fnKey('f', 1), runtime: 'node', stemsAllowed: true, ...o }));
  const run = (t: ContainerTable, p: Partial<PlanInput>) =>
    plan({ containers: t.all(), transient: 0, calls: [], chores: [], ready: ['w1', 'w2', 'w3', 'w4'], maxContainers: 4, ...p });

  it('creates only while the node holds fewer containers than its limit, counting every state and fresh runs', () => {
    const t = new ContainerTable();
    put(t, 'b1', 'busy', { owner: 'w1' });
    put(t, 'c1', 'creating', { owner: 'w2', key: fnKey('g', 1) });
    put(t, 'r1', 'removing', { owner: 'w2', key: fnKey('g', 1) });
    // 3 on the engine, limit 4: one create, the other calls wait (a removal is under way: no eviction)
    expect(run(t, { calls: needs(3) })).toEqual([{ kind: 'call', index: 0, decision: { kind: 'create', worker: 'w3' } }]);
    // a fresh run under way takes the last place
    expect(run(t, { calls: needs(3), transient: 1 })).toEqual([]);
    expect(decide(t, call({ ready: ['w3'], max: 3 }))).toEqual({ kind: 'wait' });
    expect(decide(t, call({ policy: 'none', ready: ['w3'], max: 3 }))).toEqual({ kind: 'wait' });
    expect(decide(t, call({ policy: 'none', ready: ['w3'], max: 4 }))).toEqual({ kind: 'once', worker: 'w3' });
  });

  it('still serves a call from a container that holds its function when the node is full', () => {
    const t = new ContainerTable();
    put(t, 'i', 'idle', { owner: 'w1' });
    put(t, 'b', 'busy', { owner: 'w2' });
    expect(decide(t, call({ ready: [], max: 2 }))).toEqual({ kind: 'use', id: 'i' });
  });

  it('when full, removes one spare container per waiting call, the least recently used of other functions first', () => {
    const t = new ContainerTable();
    put(t, 'b', 'busy', { owner: 'w1', at: 1 });
    put(t, 'own', 'idle', { owner: 'w2', lined: false, at: 2 }); // its function's, but its owner is busy
    put(t, 'old', 'idle', { owner: 'w2', key: fnKey('g', 1), at: 3 });
    put(t, 'stem', 'warm', { owner: 'w2', key: rtKey('python'), runtime: 'python', at: 4 });
    const actions = run(t, { calls: needs(3), ready: ['w3'] });
    expect(actions).toEqual([
      { kind: 'evict', id: 'old' },
      { kind: 'evict', id: 'stem' },
      { kind: 'evict', id: 'own' },
    ]);
    // a fourth waiting call finds nothing more to remove: it just waits
    expect(run(t, { calls: needs(4), ready: ['w3'] }).filter((a) => a.kind === 'evict')).toHaveLength(3);
  });

  it('counts removals under way as room coming, and evicts nothing more while they cover the waiting calls', () => {
    const t = new ContainerTable();
    put(t, 'g1', 'removing', { owner: 'w1', key: fnKey('g', 1) });
    put(t, 'g2', 'cancelling', { owner: 'w1', key: fnKey('g', 1) });
    put(t, 'i1', 'idle', { owner: 'w1', key: fnKey('h', 1) });
    put(t, 'i2', 'idle', { owner: 'w1', key: fnKey('h', 1) });
    expect(run(t, { calls: needs(2) })).toEqual([]);
    expect(run(t, { calls: needs(3) })).toEqual([{ kind: 'evict', id: 'i1' }]);
  });

  it('holds a function to its own limit on the node: its calls wait for its containers, without evicting', () => {
    const t = new ContainerTable();
    put(t, 'b1', 'busy', { owner: 'w1' });
    put(t, 'b2', 'loading', { owner: 'w2' });
    put(t, 'x', 'removing', { owner: 'w2' }); // on its way out: not one of its containers any more
    put(t, 'stem', 'warm', { owner: 'w3', key: rtKey('node') });
    expect(decide(t, call({ ready: ['w3', 'w4'], maxContainers: 2 }))).toEqual({ kind: 'wait' });
    expect(decide(t, call({ ready: ['w3', 'w4'], maxContainers: 3 }))).toEqual({ kind: 'adopt', worker: 'w3', id: 'stem' });
    const two = run(t, { calls: needs(2, { maxContainers: 3 }), maxContainers: 100 });
    expect(two).toEqual([{ kind: 'call', index: 0, decision: { kind: 'adopt', worker: 'w3', id: 'stem' } }]);
  });

  it('a call that needs a miniworker and finds none waits without making room', () => {
    const t = new ContainerTable();
    put(t, 'i', 'idle', { owner: 'w1', key: fnKey('g', 1) });
    expect(run(t, { calls: needs(1), ready: [], maxContainers: 1 })).toEqual([]);
  });
});

describe('chores', () => {
  const need: CallNeed = { policy: 'function', key: fnKey('f', 1), runtime: 'node', stemsAllowed: true };
  const urgent: ChoreNeed = { urgent: true, room: true };
  const sweep: ChoreNeed = { urgent: true, room: false };
  const spare: ChoreNeed = { urgent: false, room: true };
  const run = (t: ContainerTable, p: Partial<PlanInput>) =>
    plan({ containers: t.all(), transient: 0, calls: [], chores: [], ready: ['w1', 'w2'], maxContainers: 4, ...p });

  it('gives urgent chores the free miniworkers before calls, and spare ones what is left', () => {
    const actions = run(new ContainerTable(), { chores: [spare, urgent], calls: [need] });
    expect(actions).toEqual([
      { kind: 'chore', index: 1, worker: 'w1' },
      { kind: 'call', index: 0, decision: { kind: 'create', worker: 'w2' } },
    ]);
    expect(run(new ContainerTable(), { chores: [spare, urgent], ready: ['w1', 'w2', 'w3'] })).toEqual([
      { kind: 'chore', index: 1, worker: 'w1' },
      { kind: 'chore', index: 0, worker: 'w2' },
    ]);
  });

  it('drops a spare chore when a call waits for room or there is none; a sweep needs no room', () => {
    const t = new ContainerTable();
    for (const id of ['a', 'b', 'c', 'd']) put(t, id, 'busy', { owner: 'w1' });
    expect(run(t, { chores: [spare, sweep] })).toEqual([
      { kind: 'chore', index: 1, worker: 'w2' },
      { kind: 'drop', index: 0 },
    ]);
    const u = new ContainerTable();
    for (const id of ['a', 'b', 'c']) put(u, id, 'busy', { owner: 'w1' });
    put(u, 'i', 'idle', { owner: 'w1', key: fnKey('g', 1) });
    const actions = run(u, { chores: [spare], calls: [need] });
    expect(actions).toEqual([
      { kind: 'evict', id: 'i' },
      { kind: 'drop', index: 0 },
    ]);
  });
});

describe('preloads', () => {
  const preload: ChoreNeed = { urgent: false, room: true, evicts: 0 };
  it('makes room for a preload on a full node by removing a spare container, unless a call waits for room', () => {
    const t = new ContainerTable();
    put(t, 'b', 'busy', { owner: 'w1' });
    put(t, 'i', 'idle', { owner: 'w1', key: fnKey('g', 1) });
    const run = (p: Partial<PlanInput>) =>
      plan({ containers: t.all(), transient: 0, calls: [], chores: [], ready: ['w2'], maxContainers: 2, ...p });
    expect(run({ chores: [preload] })).toEqual([{ kind: 'evict', id: 'i' }]);
    const need: CallNeed = { policy: 'function', key: fnKey('h', 1), runtime: 'node', stemsAllowed: true };
    expect(run({ chores: [preload], calls: [need] })).toEqual([
      { kind: 'evict', id: 'i' },
      { kind: 'drop', index: 0 },
    ]);
    expect(run({ chores: [preload], maxContainers: 3 })).toEqual([{ kind: 'chore', index: 0, worker: 'w2' }]);
  });

  it('gives the room a preload made to the preload, not to a stem cell asked for before it', () => {
    const stem: ChoreNeed = { urgent: false, room: true, evicts: 10_000 };
    const full = new ContainerTable();
    put(full, 'b', 'busy', { owner: 'w1' });
    put(full, 'i', 'idle', { owner: 'w1', key: fnKey('g', 1), at: 1000 });
    const run = (t: ContainerTable) =>
      plan({ containers: t.all(), transient: 0, calls: [], chores: [stem, preload], ready: ['w2'], maxContainers: 2, now: 2000 });
    expect(run(full)).toEqual([{ kind: 'evict', id: 'i' }]); // for the preload: the stem cell would wait 10 s
    const roomMade = new ContainerTable(); // 'i' is gone
    put(roomMade, 'b', 'busy', { owner: 'w1' });
    expect(run(roomMade)).toEqual([{ kind: 'chore', index: 1, worker: 'w2' }]);
  });

  it('never removes a stem cell for a chore: a full node of stem cells and busy containers makes no room for it', () => {
    const t = new ContainerTable();
    put(t, 'b', 'busy', { owner: 'w1' });
    put(t, 's', 'warm', { owner: 'w1', key: rtKey('python'), runtime: 'python' });
    const actions = plan({ containers: t.all(), transient: 0, calls: [], chores: [preload], ready: ['w2'], maxContainers: 2 });
    expect(actions).toEqual([]);
  });

  it('a stem cell takes the place of an idle function container only once it has been unused long enough', () => {
    const stem: ChoreNeed = { urgent: false, room: true, evicts: 10_000 };
    const t = new ContainerTable();
    put(t, 'b', 'busy', { owner: 'w1' });
    put(t, 'i', 'idle', { owner: 'w1', key: fnKey('g', 1), at: 1000 });
    const run = (now: number) =>
      plan({ containers: t.all(), transient: 0, calls: [], chores: [stem], ready: ['w2'], maxContainers: 2, now });
    expect(run(5000)).toEqual([]);
    expect(run(11_000)).toEqual([{ kind: 'evict', id: 'i' }]);
  });
});

describe('a plan, for any table and queue', () => {
  const STATES: ContainerState[] = ['creating', 'starting', 'loading', 'warm', 'busy', 'idle', 'cancelling', 'removing'];
  const workers = ['w1', 'w2', 'w3'];
  const arbContainer = fc.record({
    state: fc.constantFrom(...STATES),
    owner: fc.constantFrom(...workers),
    fn: fc.constantFrom('f', 'g', 'stem'),
    lined: fc.boolean(),
    at: fc.nat(100),
    behind: fc.boolean(),
  });
  const arbCall = fc.record({
    policy: fc.constantFrom('none', 'runtime', 'function') as fc.Arbitrary<CallNeed['policy']>,
    fn: fc.constantFrom('f', 'g', 'h'),
    stemsAllowed: fc.boolean(),
    maxContainers: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    quickMs: fc.option(fc.constantFrom(1, 20), { nil: undefined }),
  });
  const arbChore = fc.record({
    urgent: fc.boolean(),
    room: fc.boolean(),
    evicts: fc.option(fc.constantFrom(0, 10_000), { nil: undefined }),
  });

  it('never gives a miniworker two jobs, a container two calls (but one behind its own), or the node more containers than its limit', () => {
    let behinds = 0;
    fc.assert(
      fc.property(
        fc.array(arbContainer, { maxLength: 12 }),
        fc.array(arbCall, { maxLength: 10 }),
        fc.array(arbChore, { maxLength: 4 }),
        fc.subarray(workers),
        fc.integer({ min: 1, max: 12 }),
        fc.nat(3),
        (cs, calls, chores, ready, max, transient) => {
          const t = new ContainerTable();
          cs.forEach((c, i) => {
            const key = c.fn === 'stem' ? rtKey('node') : fnKey(c.fn, 1);
            const lined = c.fn === 'stem' ? true : c.lined;
            put(t, `c${i}`, c.state, { owner: c.owner, key, lined, at: c.at, behind: c.behind && c.state === 'busy' && lined });
          });
          const needs: CallNeed[] = calls.map((c) => ({ ...c, key: fnKey(c.fn, 1), runtime: 'node' }));
          const actions = plan({ containers: t.all(), transient, calls: needs, chores, ready, maxContainers: max, now: 120, cpus: 2 });
          const usedWorkers: string[] = [];
          const usedContainers: string[] = [];
          let made = 0;
          const perKey = new Map<string, number>();
          for (const r of t.all()) if (!['cancelling', 'removing'].includes(r.state)) perKey.set(r.key, (perKey.get(r.key) ?? 0) + 1);
          for (const a of actions) {
            if (a.kind === 'chore') {
              usedWorkers.push(a.worker);
              if (chores[a.index]!.room) made++;
            } else if (a.kind === 'evict') {
              expect(usedContainers).not.toContain(a.id);
              expect(['warm', 'idle']).toContain(t.get(a.id)!.state);
              usedContainers.push(a.id);
            } else if (a.kind === 'call') {
              const d = a.decision;
              const key = needs[a.index]!.key;
              if (d.kind === 'once' || d.kind === 'create') {
                made++;
                usedWorkers.push(d.worker);
              }
              if (d.kind === 'adopt') usedWorkers.push(d.worker);
              if (d.kind === 'use' && d.worker) usedWorkers.push(d.worker);
              if (d.kind === 'behind') {
                // Only behind a quick function's own call over a line, one at a time, within the wait.
                usedContainers.push(d.id);
                behinds++;
                const r = t.get(d.id)!;
                expect([r.state, r.key, r.lined, r.slots, r.closed, r.behind]).toEqual(['busy', key, true, 1, false, false]);
                expect(needs[a.index]!.quickMs).toBeDefined();
                expect(120 - r.lastUsed).toBeLessThan(Math.max(QUICK_WAIT_MIN_MS, 4 * needs[a.index]!.quickMs!));
              }
              if (d.kind === 'use' || d.kind === 'adopt') {
                usedContainers.push(d.id);
                const r = t.get(d.id)!;
                expect(['warm', 'idle']).toContain(r.state);
                expect(r.key).toBe(d.kind === 'use' ? key : rtKey('node'));
              }
              if (d.kind === 'create' || d.kind === 'adopt') {
                perKey.set(key, (perKey.get(key) ?? 0) + 1);
                const cap = needs[a.index]!.maxContainers;
                if (cap !== undefined) expect(perKey.get(key)).toBeLessThanOrEqual(cap);
              }
            }
          }
          for (const w of usedWorkers) expect(ready).toContain(w);
          expect(new Set(usedWorkers).size).toBe(usedWorkers.length);
          expect(new Set(usedContainers).size).toBe(usedContainers.length);
          // nothing new beyond the limit (a node already over it, after its limit was lowered, makes nothing)
          expect(made).toBeLessThanOrEqual(Math.max(0, max - t.all().length - transient));
        },
      ),
      { numRuns: 2000 },
    );
    expect(behinds).toBeGreaterThan(0); // the runs did put calls behind others
  });
});

describe('several calls per container (slots)', () => {
  const key = fnKey('f', 1);
  const need = (slots: number, o: Partial<CallNeed> = {}): CallNeed => ({
    policy: 'function',
    key,
    runtime: 'node',
    stemsAllowed: false,
    slots,
    ...o,
  });
  const calls = (actions: ReturnType<typeof plan>) => actions.flatMap((a) => (a.kind === 'call' ? [a.decision] : []));

  it('makes one container for each N calls of a burst: the others wait for the slots of those being made', () => {
    const t = new ContainerTable();
    const ready = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8'];
    const d = calls(
      plan({ containers: [], transient: 0, calls: Array.from({ length: 16 }, () => need(4)), chores: [], ready, maxContainers: 100 }),
    );
    expect(d.filter((x) => x.kind === 'create')).toHaveLength(4);
    expect(d).toHaveLength(4); // the other 12 wait
    // once made (creating, 4 slots each), the queue's calls still wait for them instead of making more
    ['a', 'b', 'c', 'd'].forEach((id) => put(t, id, 'creating', { slots: 4 }));
    expect(
      calls(
        plan({
          containers: t.all(),
          transient: 0,
          calls: Array.from({ length: 12 }, () => need(4)),
          chores: [],
          ready,
          maxContainers: 100,
        }),
      ),
    ).toEqual([]);
    // a 13th call makes a fifth
    const more = calls(
      plan({ containers: t.all(), transient: 0, calls: Array.from({ length: 13 }, () => need(4)), chores: [], ready, maxContainers: 100 }),
    );
    expect(more).toEqual([{ kind: 'create', worker: expect.any(String) }]);
  });

  it('gives a busy container with a free slot the next calls, the fullest first, up to its slots, before an idle one', () => {
    const t = new ContainerTable();
    put(t, 'two', 'busy', { slots: 4, inflight: 2, at: 1 });
    put(t, 'one', 'busy', { slots: 4, inflight: 1, at: 5 });
    put(t, 'idle', 'idle', { slots: 4, at: 9 });
    const d = calls(
      plan({
        containers: t.all(),
        transient: 0,
        calls: Array.from({ length: 9 }, () => need(4)),
        chores: [],
        ready: ['w9'],
        maxContainers: 100,
      }),
    );
    const ids = d.map((x) => (x.kind === 'use' ? x.id : x.kind));
    expect(ids).toEqual(['two', 'two', 'one', 'one', 'one', 'idle', 'idle', 'idle', 'idle']);
  });

  it('gives a closed container no call, a full one none, and a busy container of one slot none (as before)', () => {
    const t = new ContainerTable();
    put(t, 'closed', 'busy', { slots: 4, inflight: 1, closed: true });
    put(t, 'full', 'busy', { slots: 2, inflight: 2 });
    put(t, 'single', 'busy', {});
    expect(calls(plan({ containers: t.all(), transient: 0, calls: [need(4)], chores: [], ready: ['w9'], maxContainers: 100 }))).toEqual([
      { kind: 'create', worker: 'w9' },
    ]);
    expect(calls(plan({ containers: t.all(), transient: 0, calls: [need(4)], chores: [], ready: [], maxContainers: 100 }))).toEqual([]);
  });

  it('keeps a function within its maxContainers and the node within its limit', () => {
    const d = calls(
      plan({
        containers: [],
        transient: 0,
        calls: Array.from({ length: 20 }, () => need(2, { maxContainers: 3 })),
        chores: [],
        ready: ['w1', 'w2', 'w3', 'w4', 'w5'],
        maxContainers: 100,
      }),
    );
    expect(d.filter((x) => x.kind === 'create')).toHaveLength(3);
    const e = calls(
      plan({
        containers: [],
        transient: 0,
        calls: Array.from({ length: 20 }, () => need(2)),
        chores: [],
        ready: ['w1', 'w2', 'w3', 'w4', 'w5'],
        maxContainers: 2,
      }),
    );
    expect(e.filter((x) => x.kind === 'create')).toHaveLength(2);
  });

  it('for any table and queue: never more calls in a container than its slots, none into a closed one, and no new container while one of the function has a free slot', () => {
    const STATES: ContainerState[] = ['creating', 'starting', 'loading', 'warm', 'busy', 'idle', 'cancelling', 'removing'];
    const arbContainer = fc.record({
      state: fc.constantFrom(...STATES),
      owner: fc.constantFrom('w1', 'w2', 'w3'),
      fn: fc.constantFrom('f', 'g'),
      slots: fc.integer({ min: 1, max: 4 }),
      inflight: fc.integer({ min: 1, max: 4 }),
      closed: fc.boolean(),
      at: fc.nat(100),
    });
    const arbCall = fc.record({ fn: fc.constantFrom('f', 'g', 'h'), slots: fc.integer({ min: 1, max: 4 }) });
    fc.assert(
      fc.property(
        fc.array(arbContainer, { maxLength: 10 }),
        fc.array(arbCall, { maxLength: 16 }),
        fc.subarray(['w1', 'w2', 'w3']),
        fc.integer({ min: 1, max: 12 }),
        (cs, cls, ready, max) => {
          const t = new ContainerTable();
          cs.forEach((c, i) =>
            put(t, `c${i}`, c.state, {
              owner: c.owner,
              key: fnKey(c.fn, 1),
              slots: c.slots,
              inflight: Math.min(c.inflight, c.slots),
              closed: c.closed,
              at: c.at,
            }),
          );
          const needs = cls.map((c) => need(c.slots, { key: fnKey(c.fn, 1) }));
          const actions = plan({ containers: t.all(), transient: 0, calls: needs, chores: [], ready, maxContainers: max });
          const given = new Map<string, number>();
          const evicted = new Set<string>();
          const created = new Set<string>();
          let made = 0;
          for (const a of actions) {
            if (a.kind === 'evict') evicted.add(a.id);
            if (a.kind !== 'call') continue;
            const d = a.decision;
            if (d.kind === 'create' || d.kind === 'adopt') {
              made++;
              created.add(needs[a.index]!.key);
            }
            if (d.kind !== 'use') continue;
            given.set(d.id, (given.get(d.id) ?? 0) + 1);
            const r = t.get(d.id)!;
            expect(r.key).toBe(needs[a.index]!.key);
            expect(r.closed && r.state === 'busy').toBe(false);
          }
          for (const [id, n] of given) {
            const r = t.get(id)!;
            expect(evicted.has(id)).toBe(false);
            expect((r.state === 'busy' ? r.inflight : 0) + n).toBeLessThanOrEqual(r.slots);
          }
          // a function got a new container only with every container of it that could take a call full
          for (const r of t.all()) {
            if (!created.has(r.key) || r.state !== 'busy' || r.closed) continue;
            expect(r.inflight + (given.get(r.id) ?? 0)).toBe(r.slots);
          }
          expect(made).toBeLessThanOrEqual(Math.max(0, max - t.all().length));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('a function not judged yet (its first calls, or the first after a long pause)', () => {
  const unjudged = (t: ContainerTable, o: { now: number; waited?: number[]; judged?: boolean }) =>
    plan({
      containers: t.all(),
      transient: 0,
      calls: (o.waited ?? [0]).map((waitedMs) => ({
        policy: 'function' as const,
        key: fnKey('f', 1),
        runtime: 'node',
        stemsAllowed: true,
        unjudged: !o.judged,
        waitedMs,
      })),
      chores: [],
      ready: ['w1', 'w2', 'w3', 'w4'],
      maxContainers: 100,
      now: o.now,
      cpus: 2,
    });
  const decisions = (actions: ReturnType<typeof plan>): string[] =>
    actions.map((a) => (a.kind === 'call' ? a.decision.kind : a.kind === 'recheck' ? `recheck ${a.afterMs}` : a.kind));

  it('serves a burst at its first calls with the containers it has while they serve it, up to the quick bound', () => {
    // A burst at a function with one warm container. One call takes it, one makes a second (the bound on 2
    // CPUs), and the rest wait for those, deciding again when the wait from their arrival ends.
    const t = new ContainerTable();
    put(t, 'a', 'warm', { at: 1000 });
    const actions = unjudged(t, { now: 1001, waited: [0, 0, 0, 5, 10] });
    expect(decisions(actions)).toEqual(['use', 'create', 'recheck 40']);
  });

  it('makes containers once a call has waited QUICK_WAIT_MIN_MS, and as before once the function is judged', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000 });
    put(t, 'b', 'busy', { at: 1000 });
    expect(decisions(unjudged(t, { now: 1100, waited: [QUICK_WAIT_MIN_MS - 1] }))).toEqual(['recheck 1']);
    expect(decisions(unjudged(t, { now: 1100, waited: [QUICK_WAIT_MIN_MS, 3] }))).toEqual(['create', 'recheck 47']);
    expect(decisions(unjudged(t, { now: 1100, waited: [0, 0], judged: true }))).toEqual(['create', 'create']);
  });

  it('does not wait where none of its containers serves a call over a line (all being made, exec mode, closed)', () => {
    const starting = new ContainerTable();
    put(starting, 'a', 'starting', { at: 1000 });
    put(starting, 'b', 'starting', { at: 1000 });
    expect(decisions(unjudged(starting, { now: 1001, waited: [0, 0] }))).toEqual(['create', 'create']);
    const exec = new ContainerTable();
    put(exec, 'a', 'busy', { at: 1000, lined: false });
    put(exec, 'b', 'busy', { at: 1000, lined: false });
    expect(decisions(unjudged(exec, { now: 1001 }))).toEqual(['create']);
    const closed = new ContainerTable();
    put(closed, 'a', 'busy', { at: 1000, closed: true });
    put(closed, 'b', 'busy', { at: 1000, closed: true });
    expect(decisions(unjudged(closed, { now: 1001 }))).toEqual(['create']);
  });
});

describe('a quick function (its calls spend most of their round trip outside it)', () => {
  const quick = (
    t: ContainerTable,
    o: { now: number; cpus?: number; quickMs?: number; calls?: number; leaving?: string[]; inOrder?: boolean },
  ) =>
    plan({
      containers: t.all(),
      transient: 0,
      calls: Array.from({ length: o.calls ?? 1 }, () => ({
        policy: 'function' as const,
        key: fnKey('f', 1),
        runtime: 'node',
        stemsAllowed: true,
        quickMs: o.quickMs,
        inOrder: o.inOrder,
      })),
      chores: [],
      ready: ['w1', 'w2', 'w3', 'w4'],
      leaving: o.leaving,
      maxContainers: 100,
      now: o.now,
      cpus: o.cpus ?? 2,
    });
  const creates = (actions: ReturnType<typeof plan>): number =>
    actions.filter((a) => a.kind === 'call' && a.decision.kind === 'create').length;

  it('waits for its busy containers once it holds as many as the node has CPUs, and says when to decide again', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000 });
    put(t, 'b', 'busy', { at: 1010 });
    const actions = quick(t, { now: 1020, quickMs: 1, calls: 5 });
    expect(creates(actions)).toBe(0);
    // One call goes behind each busy call, the one that began first first; the others wait.
    // The wait is QUICK_WAIT_MIN_MS (50) from when a container took its call: 'a' took it first.
    expect(actions).toEqual([
      { kind: 'call', index: 0, decision: { kind: 'behind', id: 'a' } },
      { kind: 'call', index: 1, decision: { kind: 'behind', id: 'b' } },
      { kind: 'recheck', afterMs: 30 },
    ]);
  });

  it('puts a call behind a busy call only over a line, one at a time, none there yet, within the wait', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000, behind: true });
    put(t, 'b', 'busy', { at: 1000, slots: 2, inflight: 2 });
    put(t, 'c', 'busy', { at: 1000, lined: false });
    put(t, 'd', 'busy', { at: 1000, closed: true });
    put(t, 'e', 'busy', { at: 1000, owner: 'w9' });
    const none = quick(t, { now: 1001, quickMs: 1, calls: 2, leaving: ['w9'] });
    expect(none.filter((a) => a.kind === 'call')).toEqual([]);
    put(t, 'f', 'busy', { at: 1000 });
    expect(quick(t, { now: 1001, quickMs: 1, calls: 2 }).filter((a) => a.kind === 'call')).toEqual([
      { kind: 'call', index: 0, decision: { kind: 'behind', id: 'e' } },
      { kind: 'call', index: 1, decision: { kind: 'behind', id: 'f' } },
    ]);
    // Past the wait (4 x 20 ms), or not known to be quick (not judged yet, or slow): none.
    expect(quick(t, { now: 1080, quickMs: 20 }).filter((a) => a.kind === 'call' && a.decision.kind === 'behind')).toEqual([]);
    expect(quick(t, { now: 1001 }).filter((a) => a.kind === 'call' && a.decision.kind === 'behind')).toEqual([]);
    expect(quick(t, { now: 1001, quickMs: 1, inOrder: false }).filter((a) => a.kind === 'call' && a.decision.kind === 'behind')).toEqual(
      [],
    );
  });

  it('makes containers as calls arrive below that bound, and as before when the function is not known to be quick', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000 });
    expect(creates(quick(t, { now: 1001, quickMs: 1, calls: 3 }))).toBe(1); // one more makes two: the bound
    expect(creates(quick(t, { now: 1001, quickMs: 1, calls: 3, cpus: 4 }))).toBe(3);
    put(t, 'b', 'busy', { at: 1000 });
    expect(creates(quick(t, { now: 1001, calls: 3 }))).toBe(3); // quickMs unset: not quick
  });

  it('makes another when every busy container has run its call longer than the wait (a call that runs long)', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000 });
    put(t, 'b', 'busy', { at: 1000 });
    // 4 x 20 ms = 80 ms of wait: at 1070 the calls may still end in time, at 1081 no longer.
    expect(creates(quick(t, { now: 1070, quickMs: 20 }))).toBe(0);
    expect(creates(quick(t, { now: 1081, quickMs: 20 }))).toBe(1);
  });

  it('does not wait for a container that takes no more calls (closed, or its miniworker leaving)', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000, closed: true });
    put(t, 'b', 'busy', { at: 1000, owner: 'w9' });
    expect(creates(quick(t, { now: 1001, quickMs: 1, leaving: ['w9'] }))).toBe(1);
    expect(creates(quick(t, { now: 1001, quickMs: 1 }))).toBe(0);
  });

  it('still takes a free container of its own first', () => {
    const t = new ContainerTable();
    put(t, 'a', 'busy', { at: 1000 });
    put(t, 'b', 'idle', { at: 1000 });
    const actions = quick(t, { now: 1001, quickMs: 1, calls: 2 });
    expect(actions).toEqual([
      { kind: 'call', index: 0, decision: { kind: 'use', id: 'b' } },
      { kind: 'call', index: 1, decision: { kind: 'behind', id: 'a' } },
    ]);
  });
});
