// Where a function's calls spend their time (pace.ts), without a node: which functions count as quick.
import { describe, expect, it } from 'vitest';
import { MIN_SAMPLES, Pace, STALE_MS } from './pace.js';

const feed = (p: Pace, key: string, tookUs: number | undefined, roundTripMs: number, n: number, at = 0): void => {
  for (let i = 0; i < n; i++) p.note(key, tookUs, roundTripMs, at);
};

describe('Pace', () => {
  it('calls a function quick once enough of its calls spent less than half their round trip in it', () => {
    const p = new Pace();
    feed(p, 'echo', 30, 0.6, MIN_SAMPLES - 1); // 30 µs of 600
    expect(p.quickMs('echo', 0)).toBeUndefined(); // not seen enough yet
    feed(p, 'echo', 30, 0.6, 1);
    expect(p.quickMs('echo', 0)).toBeCloseTo(0.6);
  });

  it('does not call quick a function whose calls spend their time in it (computing, or waiting on I/O)', () => {
    const p = new Pace();
    feed(p, 'io', 50_000, 50.4, 100);
    expect(p.quickMs('io', 0)).toBeUndefined();
  });

  it('counts a few long calls among many short ones by the time they hold its containers', () => {
    const p = new Pace();
    // 9 of 10 calls answered from a cache (10 µs of 1 ms), 1 of 10 a query of 100 ms: most of the
    // containers' busy time is in the function, and more containers would serve it faster
    for (let i = 0; i < 200; i++) p.note('cache', i % 10 === 0 ? 100_000 : 10, i % 10 === 0 ? 100.5 : 1, 0);
    expect(p.quickMs('cache', 0)).toBeUndefined();
  });

  it('follows a change of pace: calls that start to take long in the function end its being quick', () => {
    const p = new Pace();
    feed(p, 'f', 30, 0.6, 100);
    expect(p.quickMs('f', 0)).toBeDefined();
    feed(p, 'f', 40_000, 40.5, 20);
    expect(p.quickMs('f', 0)).toBeUndefined();
  });

  it('forgets a function whose loader does not say `took`, and one not called for a while', () => {
    const p = new Pace();
    feed(p, 'f', 30, 0.6, 100);
    p.note('f', undefined, 0.6, 0);
    expect(p.quickMs('f', 0)).toBeUndefined();
    feed(p, 'g', 30, 0.6, 100);
    expect(p.quickMs('g', STALE_MS + 1)).toBeUndefined();
    feed(p, 'g', 30, 0.6, 1, STALE_MS + 1); // a new start: one call is not enough
    expect(p.quickMs('g', STALE_MS + 1)).toBeUndefined();
    p.prune(3 * STALE_MS);
    feed(p, 'g', 30, 0.6, MIN_SAMPLES - 1, 3 * STALE_MS);
    expect(p.quickMs('g', 3 * STALE_MS)).toBeUndefined();
  });

  it('has a function judged once enough of its warm calls were seen, quick or not, until a long pause', () => {
    const p = new Pace();
    expect(p.unjudged('new', 0)).toBe(true); // never called
    feed(p, 'echo', 30, 0.6, MIN_SAMPLES - 1);
    expect(p.unjudged('echo', 0)).toBe(true);
    feed(p, 'echo', 30, 0.6, 1);
    expect(p.unjudged('echo', 0)).toBe(false); // quick
    feed(p, 'io', 50_000, 50.4, MIN_SAMPLES);
    expect(p.unjudged('io', 0)).toBe(false); // not quick, but judged
    expect(p.unjudged('echo', STALE_MS + 1)).toBe(true); // not called for a while: judged again
  });

  it('never holds a function whose loader does not say `took` as still to be judged', () => {
    const p = new Pace();
    p.note('old', undefined, 0.6, 0);
    expect(p.unjudged('old', 0)).toBe(false);
    expect(p.unjudged('old', STALE_MS + 1)).toBe(true); // forgotten after a long pause, as any other
    p.note('old', 30, 0.6, STALE_MS + 2); // its loader now says it (a newer image)
    expect(p.unjudged('old', STALE_MS + 2)).toBe(true);
    p.prune(3 * STALE_MS);
    expect(p.unjudged('old', 3 * STALE_MS)).toBe(true);
  });
});
