// How many stem cells each runtime keeps: a reactive pool within bounds (OpenWhisk keeps 1 to 4 prewarmed
// containers per runtime with a TTL). Each stem cell a call takes raises its runtime's target for a while,
// and so does each function deployed with policy `runtime` whose first call has not come yet (it will take
// one), so a burst of new functions finds cells ready; when the burst is over the target falls back to
// the minimum and the reaper removes the extra cells once they have waited past the stem TTL. A runtime whose
// cells fail to start is tried again after a delay that doubles with each failure, up to a minute.
export interface StemBounds {
  min: number; // kept at all times for a runtime that has stem cells
  max: number;
  windowMs: number; // how long a taken cell counts towards demand
}

export class StemPlanner {
  private readonly runtimes = new Set<string>();
  private readonly taken = new Map<string, number[]>(); // runtime -> when its cells were taken
  private readonly expected = new Map<string, number[]>(); // runtime -> when functions that will take one came
  private readonly failures = new Map<string, { count: number; until: number }>();

  constructor(private bounds: StemBounds) {}

  configure(b: Partial<StemBounds>): void {
    this.bounds = { ...this.bounds, ...Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) };
  }

  get current(): StemBounds {
    return { ...this.bounds };
  }

  // This node keeps stem cells of this runtime from now on; true when it did not before.
  add(runtime: string): boolean {
    if (this.runtimes.has(runtime)) return false;
    this.runtimes.add(runtime);
    return true;
  }

  list(): string[] {
    return [...this.runtimes];
  }

  tookOne(runtime: string, now = Date.now()): void {
    const list = this.recent(this.taken, runtime, now);
    list.push(now);
    this.recent(this.expected, runtime, now).shift(); // the call a deploy announced has come
  }

  // A function that will want a stem cell of this runtime for its first call was deployed.
  expect(runtime: string, now = Date.now()): void {
    this.recent(this.expected, runtime, now).push(now);
  }

  private recent(m: Map<string, number[]>, runtime: string, now: number): number[] {
    const list = (m.get(runtime) ?? []).filter((t) => now - t < this.bounds.windowMs);
    m.set(runtime, list);
    return list;
  }

  target(runtime: string, now = Date.now()): number {
    if (!this.runtimes.has(runtime)) return 0;
    const recent = this.recent(this.taken, runtime, now).length + this.recent(this.expected, runtime, now).length;
    return Math.max(0, Math.min(this.bounds.max, Math.max(this.bounds.min, this.bounds.min + recent)));
  }

  // Whether new cells of this runtime may be started now (not while backing off from failures).
  mayStart(runtime: string, now = Date.now()): boolean {
    return (this.failures.get(runtime)?.until ?? 0) <= now;
  }

  // A cell started or failed to; returns the delay before the next try after a failure.
  started(runtime: string, ok: boolean, now = Date.now()): number {
    if (ok) {
      this.failures.delete(runtime);
      return 0;
    }
    const count = (this.failures.get(runtime)?.count ?? 0) + 1;
    const delay = Math.min(1000 * 2 ** (count - 1), 60_000);
    this.failures.set(runtime, { count, until: now + delay });
    return delay;
  }
}
