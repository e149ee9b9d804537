// The one place that decides which node runs a call. Calls wait in a FIFO queue at the API while every
// node is full; a node never holds more calls than its capacity, and a function with a `concurrency`
// setting never has more calls running than that: its further calls wait, and later calls of other
// functions go past them.
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { NodeInfo, NodeLoad } from '../protocol/broker.js';

export interface QueuedCall {
  callNum: number;
  funcName: string;
  params: unknown;
  fn: FunctionMeta;
  runtime: Runtime;
  redundant?: boolean;
}

export interface NodeState {
  info: NodeInfo;
  load: NodeLoad;
  inflight: Map<number, QueuedCall | null>; // null: adopted from a node's report after an API restart
  sentAt: Map<number, number>; // when each in-flight call was handed to the node
  lastSeen: number;
  joinedAt: number;
  state: 'alive' | 'dead';
}

export const warmKey = (fn: FunctionMeta): string => `${fn.functionName}@${fn.version}`;

export class Scheduler {
  readonly nodes = new Map<string, NodeState>();
  private readonly queue: QueuedCall[] = [];
  private readonly queued = new Set<number>();

  constructor(private readonly send: (nodeId: string, call: QueuedCall) => boolean) {}

  enqueue(call: QueuedCall, front = false): void {
    if (this.queued.has(call.callNum) || this.owner(call.callNum)) return;
    this.queued.add(call.callNum);
    if (front) this.queue.unshift(call);
    else this.queue.push(call);
    this.pump();
  }

  owner(callNum: number): NodeState | undefined {
    for (const n of this.nodes.values()) if (n.inflight.has(callNum)) return n;
    return undefined;
  }

  knows(callNum: number): boolean {
    return this.queued.has(callNum) || this.owner(callNum) !== undefined;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  // A node finished (or gave back) a call: free its slot and hand out more work.
  release(nodeId: string, callNum: number): void {
    this.forget(nodeId, callNum);
    this.pump();
  }

  // A node no longer holds a call (it ended, or the node lost it); the caller decides what comes next.
  forget(nodeId: string, callNum: number): void {
    this.nodes.get(nodeId)?.inflight.delete(callNum);
    this.nodes.get(nodeId)?.sentAt.delete(callNum);
  }

  // Marks a node dead and returns the numbers of the calls it held.
  drop(nodeId: string): number[] {
    const n = this.nodes.get(nodeId);
    if (!n) return [];
    n.state = 'dead';
    const calls = [...n.inflight.keys()];
    n.inflight.clear();
    n.sentAt.clear();
    return calls;
  }

  // Calls in nodes' hands, by function: derived from what each node holds, so it cannot drift from it.
  private runningByFunction(): Map<string, number> {
    const running = new Map<string, number>();
    for (const n of this.nodes.values()) {
      for (const c of n.inflight.values()) if (c) running.set(c.funcName, (running.get(c.funcName) ?? 0) + 1);
    }
    return running;
  }

  // Hands out queued calls in order. A call whose function is at its limit keeps its place; the scan
  // stops at the first call no node has room for (none has room for any then).
  pump(): void {
    let running: Map<string, number> | undefined; // counted only when a queued call has a limit
    for (let i = 0; i < this.queue.length;) {
      const call = this.queue[i]!;
      const limit = call.fn.settings.concurrency;
      if (limit !== undefined) {
        running ??= this.runningByFunction();
        if ((running.get(call.funcName) ?? 0) >= limit) {
          i++;
          continue;
        }
      }
      const node = this.choose(call);
      if (!node) return;
      this.queue.splice(i, 1);
      this.queued.delete(call.callNum);
      node.inflight.set(call.callNum, call);
      node.sentAt.set(call.callNum, Date.now());
      if (!this.send(node.info.id, call)) {
        node.inflight.delete(call.callNum);
        node.state = 'dead';
        this.queue.splice(i, 0, call);
        this.queued.add(call.callNum);
        continue;
      }
      running?.set(call.funcName, (running.get(call.funcName) ?? 0) + 1);
    }
  }

  // Warm first (a node that reports a warm container for this function version and has room), then the
  // least loaded node by the fraction of its capacity in use.
  choose(call: QueuedCall): NodeState | undefined {
    let best: NodeState | undefined;
    let bestScore = Infinity;
    const key = warmKey(call.fn);
    for (const n of this.nodes.values()) {
      const cap = capacityOf(n);
      if (n.state !== 'alive' || n.inflight.size >= cap) continue;
      const warm = (n.load.warm[key] ?? 0) > 0 ? 0 : 1;
      const score = warm * 10 + n.inflight.size / cap;
      if (score < bestScore) {
        best = n;
        bestScore = score;
      }
    }
    return best;
  }
}

// A node's capacity follows its heartbeats (its pools can be resized while it runs).
export const capacityOf = (n: NodeState): number => n.load.capacity ?? n.info.capacity;
