// Per-function rate limits of public web paths: a token bucket each, refilled at the function's rate and
// holding at most one second's worth, so that a public function cannot be used to exhaust the cluster.
interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimits {
  private readonly buckets = new Map<string, Bucket>();

  // Takes one request's token; 0 when it may go now, else how many ms until one is there.
  take(key: string, perSecond: number, now = Date.now()): number {
    const b = this.buckets.get(key) ?? { tokens: perSecond, at: now };
    b.tokens = Math.min(perSecond, b.tokens + ((now - b.at) / 1000) * perSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) / perSecond) * 1000);
  }
}
