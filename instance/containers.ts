// The node's container pool as an explicit state machine, and the one decision of which container serves
// a call (after Apache OpenWhisk's invoker). Pure bookkeeping: the side effects live in pool.ts.
//
//   starting ──► warm ──► busy ──► idle ──► busy ...
//      │          │        │        │
//      └──────────┴────────┴────────┴──► removed
//
// `warm` is a container that has served nothing yet (a stem cell of a runtime, or a preloaded function);
// `idle` has served calls and keeps its function loaded; both can take a call. Stem cells (key `rt:NAME`)
// become function containers (key `fn:NAME@VERSION`) when they take their first call, and never change
// function again: a container never carries one function's state into another's call.
import type { Policy } from '../common/model.js';

export type ContainerState = 'starting' | 'warm' | 'busy' | 'idle' | 'removed';

const NEXT: Record<ContainerState, readonly ContainerState[]> = {
  starting: ['warm', 'busy', 'removed'],
  warm: ['busy', 'removed'],
  busy: ['idle', 'removed'],
  idle: ['busy', 'removed'],
  removed: [],
};

export interface ContainerRec {
  id: string;
  owner: string; // the miniworker whose process holds it
  key: string; // rt:RUNTIME (stem cell) or fn:NAME@VERSION
  runtime: string;
  state: ContainerState;
  lastUsed: number;
  calls: number;
  slotDir?: string; // stem cells: the host folder the function's tree is put into
}

export class IllegalTransition extends Error {}

export const fnKey = (name: string, version: number): string => `fn:${name}@${version}`;
export const rtKey = (runtime: string): string => `rt:${runtime}`;

export class ContainerTable {
  private readonly recs = new Map<string, ContainerRec>();

  add(rec: Omit<ContainerRec, 'state' | 'lastUsed' | 'calls'>, state: 'starting' = 'starting', now = Date.now()): ContainerRec {
    const r: ContainerRec = { ...rec, state, lastUsed: now, calls: 0 };
    this.recs.set(r.id, r);
    return r;
  }

  get(id: string): ContainerRec | undefined {
    return this.recs.get(id);
  }

  move(id: string, to: ContainerState, now = Date.now()): ContainerRec | undefined {
    const r = this.recs.get(id);
    if (!r) return undefined;
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

  count(key: string, states: readonly ContainerState[]): number {
    return this.all().filter((r) => r.key === key && states.includes(r.state)).length;
  }

  // Function key -> started containers holding it (for the API's warm-first routing and GET /nodes).
  warmByFunction(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.recs.values()) {
      if (!r.key.startsWith('fn:') || r.state === 'starting') continue;
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
    const out: Record<ContainerState, number> = { starting: 0, warm: 0, busy: 0, idle: 0, removed: 0 };
    for (const r of this.recs.values()) out[r.state]++;
    return out;
  }
}

export interface PlacementInput {
  policy: Policy;
  key: string; // fn:NAME@VERSION
  runtime: string;
  stemsAllowed: boolean; // stem cells have no network: a function that asks for one cannot use them
  ready: readonly string[]; // miniworkers free to take a command now
}

export type Decision =
  | { kind: 'wait' }
  | { kind: 'once'; worker: string } // policy none: a fresh container for this call
  | { kind: 'use'; worker: string; id: string } // a warm/idle container that holds the function
  | { kind: 'adopt'; worker: string; id: string } // a stem cell of the runtime takes the function
  | { kind: 'create'; worker: string }; // start a container for the function and keep it

// The one place that decides which container serves a call.
export function decide(t: ContainerTable, p: PlacementInput): Decision {
  if (p.ready.length === 0) return { kind: 'wait' };
  const ready = new Set(p.ready);
  const free = (r: ContainerRec): boolean => (r.state === 'warm' || r.state === 'idle') && ready.has(r.owner);
  if (p.policy === 'none') return { kind: 'once', worker: leastLoaded(t, p.ready) };
  // 1. a container that already holds this function: the most recently used stays hot
  const holders = t.all().filter((r) => r.key === p.key && free(r));
  if (holders.length) {
    const best = holders.reduce((a, b) => (b.lastUsed > a.lastUsed ? b : a));
    return { kind: 'use', worker: best.owner, id: best.id };
  }
  // 2. a stem cell of the function's runtime (any policy may use one that is there)
  const stem = p.stemsAllowed ? t.all().find((r) => r.key === rtKey(p.runtime) && r.state === 'warm' && ready.has(r.owner)) : undefined;
  if (stem) return { kind: 'adopt', worker: stem.owner, id: stem.id };
  // 3. a new container for the function on the miniworker holding the fewest
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

// Idle function containers past their TTL, and the least recently used ones over the node's cap.
export function toEvict(t: ContainerTable, o: { idleTtlMs: number; maxContainers: number; now?: number }): ContainerRec[] {
  const now = o.now ?? Date.now();
  const out = new Set<ContainerRec>();
  const spare = t.all().filter((r) => r.key.startsWith('fn:') && (r.state === 'idle' || r.state === 'warm'));
  for (const r of spare) if (now - r.lastUsed > o.idleTtlMs) out.add(r);
  const live = t.all().length - out.size;
  const byAge = spare.filter((r) => !out.has(r)).sort((a, b) => a.lastUsed - b.lastUsed);
  for (let i = 0; i < live - o.maxContainers && i < byAge.length; i++) out.add(byAge[i]!);
  return [...out];
}
