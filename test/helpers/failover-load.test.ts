// What the host-loss test concludes from its load: the longest pause in answers, and how many times each
// param ran from the recorders' run logs (a run counted once however many answers of its container hold it).
import { describe, expect, it } from 'vitest';
import { longestPause, runsByParam } from './failover-load.js';

describe('runsByParam', () => {
  it('counts each run once, from each container the longest log', () => {
    const runs = runsByParam([
      { i: 1, box: 'x', runs: [1] },
      { i: 2, box: 'x', runs: [1, 2] },
      { i: 3, box: 'y', runs: [3] },
    ]);
    expect(Object.fromEntries(runs)).toEqual({ 1: 1, 2: 1, 3: 1 });
  });

  it('sees a param run in two containers, or twice in one, as two runs', () => {
    const runs = runsByParam([
      { i: 1, box: 'x', runs: [1, 2, 1] },
      { i: 2, box: 'y', runs: [2] },
    ]);
    expect(runs.get(1)).toBe(2);
    expect(runs.get(2)).toBe(2);
  });
});

describe('longestPause', () => {
  it('is the longest gap between answers within the window, its edges included', () => {
    expect(longestPause([100, 900, 1000, 1200], 1000, 3000)).toBe(1800); // 1200 -> the end
    expect(longestPause([100, 1500, 4500, 5000], 1000, 5000)).toBe(3000); // 1500 -> 4500
    expect(longestPause([], 0, 700)).toBe(700);
  });
});
