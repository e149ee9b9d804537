// Percentiles for people (dashboard, batch progress): exact over a bounded sample, nearest-rank method.

/** The q-quantile (0..1) of the values, or null when there are none. Sorts a copy. */
export function quantile(values: ArrayLike<number>, q: number): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return round(sorted[rank]!);
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
