// Blocking invocations wait here until their call reaches a final state, whoever finished it.
import type { CallOutcome } from '../common/model.js';

type Resolve = (o: CallOutcome) => void;

export class Waiters {
  private readonly waiting = new Map<number, Set<Resolve>>();

  // Resolves with the outcome, or null after timeoutMs.
  wait(callNum: number, timeoutMs: number): Promise<CallOutcome | null> {
    return new Promise((resolve) => {
      const set = this.waiting.get(callNum) ?? new Set<Resolve>();
      this.waiting.set(callNum, set);
      const done: Resolve = (o) => {
        clearTimeout(timer);
        resolve(o);
      };
      const timer = setTimeout(() => {
        set.delete(done);
        if (set.size === 0) this.waiting.delete(callNum);
        resolve(null);
      }, timeoutMs);
      set.add(done);
    });
  }

  settle(callNum: number, outcome: CallOutcome): void {
    const set = this.waiting.get(callNum);
    if (!set) return;
    this.waiting.delete(callNum);
    for (const r of set) r(outcome);
  }

  get size(): number {
    return this.waiting.size;
  }
}
