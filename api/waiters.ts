// Blocking invocations wait here until their call reaches a final state, whoever finished it: they wake with
// the record as the call's table keeps it (and the outcome as its node told it, for a web answer's body).
import type { Ended } from './ended.js';

type Resolve = (e: Ended) => void;

export class Waiters {
  private readonly waiting = new Map<number, Set<Resolve>>();

  // Resolves with the ended call, or null after timeoutMs.
  wait(callNum: number, timeoutMs: number): Promise<Ended | null> {
    return new Promise((resolve) => {
      const set = this.waiting.get(callNum) ?? new Set<Resolve>();
      this.waiting.set(callNum, set);
      const done: Resolve = (e) => {
        clearTimeout(timer);
        resolve(e);
      };
      const timer = setTimeout(() => {
        set.delete(done);
        if (set.size === 0) this.waiting.delete(callNum);
        resolve(null);
      }, timeoutMs);
      set.add(done);
    });
  }

  settle(callNum: number, ended: Ended): void {
    const set = this.waiting.get(callNum);
    if (!set) return;
    this.waiting.delete(callNum);
    for (const r of set) r(ended);
  }

  has(callNum: number): boolean {
    return this.waiting.has(callNum);
  }

  // The calls someone waits for.
  callNums(): IterableIterator<number> {
    return this.waiting.keys();
  }

  get size(): number {
    return this.waiting.size;
  }
}
