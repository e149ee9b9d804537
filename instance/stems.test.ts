// The adaptive stem-cell planner: how many stem cells each runtime keeps, and when new ones may be started.
// Shows that a runtime the node keeps has a target within [min, max] that rises with the cells taken
// within the window and falls back to the minimum after it, that a runtime not added has target 0, and
// that a runtime whose cells fail to start backs off for 1 s, 2 s, 4 s ... up to 60 s, cleared by a start.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StemPlanner } from './stems.js';

const bounds = { min: 1, max: 4, windowMs: 60_000 };

describe('stem cell target', () => {
  it('is 0 for a runtime that was not added, whatever was taken', () => {
    const p = new StemPlanner(bounds);
    p.tookOne('node', 0);
    p.tookOne('node', 0);
    expect(p.target('node', 1)).toBe(0);
    expect(p.list()).toEqual([]);
  });

  it('adds a runtime once', () => {
    const p = new StemPlanner(bounds);
    expect(p.add('node')).toBe(true);
    expect(p.add('node')).toBe(false);
    expect(p.add('python')).toBe(true);
    expect(p.list().sort()).toEqual(['node', 'python']);
  });

  it('is the minimum without demand, rises by one per cell taken within the window, up to the maximum', () => {
    const p = new StemPlanner(bounds);
    p.add('node');
    expect(p.target('node', 0)).toBe(1);
    p.tookOne('node', 1000);
    expect(p.target('node', 1000)).toBe(2);
    p.tookOne('node', 2000);
    expect(p.target('node', 2000)).toBe(3);
    for (let i = 0; i < 5; i++) p.tookOne('node', 3000);
    expect(p.target('node', 3000)).toBe(4);
  });

  it('falls back to the minimum once the taken cells are older than the window', () => {
    const p = new StemPlanner(bounds);
    p.add('node');
    p.tookOne('node', 0);
    p.tookOne('node', 30_000);
    expect(p.target('node', 59_999)).toBe(3);
    expect(p.target('node', 60_000)).toBe(2); // the first one left the window
    expect(p.target('node', 90_000)).toBe(1);
    // a new burst counts again
    p.tookOne('node', 100_000);
    expect(p.target('node', 100_000)).toBe(2);
  });

  it('counts functions deployed for a first call as demand, once: the call that comes takes its place', () => {
    const p = new StemPlanner(bounds);
    p.add('node');
    for (let i = 0; i < 2; i++) p.expect('node', 0);
    expect(p.target('node', 1)).toBe(3);
    p.tookOne('node', 2); // one of them came: still 3 (1 taken + 1 expected), so a cell is started to refill
    expect(p.target('node', 3)).toBe(3);
    for (let i = 0; i < 6; i++) p.expect('node', 4);
    expect(p.target('node', 5)).toBe(4);
    expect(p.target('node', 5 + bounds.windowMs)).toBe(1);
  });

  it('counts demand per runtime', () => {
    const p = new StemPlanner(bounds);
    p.add('node');
    p.add('python');
    p.tookOne('node', 0);
    p.tookOne('node', 0);
    expect(p.target('node', 1)).toBe(3);
    expect(p.target('python', 1)).toBe(1);
  });

  it('follows new bounds and ignores those not given', () => {
    const p = new StemPlanner(bounds);
    p.add('node');
    p.tookOne('node', 0);
    p.configure({ min: 0, max: undefined });
    expect(p.current).toEqual({ min: 0, max: 4, windowMs: 60_000 });
    expect(p.target('node', 1)).toBe(1);
    p.configure({ max: 0 });
    expect(p.target('node', 1)).toBe(0);
    p.configure({ min: 2, max: 2 });
    expect(p.target('node', 1)).toBe(2);
  });

  it('stays within [min, max] whatever was taken and whenever it is asked', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        fc.array(fc.integer({ min: 0, max: 200_000 }), { maxLength: 30 }),
        fc.integer({ min: 0, max: 120_000 }),
        (a, b, taken, later) => {
          const now = Math.max(0, ...taken) + later; // asked after the cells were taken
          const [min, max] = [Math.min(a, b), Math.max(a, b)];
          const p = new StemPlanner({ min, max, windowMs: 60_000 });
          p.add('node');
          for (const t of [...taken].sort((x, y) => x - y)) p.tookOne('node', t);
          const target = p.target('node', now);
          expect(target).toBeGreaterThanOrEqual(min);
          expect(target).toBeLessThanOrEqual(max);
          const recent = taken.filter((t) => now - t < 60_000).length;
          expect(target).toBe(Math.min(max, min + recent));
        },
      ),
    );
  });
});

describe('stem cell start backoff', () => {
  it('may start a runtime that never failed', () => {
    expect(new StemPlanner(bounds).mayStart('node', 0)).toBe(true);
  });

  it('doubles the delay with each failure, up to 60 s, and waits it out', () => {
    const p = new StemPlanner(bounds);
    const delays: number[] = [];
    let now = 0;
    for (let i = 0; i < 9; i++) {
      const d = p.started('node', false, now);
      delays.push(d);
      expect(p.mayStart('node', now)).toBe(false);
      expect(p.mayStart('node', now + d - 1)).toBe(false);
      expect(p.mayStart('node', now + d)).toBe(true);
      now += d;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
  });

  it('clears the backoff when a cell starts', () => {
    const p = new StemPlanner(bounds);
    p.started('node', false, 0);
    p.started('node', false, 0);
    p.started('node', false, 0);
    expect(p.mayStart('node', 1000)).toBe(false);
    expect(p.started('node', true, 1000)).toBe(0);
    expect(p.mayStart('node', 1000)).toBe(true);
    expect(p.started('node', false, 2000)).toBe(1000);
  });

  it('backs off each runtime on its own', () => {
    const p = new StemPlanner(bounds);
    p.started('node', false, 0);
    expect(p.mayStart('node', 10)).toBe(false);
    expect(p.mayStart('python', 10)).toBe(true);
    expect(p.started('python', false, 10)).toBe(1000);
  });
});
