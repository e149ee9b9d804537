// The percentile helpers: nearest-rank quantiles, the ring of recent values, and the bounded sample
// (reservoir) that keeps one minute of latencies in fixed memory.
import { describe, expect, it } from 'vitest';
import { quantile, Recent, Sample } from './quantiles.js';

describe('quantile', () => {
  it('is the nearest rank, null without values', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([3, 1, 2], 0.5)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.95)).toBe(4);
    expect(quantile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 0.5)).toBe(5);
  });
});

describe('Recent', () => {
  it('keeps the last values only', () => {
    const r = new Recent(3);
    for (const v of [100, 100, 100, 1, 2, 3]) r.add(v);
    expect(r.quantile(0.95)).toBe(3);
  });
});

describe('Sample', () => {
  it('holds every value up to its size: exact quantiles', () => {
    const s = new Sample(10);
    for (let i = 10; i >= 1; i--) s.add(i);
    expect(s.count).toBe(10);
    expect(s.held).toBe(10);
    expect(s.quantile(0.5)).toBe(5);
    expect(s.quantile(0.95)).toBe(10);
  });

  it('holds at most its size past it, each value kept with the same chance', () => {
    // A seeded generator (mulberry32): the test is the same on every run.
    let seed = 42;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const s = new Sample(200, random);
    for (let i = 1; i <= 100_000; i++) s.add(i);
    expect(s.count).toBe(100_000);
    expect(s.held).toBe(200);
    // Uniform over 1..100000: the median near 50000, p95 near 95000.
    expect(s.quantile(0.5)).toBeGreaterThan(40_000);
    expect(s.quantile(0.5)).toBeLessThan(60_000);
    expect(s.quantile(0.95)).toBeGreaterThan(90_000);
  });
});
