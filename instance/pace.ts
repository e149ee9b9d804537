// Where a function's warm calls spend their time, per function version: the share of its calls' round trip
// (the node sending a call to its result being read) that the function itself ran, as its loader's `took`
// says. A function whose calls spend most of the round trip outside the function (in the node, on the line,
// waiting for a CPU) is not served faster by more containers: each one more is another process woken for
// every call it takes, on CPUs that are already busy. placement.ts lets such a function wait for one of its
// own containers to free instead of making another (see `quickMs`); a function whose calls spend their time
// in the function (computing, or waiting on I/O) gets containers as its calls arrive, as before.
//
// Averages are exponentially weighted over calls, and forgotten after STALE_MS without a call. Whether a
// function is quick is mostly its own nature (an echo is quick on an idle machine and on a busy one), so it
// is kept across pauses in its load; a function whose calls start to take long stops being quick within
// some twenty calls, and placement.ts never lets calls wait on one that runs long. A loader that does not
// say `took` (an older protocol) leaves the function unknown, which is "make containers as calls arrive".
// Until a function is judged (its first MIN_SAMPLES warm calls, or the first after a long pause), placement
// lets its calls wait a moment for its own busy containers before making more (see `unjudged`): a burst at
// a quick function's first calls would otherwise make containers that are removed again seconds later.

export const QUICK_SHARE = 0.5; // below this share of the round trip in the function, a function is quick
export const MIN_SAMPLES = 16; // calls seen before a function is judged
export const STALE_MS = 5 * 60_000;
const ALPHA = 1 / 16;

// Means of the time in the function and of the round trip, not of their ratio: the share is then that of
// its containers' busy time, and a function with a few long calls among many short ones (a cache that
// mostly hits) counts as the long calls make it, since those hold its containers.
interface Seen {
  tookMs: number; // the weighted mean time in the function
  roundTripMs: number; // the weighted mean round trip
  n: number;
  at: number; // the last call's end
  silent?: true; // its loader does not say `took`: never judged, and not waiting to be
}

// What placement needs of a function's pace (see `quickMs` and `unjudged`).
export interface Verdict {
  quickMs: number | undefined;
  unjudged: boolean;
}

export class Pace {
  private readonly seen = new Map<string, Seen>();

  // One warm call of the function ended: the loader's `took` (µs; undefined when it does not say) and the
  // round trip the node measured (ms).
  note(key: string, tookUs: number | undefined, roundTripMs: number, now = Date.now()): void {
    if (tookUs === undefined) {
      this.seen.set(key, { tookMs: 0, roundTripMs: 0, n: 0, at: now, silent: true });
      return;
    }
    if (!(roundTripMs > 0)) {
      this.seen.delete(key);
      return;
    }
    const tookMs = Math.min(tookUs / 1000, roundTripMs); // the loader's clock may run a little ahead of the node's
    const s = this.seen.get(key);
    if (!s || s.silent || now - s.at > STALE_MS) {
      this.seen.set(key, { tookMs, roundTripMs, n: 1, at: now });
      return;
    }
    s.tookMs += ALPHA * (tookMs - s.tookMs);
    s.roundTripMs += ALPHA * (roundTripMs - s.roundTripMs);
    s.n++;
    s.at = now;
  }

  // Both at once: `quickMs` is the function's recent mean round trip (ms) when its calls spend less than
  // QUICK_SHARE of it in the function, undefined when they spend more or it is not judged; `unjudged` is
  // true while fewer than MIN_SAMPLES of its warm calls were seen lately (none at all for a new one) and its
  // loader is not known to keep `took` to itself.
  verdict(key: string, now = Date.now()): Verdict {
    const s = this.seen.get(key);
    if (!s || now - s.at > STALE_MS) return { quickMs: undefined, unjudged: true };
    if (s.silent) return { quickMs: undefined, unjudged: false };
    if (s.n < MIN_SAMPLES) return { quickMs: undefined, unjudged: true };
    return { quickMs: s.tookMs < QUICK_SHARE * s.roundTripMs ? s.roundTripMs : undefined, unjudged: false };
  }

  quickMs(key: string, now = Date.now()): number | undefined {
    return this.verdict(key, now).quickMs;
  }

  unjudged(key: string, now = Date.now()): boolean {
    return this.verdict(key, now).unjudged;
  }

  // Drops what went stale (functions no longer called), so that the map holds only functions in use.
  prune(now = Date.now()): void {
    for (const [k, s] of this.seen) if (now - s.at > STALE_MS) this.seen.delete(k);
  }
}
