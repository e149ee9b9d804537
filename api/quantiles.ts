// Percentiles for people (dashboard, batch progress): exact over a bounded sample, nearest-rank method.

/** The q-quantile (0..1) of the values, or null when there are none. Sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number | null {
  return quantiles(values, [q])[0]!;
}

/** Several quantiles of the same values, sorting one copy. */
export function quantiles(values: ArrayLike<number>, qs: readonly number[]): (number | null)[] {
  if (values.length === 0) return qs.map(() => null);
  const sorted = Float64Array.from(values).sort();
  return qs.map((q) => round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!));
}

export const round = (ms: number): number => Math.round(ms * 100) / 100;

/** The last `size` values seen (a ring), so that "recent latency" costs fixed memory per function. */
export class Recent {
  private readonly ring: Float64Array;
  private n = 0;

  constructor(size = 200) {
    this.ring = new Float64Array(size);
  }

  add(v: number): void {
    this.ring[this.n % this.ring.length] = v;
    this.n++;
  }

  quantile(q: number): number | null {
    return quantile(this.ring.subarray(0, Math.min(this.n, this.ring.length)), q);
  }
}

/**
 * A uniform sample of at most `size` of the values seen (reservoir sampling, Algorithm R), so that the
 * quantiles of one minute of calls cost fixed memory: exact up to `size` values, an estimate past them.
 */
export class Sample {
  private readonly values: number[] = [];
  private seen = 0;

  constructor(
    private readonly size = 128,
    private readonly random: () => number = Math.random,
  ) {}

  add(v: number): void {
    this.seen++;
    if (this.values.length < this.size) this.values.push(v);
    else {
      const j = Math.floor(this.random() * this.seen);
      if (j < this.size) this.values[j] = v;
    }
  }

  /** Values added, including those the sample no longer holds. */
  get count(): number {
    return this.seen;
  }

  /** The values it holds (at most `size`). */
  get held(): number {
    return this.values.length;
  }

  quantile(q: number): number | null {
    return quantile(this.values, q);
  }

  quantiles(qs: readonly number[]): (number | null)[] {
    return quantiles(this.values, qs);
  }
}
