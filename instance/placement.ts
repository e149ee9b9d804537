// The node's one scheduling decision, as a pure function: given its containers, the calls and Docker chores
// that wait, the miniworkers that are free and the node's limit, what happens next. Every rule of the
// node's pool lives here and is unit-tested without Docker (placement.test.ts); pool.ts only carries the
// actions out, in order, before anything else can change the table.
//
// The rules:
// - A call takes what it needs together or waits without making anything: a container and, where the call
//   goes through Docker (a fresh container, a `docker exec`, a create, a stem cell taking a function), the
//   miniworker that does it. A lined (loader) container needs no miniworker for the call itself.
// - A container that holds the call's function comes first (the most recently used), then a stem cell of
//   its runtime, then a new container on the free miniworker holding the fewest.
// - Several calls per container (a function's containerConcurrency, the container's `slots` > 1): a
//   container of the function with a free slot (fewer calls in it than its slots, not closed) takes the
//   call, the fullest first, then the most recently used; a container being made for the function counts
//   as its slots less the call it is made for, and the calls that fit wait for it instead of making more.
//   A container never holds more calls than its slots.
// - Nothing that makes a container (a create, a fresh container of policy none, a dependencies step) starts
//   while the node holds `maxContainers` containers, counting every one on the engine: starting, serving,
//   spare and on its way out. A function with its own `maxContainers` never holds more on this node.
// - When the node is full, room is made by removing spare containers (stem cells and idle function
//   containers, least recently used first), one for each waiting call that cannot get room otherwise; a
//   removal already under way counts as room coming, so a burst does not empty the node of warm containers.
// - Chores: urgent ones (a sweep, a dependencies step a call waits for) go before calls; spare ones (a stem
//   cell, a preload) only into room no call waits for, and are dropped when a call waits for room; a preload
//   goes before stem cells. A chore
//   makes room only by removing an idle function container, never a stem cell (which would be made again).
// - A quick function (its calls spend most of their round trip outside the function: pace.ts) that holds as
//   many containers as the node has CPUs (at least QUICK_FLOOR) waits for one of its busy containers rather
//   than making another, as long as one of them has run its call for less than QUICK_WAIT_FACTOR of its
//   usual round trip (at least QUICK_WAIT_MIN_MS): a call that runs long does not hold the others up. The
//   plan then says when to decide again (`recheck`), should no call end before.
// - Such a call goes behind the call of one of those containers (one call at a time, over its line, none
//   behind yet), the one whose call began first: its loader begins it as soon as it has answered, without
//   waiting for the node between the two. A call never goes behind one that has run past that wait, nor
//   into a container whose loader begins calls as they come (`inOrder` false: an image function's bridge).
// - A function not judged yet (pace.ts: its first calls, or the first after a long pause) that holds as many
//   containers as a quick one may, one of them serving a call over its line, has a call wait for one of them
//   for up to QUICK_WAIT_MIN_MS from the call's arrival before making another: a quick function's burst is
//   served by the containers it has (and is judged meanwhile) instead of making containers that go again
//   seconds later, and a slow one's burst gets its containers that much later.
import type { Policy } from '../common/model.js';
import { rtKey, type ContainerRec } from './containers.js';

// A call waiting on the node, as the decision sees it.
export interface CallNeed {
  key: string; // fn:NAME@VERSION
  runtime: string;
  policy: Policy; // `none`: a fresh container for this call alone
  stemsAllowed: boolean; // stem cells have no network: a function that asks for one cannot use them
  maxContainers?: number; // the most containers of this function the node may hold
  slots?: number; // calls a container of it may run at once (default 1)
  quickMs?: number; // a quick function's usual round trip (pace.ts); unset: containers as calls arrive
  unjudged?: boolean; // not judged yet, quick or not (pace.ts): its calls wait a moment at the quick bound
  waitedMs?: number; // how long the call has waited on the node
  inOrder?: boolean; // false: its loader does not begin a call only once it answered the one before
}

export interface ChoreNeed {
  urgent: boolean; // a sweep, a dependencies step: before calls; else a stem cell or a preload
  room: boolean; // it makes a container
  // A spare chore that may make room by removing an idle function container unused for at least this many ms:
  // 0 for a preload (its owner asked for it), longer for a stem cell (a function just used is worth more).
  evicts?: number;
}

export interface PlanInput {
  containers: readonly ContainerRec[]; // every container the node holds, in any state
  transient: number; // containers of fresh runs and dependency steps under way (not in the table)
  calls: readonly CallNeed[]; // in arrival order
  chores: readonly ChoreNeed[]; // in arrival order
  ready: readonly string[]; // miniworkers whose job slot is free now
  leaving?: readonly string[]; // miniworkers on their way out: their containers take no more calls
  maxContainers: number;
  now?: number; // for chores that remove only containers idle long enough (default: any idle one qualifies)
  cpus?: number; // the node's CPUs: how many containers a quick function may hold (unset: no bound from them)
}

export const QUICK_FLOOR = 2; // containers a quick function may always have (one answers while one is woken)
// The containers a quick function holds before its calls wait for them, on a node with `cpus` CPUs.
export const quickBound = (cpus?: number): number => Math.max(QUICK_FLOOR, cpus ?? Infinity);
export const QUICK_WAIT_FACTOR = 4;
export const QUICK_WAIT_MIN_MS = 50;
// How long a quick function's call waits for its busy containers (pace.ts's usual round trip, in ms).
const quickWaitMs = (quickMs: number): number => Math.max(QUICK_WAIT_MIN_MS, QUICK_WAIT_FACTOR * quickMs);

export type Decision =
  | { kind: 'once'; worker: string } // policy none: a fresh container for this call
  | { kind: 'use'; id: string; worker?: string } // a container holding the function (worker: exec mode, its owner)
  | { kind: 'behind'; id: string } // a busy container of a quick function: its line's next call
  | { kind: 'adopt'; worker: string; id: string } // a stem cell of the runtime takes the function
  | { kind: 'create'; worker: string }; // a container for the function, made for this call and kept

export type Action =
  | { kind: 'chore'; index: number; worker: string }
  | { kind: 'drop'; index: number } // a spare chore there is no room for
  | { kind: 'call'; index: number; decision: Decision }
  | { kind: 'evict'; id: string } // a spare container removed to make room
  | { kind: 'recheck'; afterMs: number }; // decide again then, if nothing else made the node decide before

const LIVE = new Set(['creating', 'starting', 'loading', 'warm', 'busy', 'idle']);
const GOING = new Set(['cancelling', 'removing']);
const MAKING = new Set(['creating', 'starting', 'loading']);

export function plan(p: PlanInput): Action[] {
  const actions: Action[] = [];
  const ready = [...p.ready];
  const leaving = new Set(p.leaving ?? []);
  const taken = new Set<string>(); // containers claimed by this plan
  const owned = new Map<string, number>();
  const perKey = new Map<string, number>();
  const claimed = new Map<string, number>(); // calls this plan gives each container
  const slotsComing = new Map<string, number>(); // function key -> free slots of its containers being made
  let coming = 0;
  for (const r of p.containers) {
    owned.set(r.owner, (owned.get(r.owner) ?? 0) + 1);
    if (LIVE.has(r.state)) perKey.set(r.key, (perKey.get(r.key) ?? 0) + 1);
    if (GOING.has(r.state)) coming++;
    if (MAKING.has(r.state) && r.slots > 1 && !r.closed && r.key.startsWith('fn:'))
      slotsComing.set(r.key, (slotsComing.get(r.key) ?? 0) + r.slots - 1);
  }
  // Calls in a container, with those this plan gave it; whether it may take one more.
  const load = (r: ContainerRec): number => (r.state === 'busy' ? r.inflight : 0) + (claimed.get(r.id) ?? 0);
  const hasSlot = (r: ContainerRec): boolean => {
    if (r.state === 'warm' || r.state === 'idle') return !taken.has(r.id) || claimed.has(r.id) ? load(r) < r.slots : false;
    return r.state === 'busy' && r.lined && !r.closed && load(r) < r.slots;
  };
  let room = p.maxContainers - p.containers.length - p.transient;
  // Spare containers, the least recently used first: what goes when room is needed.
  const spares = p.containers.filter((r) => r.state === 'warm' || r.state === 'idle').sort((a, b) => a.lastUsed - b.lastUsed);

  const isReady = (w: string): boolean => ready.includes(w);
  const takeWorker = (w: string): void => {
    ready.splice(ready.indexOf(w), 1);
    owned.set(w, (owned.get(w) ?? 0) + 1);
  };
  const leastLoaded = (): string => {
    let best = ready[0]!;
    for (const w of ready) if ((owned.get(w) ?? 0) < (owned.get(best) ?? 0)) best = w;
    return best;
  };
  // Claims room for one new container; when there is none, makes some come (or counts on a removal that is
  // under way) and says to wait.
  // A chore (a stem cell, a preload, a dependencies step) makes room only from idle function containers (a
  // stem cell removed for another runtime's stem cell would only be made again), unused for `idleForMs`.
  const now = p.now ?? Number.POSITIVE_INFINITY;
  const claimRoom = (forKey?: string, choreIdleForMs?: number): boolean => {
    if (room > 0) {
      room--;
      return true;
    }
    if (coming > 0) {
      coming--;
      return false;
    }
    const candidates =
      choreIdleForMs === undefined ? spares : spares.filter((r) => r.key.startsWith('fn:') && now - r.lastUsed >= choreIdleForMs);
    const spare = candidates.find((r) => !taken.has(r.id) && r.key !== forKey) ?? candidates.find((r) => !taken.has(r.id));
    if (spare) {
      taken.add(spare.id);
      actions.push({ kind: 'evict', id: spare.id });
    }
    return false;
  };

  p.chores.forEach((c, index) => {
    if (!c.urgent || ready.length === 0) return;
    if (c.room && !claimRoom(undefined, 0)) return;
    const worker = leastLoaded();
    takeWorker(worker);
    actions.push({ kind: 'chore', index, worker });
  });

  // A quick function at its bound waits for one of its busy containers while one has run its call for
  // less than the wait (pace.ts): the time left of the soonest such wait, or undefined when none has.
  const quickWait = (c: CallNeed): number | undefined => {
    if ((perKey.get(c.key) ?? 0) < quickBound(p.cpus)) return undefined;
    if (c.quickMs === undefined) return c.unjudged ? unjudgedWait(c) : undefined;
    const wait = quickWaitMs(c.quickMs);
    let left: number | undefined;
    for (const r of p.containers) {
      if (r.key !== c.key || r.state !== 'busy' || !r.lined || r.closed || leaving.has(r.owner)) continue;
      const l = wait - (now - r.lastUsed);
      if (l > 0 && (left === undefined || l < left)) left = l;
    }
    return left;
  };
  // The container a quick function's call at its bound goes behind: one call at a time over its line, none
  // behind it yet, its call within the wait; the one whose call began first.
  const behindOf = (c: CallNeed): ContainerRec | undefined => {
    if (c.quickMs === undefined || c.inOrder === false || (perKey.get(c.key) ?? 0) < quickBound(p.cpus)) return undefined;
    const wait = quickWaitMs(c.quickMs);
    let best: ContainerRec | undefined;
    for (const r of p.containers) {
      if (r.key !== c.key || r.state !== 'busy' || !r.lined || r.slots !== 1 || r.closed || r.behind) continue;
      if (leaving.has(r.owner) || taken.has(r.id) || now - r.lastUsed >= wait) continue;
      if (!best || r.lastUsed < best.lastUsed) best = r;
    }
    return best;
  };
  // A function not judged yet waits from the call's arrival, while a container of its own serves a call
  // over its line (one given a call by this plan counts): the time left, or undefined.
  const unjudgedWait = (c: CallNeed): number | undefined => {
    const left = QUICK_WAIT_MIN_MS - (c.waitedMs ?? 0);
    if (left <= 0) return undefined;
    const serving = p.containers.some(
      (r) => r.key === c.key && r.lined && !r.closed && !leaving.has(r.owner) && (r.state === 'busy' || claimed.has(r.id)),
    );
    return serving ? left : undefined;
  };
  let recheck: number | undefined;

  let roomWanted = false;
  p.calls.forEach((c, index) => {
    if (c.policy === 'none') {
      if (ready.length === 0) return;
      if (!claimRoom()) return void (roomWanted = true);
      const worker = leastLoaded();
      takeWorker(worker);
      return void actions.push({ kind: 'call', index, decision: { kind: 'once', worker } });
    }
    let best: ContainerRec | undefined;
    for (const r of p.containers) {
      if (r.key !== c.key || !hasSlot(r) || leaving.has(r.owner)) continue;
      if (!r.lined && !isReady(r.owner)) continue;
      if (!best || load(r) > load(best) || (load(r) === load(best) && r.lastUsed > best.lastUsed)) best = r;
    }
    if (best) {
      taken.add(best.id);
      claimed.set(best.id, (claimed.get(best.id) ?? 0) + 1);
      if (best.lined) return void actions.push({ kind: 'call', index, decision: { kind: 'use', id: best.id } });
      takeWorker(best.owner);
      return void actions.push({ kind: 'call', index, decision: { kind: 'use', id: best.id, worker: best.owner } });
    }
    // A container being made for the function has a slot for it: it waits for that one.
    const comingSlots = slotsComing.get(c.key) ?? 0;
    if (comingSlots > 0) return void slotsComing.set(c.key, comingSlots - 1);
    const ahead = behindOf(c);
    if (ahead) {
      taken.add(ahead.id);
      return void actions.push({ kind: 'call', index, decision: { kind: 'behind', id: ahead.id } });
    }
    const left = quickWait(c);
    if (left !== undefined) return void (recheck = Math.min(recheck ?? left, left));
    if (ready.length === 0) return;
    // Its own containers serve calls now: it waits for one of them rather than holding more.
    if (c.maxContainers !== undefined && (perKey.get(c.key) ?? 0) >= c.maxContainers) return;
    const stem = c.stemsAllowed
      ? p.containers.find((r) => r.key === rtKey(c.runtime) && r.state === 'warm' && !taken.has(r.id) && isReady(r.owner))
      : undefined;
    if (stem) {
      taken.add(stem.id);
      takeWorker(stem.owner);
      perKey.set(c.key, (perKey.get(c.key) ?? 0) + 1);
      slotsComing.set(c.key, (c.slots ?? 1) - 1);
      return void actions.push({ kind: 'call', index, decision: { kind: 'adopt', worker: stem.owner, id: stem.id } });
    }
    if (!claimRoom(c.key)) return void (roomWanted = true);
    const worker = leastLoaded();
    takeWorker(worker);
    perKey.set(c.key, (perKey.get(c.key) ?? 0) + 1);
    slotsComing.set(c.key, (c.slots ?? 1) - 1);
    actions.push({ kind: 'call', index, decision: { kind: 'create', worker } });
  });

  // Spare chores: preloads (their owner asked for them) before stem cells, so that the room a preload made
  // by removing an idle container is not taken by a stem cell, while the preload removes the next one.
  const spareChores = p.chores.map((c, index) => ({ c, index })).filter(({ c }) => !c.urgent);
  spareChores.sort((a, b) => Number(a.c.evicts !== 0) - Number(b.c.evicts !== 0));
  spareChores.forEach(({ c, index }) => {
    if (c.room && (roomWanted || (room <= 0 && c.evicts === undefined))) return void actions.push({ kind: 'drop', index });
    if (ready.length === 0) return;
    if (c.room && !claimRoom(undefined, c.evicts)) return; // a preload or a stem cell: room is being made for it
    const worker = leastLoaded();
    takeWorker(worker);
    actions.push({ kind: 'chore', index, worker });
  });
  if (recheck !== undefined) actions.push({ kind: 'recheck', afterMs: Math.ceil(recheck) });
  return actions;
}

export interface EvictInput {
  idleTtlMs: number;
  maxContainers: number;
  stemTarget(runtime: string): number; // stem cells each runtime should keep now (see stems.ts)
  stemTtlMs: number; // a stem cell beyond its runtime's target goes after this long unused
  floor?(key: string): number; // containers of the function version kept whatever their idle time (minWarm)
  // A quick function's bound (quickBound; undefined for any other): the idle containers it holds beyond it go.
  quickBound?(key: string): number | undefined;
  now?: number;
}

// Idle function containers past their TTL (but for a function's floor, the most recently used of its
// containers), stem cells beyond their runtime's target past theirs, the idle containers a quick function
// holds beyond its bound (made before it was known to be quick: a burst at its first calls), the least
// recently used first and never below its floor, and the least recently used spare containers while the
// node holds more than its cap (after the cap was lowered).
export function toEvict(containers: readonly ContainerRec[], o: EvictInput): ContainerRec[] {
  const now = o.now ?? Date.now();
  const out = new Set<ContainerRec>();
  const spare = containers.filter((r) => r.state === 'idle' || r.state === 'warm');
  const kept = keptByFloor(containers, o.floor);
  for (const r of spare) if (r.key.startsWith('fn:') && now - r.lastUsed > o.idleTtlMs && !kept.has(r)) out.add(r);
  const stems = new Map<string, ContainerRec[]>();
  for (const r of spare) if (r.key.startsWith('rt:')) stems.set(r.runtime, [...(stems.get(r.runtime) ?? []), r]);
  for (const [runtime, cells] of stems) {
    const extra = cells.length - o.stemTarget(runtime);
    const old = cells.filter((r) => now - r.lastUsed > o.stemTtlMs).sort((a, b) => a.lastUsed - b.lastUsed);
    for (let i = 0; i < extra && i < old.length; i++) out.add(old[i]!);
  }
  for (const [key, rs] of liveByKey(containers)) {
    const bound = o.quickBound?.(key);
    if (bound === undefined) continue;
    const idle = rs.filter((r) => (r.state === 'idle' || r.state === 'warm') && !out.has(r) && !kept.has(r));
    idle.sort((a, b) => a.lastUsed - b.lastUsed);
    const extra = rs.filter((r) => !out.has(r)).length - Math.max(bound, o.floor?.(key) ?? 0);
    for (let i = 0; i < extra && i < idle.length; i++) out.add(idle[i]!);
  }
  const live = containers.filter((r) => LIVE.has(r.state)).length - out.size;
  const byAge = spare.filter((r) => !out.has(r)).sort((a, b) => a.lastUsed - b.lastUsed);
  for (let i = 0; i < live - o.maxContainers && i < byAge.length; i++) out.add(byAge[i]!);
  return [...out];
}

// The containers a function's floor keeps: of each version with one, its `floor` live containers, busy ones
// first, then the most recently used.
function keptByFloor(containers: readonly ContainerRec[], floor: EvictInput['floor']): Set<ContainerRec> {
  const kept = new Set<ContainerRec>();
  if (!floor) return kept;
  for (const [key, rs] of liveByKey(containers)) {
    const n = floor(key);
    if (n <= 0) continue;
    const order = (r: ContainerRec): number => (r.state === 'idle' || r.state === 'warm' ? r.lastUsed : Infinity);
    for (const r of rs.sort((a, b) => order(b) - order(a)).slice(0, n)) kept.add(r);
  }
  return kept;
}

// Function key -> its live containers.
function liveByKey(containers: readonly ContainerRec[]): Map<string, ContainerRec[]> {
  const byKey = new Map<string, ContainerRec[]>();
  for (const r of containers) if (r.key.startsWith('fn:') && LIVE.has(r.state)) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  return byKey;
}
