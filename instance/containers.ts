// The node's containers as explicit state machines (after Apache OpenWhisk's invoker and its
// ContainerProxy). Pure bookkeeping: each container's session (session.ts) moves it only through `move`,
// and the placement decision (placement.ts) reads the table.
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
// A container whose function takes several calls at once (containerConcurrency, `slots` > 1) stays busy
// while it has any (`inflight`), and takes more (join) while it has fewer than its slots and is not
// `closed` (a call in it passed its deadline, or it must go once its calls end).
// A container of one call at a time may hold one more written to its line behind the call it runs
// (`behind`): its loader begins that one as soon as it has answered the first (placement.ts says when).
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
  readonly id: string; // its Docker name
  readonly owner: string; // the miniworker that holds it
  readonly key: string; // rt:RUNTIME (stem cell) or fn:NAME@VERSION
  readonly runtime: string;
  readonly state: ContainerState;
  readonly lined: boolean; // calls go to its loader over the node's socket; else a `docker exec` by its owner
  readonly createdAt: number;
  readonly lastUsed: number;
  readonly calls: number;
  readonly slots: number; // calls it may run at once (1 but for a function's containerConcurrency)
  readonly inflight: number; // calls it runs now (busy: at least 1)
  readonly closed: boolean; // takes no more calls; removed once those it runs end
  readonly behind: boolean; // busy, one call at a time: a call waits on its line behind the one it runs
}

type Rec = { -readonly [K in keyof ContainerRec]: ContainerRec[K] };

export class IllegalTransition extends Error {}

export const fnKey = (name: string, version: number): string => `fn:${name}@${version}`;
export const rtKey = (runtime: string): string => `rt:${runtime}`;

const LIVE: readonly ContainerState[] = ['creating', 'starting', 'loading', 'warm', 'busy', 'idle'];

export class ContainerTable {
  private readonly recs = new Map<string, Rec>();

  add(rec: Pick<ContainerRec, 'id' | 'owner' | 'key' | 'runtime' | 'lined'> & { slots?: number }, now = Date.now()): ContainerRec {
    const r: Rec = {
      ...rec,
      state: 'creating',
      createdAt: now,
      lastUsed: now,
      calls: 0,
      slots: rec.slots ?? 1,
      inflight: 0,
      closed: false,
      behind: false,
    };
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
    if (to === 'idle' && r.behind) throw new IllegalTransition(`container ${id}: idle with a call behind its last`);
    r.state = to;
    if (to === 'busy') {
      r.calls++;
      r.inflight = 1;
    }
    if (to === 'idle') r.inflight = 0;
    if (to === 'idle' || to === 'busy') r.lastUsed = now;
    if (to === 'removed') this.recs.delete(id);
    return r;
  }

  // A warm stem cell takes a function: it is that function's container from now on, being loaded.
  adopt(id: string, key: string, slots = 1): ContainerRec {
    const r = this.recs.get(id);
    if (!r || !r.key.startsWith('rt:') || r.state !== 'warm') throw new IllegalTransition(`container ${id}: not a warm stem cell`);
    r.state = 'loading';
    r.key = key;
    r.slots = slots;
    return r;
  }

  // The calls it may run at once, as its loader can (known once it said hello and loaded the function).
  setSlots(id: string, slots: number): void {
    const r = this.recs.get(id);
    if (r) r.slots = Math.max(1, slots);
  }

  // One more call in a busy container with a free slot.
  join(id: string, now = Date.now()): ContainerRec {
    const r = this.recs.get(id);
    if (!r || r.state !== 'busy' || r.closed || r.inflight >= r.slots)
      throw new IllegalTransition(`container ${id}: no free slot (${r ? `${r.state}, ${r.inflight} of ${r.slots}` : 'gone'})`);
    r.inflight++;
    r.calls++;
    r.lastUsed = now;
    return r;
  }

  // One of the calls of a busy container ended while others run on (the last one ends with move idle).
  leave(id: string, now = Date.now()): void {
    const r = this.recs.get(id);
    if (!r || r.state !== 'busy' || r.inflight <= 1) throw new IllegalTransition(`container ${id}: not running several calls`);
    r.inflight--;
    r.lastUsed = now;
  }

  // A call written to its line behind the one it runs (one at a time, not closed, none behind yet).
  queueBehind(id: string): ContainerRec {
    const r = this.recs.get(id);
    if (!r || r.state !== 'busy' || !r.lined || r.slots !== 1 || r.closed || r.behind)
      throw new IllegalTransition(`container ${id}: cannot take a call behind its own (${r ? r.state : 'gone'})`);
    r.behind = true;
    r.calls++;
    return r;
  }

  // The call behind has begun (the one before it ended: its run counts from now), or was withdrawn before
  // it was written: none waits any more.
  advance(id: string, begun: boolean, now = Date.now()): void {
    const r = this.recs.get(id);
    if (!r || !r.behind) return;
    r.behind = false;
    if (begun) r.lastUsed = now;
  }

  // Takes no more calls (it goes once those it runs end).
  close(id: string): void {
    const r = this.recs.get(id);
    if (r) r.closed = true;
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

  // The calls its containers of several calls at once may take beyond one each (the node's capacity grows
  // by these): for each live function container that is not closed, its slots less one.
  spareSlots(): number {
    let n = 0;
    for (const r of this.recs.values()) if (r.key.startsWith('fn:') && LIVE.includes(r.state) && !r.closed) n += r.slots - 1;
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
