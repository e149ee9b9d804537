// The node's containers as explicit state machines, and the one decision of which container serves a call
// (after Apache OpenWhisk's invoker and its ContainerProxy). Pure bookkeeping: the side effects live in
// pool.ts, which moves a container only through `move`.
//
//   creating ─► starting ─► loading ─► warm ─► busy ─► idle ─► busy ...
//                  │                     │       │
//                  └──────► warm         │       └─► cancelling
//   (any) ─────────────────────────────────────────────► removing ─► removed
//
// creating:   the create was sent to the miniworker that will hold it (it has a name from then on)
// starting:   the container runs; its loader has not dialled in yet
// loading:    its function is being loaded (a new container, or a stem cell taking a function)
// warm:       ready, never used: a stem cell of a runtime (key rt:NAME) or a preloaded function
// busy/idle:  running a call / holding its function loaded between calls
// cancelling: its call was cancelled (a redundant call's other run); it is killed
// removing:   the remove was sent to its miniworker
// A stem cell becomes a function's container (key fn:NAME@VERSION) when it takes its first call, and never
// changes function again: a container never carries one function's state into another's call.
import type { Policy } from '../common/model.js';

export type ContainerState = 'creating' | 'starting' | 'loading' | 'warm' | 'busy' | 'idle' | 'cancelling' | 'removing' | 'removed';

const NEXT: Record<ContainerState, readonly ContainerState[]> = {
  creating: ['starting', 'removing', 'removed'],
  starting: ['loading', 'warm', 'busy', 'removing', 'removed'],
  loading: ['warm', 'busy', 'removing', 'removed'],
  warm: ['loading', 'busy', 'removing', 'removed'],
  busy: ['idle', 'cancelling', 'removing', 'removed'],
  idle: ['busy', 'removing', 'removed'],
  cancelling: ['removing', 'removed'],
  removing: ['removed'],
  removed: [],
};

export interface ContainerRec {
  id: string; // its Docker name
  owner: string; // the miniworker that holds it
  key: string; // rt:RUNTIME (stem cell) or fn:NAME@VERSION
  runtime: string;
  state: ContainerState;
  lined: boolean; // calls go to its loader over the node's socket; else a `docker exec` by its owner
  createdAt: number;
  lastUsed: number;
  calls: number;
  slotDir?: string; // stem cells: the host folder the function's tree is put into
  secrets?: Map<string, string>; // lined: the secrets its folder holds (name -> stamp), as its loader said
  spent?: boolean; // removed once its call ends instead of serving another (a secret it holds is gone)
}

export class IllegalTransition extends Error {}

export const fnKey = (name: string, version: number): string => `fn:${name}@${version}`;
export const rtKey = (runtime: string): string => `rt:${runtime}`;

const LIVE: readonly ContainerState[] = ['creating', 'starting', 'loading', 'warm', 'busy', 'idle'];

export class ContainerTable {
  private readonly recs = new Map<string, ContainerRec>();

  add(rec: Omit<ContainerRec, 'state' | 'lastUsed' | 'calls' | 'createdAt'>, now = Date.now()): ContainerRec {
    const r: ContainerRec = { ...rec, state: 'creating', createdAt: now, lastUsed: now, calls: 0 };
    this.recs.set(r.id, r);
    return r;
  }

  get(id: string): ContainerRec | undefined {
    return this.recs.get(id);
  }

  move(id: string, to: ContainerState, now = Date.now()): ContainerRec | undefined {
    const r = this.recs.get(id);
    if (!r) return undefined;
    if (r.state === to) return r;
    if (!NEXT[r.state].includes(to)) throw new IllegalTransition(`container ${id}: ${r.state} -> ${to}`);
    r.state = to;
    if (to === 'busy') r.calls++;
    if (to === 'idle' || to === 'busy') r.lastUsed = now;
    if (to === 'removed') this.recs.delete(id);
    return r;
  }

  all(): ContainerRec[] {
    return [...this.recs.values()];
  }

  ownedBy(owner: string): ContainerRec[] {
    return this.all().filter((r) => r.owner === owner);
  }

  count(key: string, states: readonly ContainerState[] = LIVE): number {
    let n = 0;
    for (const r of this.recs.values()) if (r.key === key && states.includes(r.state)) n++;
    return n;
  }

  // Containers that count against the node's cap (not those on their way out).
  live(): number {
    let n = 0;
    for (const r of this.recs.values()) if (LIVE.includes(r.state)) n++;
    return n;
  }

  // Function key -> started containers holding it (for the API's warm-first routing and GET /nodes).
  warmByFunction(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.recs.values()) {
      if (!r.key.startsWith('fn:') || !['warm', 'busy', 'idle'].includes(r.state)) continue;
      const k = r.key.slice(3);
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  // Runtime -> stem cells ready to take a function.
  stemsByRuntime(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.recs.values()) if (r.key.startsWith('rt:') && r.state === 'warm') out[r.runtime] = (out[r.runtime] ?? 0) + 1;
    return out;
  }

  byState(): Record<ContainerState, number> {
    const out = Object.fromEntries(Object.keys(NEXT).map((s) => [s, 0])) as Record<ContainerState, number>;
    for (const r of this.recs.values()) out[r.state]++;
    return out;
  }
}

export interface PlacementInput {
  policy: Policy;
  key: string; // fn:NAME@VERSION
  runtime: string;
  stemsAllowed: boolean; // stem cells have no network: a function that asks for one cannot use them
  ready: readonly string[]; // miniworkers whose job slot is free now
  leaving?: readonly string[]; // miniworkers on their way out: their containers take no more calls
}

export type Decision =
  | { kind: 'wait' }
  | { kind: 'once'; worker: string } // policy none: a fresh container for this call
  | { kind: 'use'; id: string } // a warm/idle container that holds the function
  | { kind: 'adopt'; worker: string; id: string } // a stem cell of the runtime takes the function
  | { kind: 'create'; worker: string }; // start a container for the function and keep it

// The one place that decides which container serves a call. A call never waits for a container that is
// still starting: if none is free, a new one is started (the node's capacity bounds how many).
export function decide(t: ContainerTable, p: PlacementInput): Decision {
  const ready = new Set(p.ready);
  const leaving = new Set(p.leaving ?? []);
  if (p.policy === 'none') return p.ready.length ? { kind: 'once', worker: leastLoaded(t, p.ready) } : { kind: 'wait' };
  // 1. a container that already holds this function: the most recently used stays hot. A loader is
  //    called directly; a `docker exec` needs its owner's job slot.
  let best: ContainerRec | undefined;
  for (const r of t.all()) {
    if (r.key !== p.key || (r.state !== 'warm' && r.state !== 'idle') || leaving.has(r.owner)) continue;
    if (!r.lined && !ready.has(r.owner)) continue;
    if (!best || r.lastUsed > best.lastUsed) best = r;
  }
  if (best) return { kind: 'use', id: best.id };
  if (p.ready.length === 0) return { kind: 'wait' };
  // 2. a stem cell of the function's runtime (any policy may use one that is there)
  const stem = p.stemsAllowed ? t.all().find((r) => r.key === rtKey(p.runtime) && r.state === 'warm' && ready.has(r.owner)) : undefined;
  if (stem) return { kind: 'adopt', worker: stem.owner, id: stem.id };
  // 3. a new container for the function, held by the miniworker holding the fewest
  return { kind: 'create', worker: leastLoaded(t, p.ready) };
}

function leastLoaded(t: ContainerTable, ready: readonly string[]): string {
  let best = ready[0]!;
  let bestN = Infinity;
  for (const w of ready) {
    const n = t.ownedBy(w).length;
    if (n < bestN) [best, bestN] = [w, n];
  }
  return best;
}

export interface EvictInput {
  idleTtlMs: number;
  maxContainers: number;
  stemTarget(runtime: string): number; // stem cells each runtime should keep now (see stems.ts)
  stemTtlMs: number; // a stem cell beyond its runtime's target goes after this long unused
  now?: number;
}

// Idle function containers past their TTL, stem cells beyond their runtime's target past theirs, and the
// least recently used spare containers while the node holds more than its cap.
export function toEvict(t: ContainerTable, o: EvictInput): ContainerRec[] {
  const now = o.now ?? Date.now();
  const out = new Set<ContainerRec>();
  const spare = t.all().filter((r) => r.state === 'idle' || r.state === 'warm');
  for (const r of spare) if (r.key.startsWith('fn:') && now - r.lastUsed > o.idleTtlMs) out.add(r);
  const stems = new Map<string, ContainerRec[]>();
  for (const r of spare) if (r.key.startsWith('rt:')) stems.set(r.runtime, [...(stems.get(r.runtime) ?? []), r]);
  for (const [runtime, cells] of stems) {
    const extra = cells.length - o.stemTarget(runtime);
    const old = cells.filter((r) => now - r.lastUsed > o.stemTtlMs).sort((a, b) => a.lastUsed - b.lastUsed);
    for (let i = 0; i < extra && i < old.length; i++) out.add(old[i]!);
  }
  const live = t.live() - out.size;
  const byAge = spare.filter((r) => !out.has(r)).sort((a, b) => a.lastUsed - b.lastUsed);
  for (let i = 0; i < live - o.maxContainers && i < byAge.length; i++) out.add(byAge[i]!);
  return [...out];
}
