// The one place that decides which node runs a call. Calls wait in a FIFO queue at the API while every
// node is full; a node never holds more calls than its capacity, and a function with a `concurrency`
// setting never has more calls running than that: its further calls wait, and later calls of other
// functions go past them. The choice itself is `choose`, a pure function of the call and the nodes as
// they stand; the Scheduler only keeps the queue and hands calls to the node links (the broker), which
// own the node table.
import type { FunctionMeta } from '../common/model.js';
import { namespaceOf } from '../common/namespace.js';
import { capacityOf, type BrokerEvents, type Listen, type NodeView, type QueuedCall } from './broker.js';

export const warmKey = (fn: FunctionMeta): string => `${fn.functionName}@${fn.version}`;

// Warm first (a node that reports a warm container for this function version and has room), then the
// least loaded node by the fraction of its capacity in use. Undefined: no node has room.
export function choose(call: QueuedCall, nodes: Iterable<NodeView>): NodeView | undefined {
  let best: NodeView | undefined;
  let bestScore = Infinity;
  const key = warmKey(call.def.fn);
  for (const n of nodes) {
    const cap = capacityOf(n);
    if (n.state !== 'alive' || n.load.draining || n.full || n.inflight.size >= cap) continue;
    const warm = (n.load.warm[key] ?? 0) > 0 ? 0 : 1;
    const score = warm * 10 + n.inflight.size / cap;
    if (score < bestScore) {
      best = n;
      bestScore = score;
    }
  }
  return best;
}

// What the scheduler needs of the node links (the broker implements it).
export interface NodeLinks {
  nodes(): Iterable<NodeView>;
  holds(callNum: number): boolean; // a node holds it, or its result is known and not yet in the DB
  // Hands the call to the node; the node counts it at once. Rejects when the call never left: the broker
  // has then taken it back from the node (and marked the node lost), and it is the scheduler's again.
  invoke(nodeId: string, call: QueuedCall): Promise<void>;
  readonly events: Listen<Pick<BrokerEvents, 'room' | 'adopted'>>;
}

// What observers may read of the queue.
export interface QueueView {
  readonly queueLength: number;
}

export class Scheduler implements QueueView {
  private readonly queue: QueuedCall[] = [];
  private readonly queued = new Set<number>();

  // `nsLimit`: how many calls of a function's namespace may be in nodes' hands at once (its quota).
  // `mayDispatch`: false while this API must hand no call out (its lease on a shared store is in doubt);
  // call pump() when it turns true again.
  constructor(
    private readonly links: NodeLinks,
    private readonly nsLimit: (qualifiedName: string) => number | undefined = () => undefined,
    private readonly mayDispatch: () => boolean = () => true,
  ) {
    links.events.on('room', () => this.pump());
    links.events.on('adopted', ({ calls }) => this.withdraw(calls));
  }

  enqueue(call: QueuedCall, front = false): void {
    if (this.queued.has(call.callNum) || this.links.holds(call.callNum)) return;
    this.queued.add(call.callNum);
    if (front) this.queue.unshift(call);
    else this.queue.push(call);
    this.pump();
  }

  // Known here (waiting) or to a node: recovery leaves such a call alone.
  knows(callNum: number): boolean {
    return this.queued.has(callNum) || this.links.holds(callNum);
  }

  get queueLength(): number {
    return this.queue.length;
  }

  // Calls of one function waiting here (a trigger's backpressure reads it).
  queuedOf(funcName: string): number {
    let n = 0;
    for (const c of this.queue) if (c.funcName === funcName) n++;
    return n;
  }

  // Takes a call out of the queue (it was cancelled); whether it was there.
  drop(callNum: number): boolean {
    if (!this.queued.has(callNum)) return false;
    this.withdraw([callNum]);
    return true;
  }

  // Empties the queue (its calls went to another API): how many were in it.
  clear(): number {
    const n = this.queue.length;
    this.queue.splice(0);
    this.queued.clear();
    return n;
  }

  // Calls a node turned out to hold already leave the queue, so they do not run twice.
  private withdraw(callNums: number[]): void {
    let any = false;
    for (const c of callNums) any = this.queued.delete(c) || any;
    if (!any) return;
    for (let i = this.queue.length - 1; i >= 0; i--) if (!this.queued.has(this.queue[i]!.callNum)) this.queue.splice(i, 1);
  }

  // Calls in nodes' hands, by function and by namespace ("ns:" keys): derived from what each node holds,
  // so it cannot drift from it.
  private runningCounts(): Map<string, number> {
    const running = new Map<string, number>();
    const add = (k: string): void => void running.set(k, (running.get(k) ?? 0) + 1);
    for (const n of this.links.nodes()) {
      for (const c of n.inflight.values()) {
        if (!c) continue;
        add(c.funcName);
        add(`ns:${namespaceOf(c.funcName)}`);
      }
    }
    return running;
  }

  // Hands out queued calls in order. A call whose function or namespace is at its limit keeps its place;
  // the scan stops at the first call no node has room for (none has room for any then).
  pump(): void {
    let running: Map<string, number> | undefined; // counted only when a queued call has a limit
    if (this.queue.length > 0 && !this.mayDispatch()) return;
    for (let i = 0; i < this.queue.length;) {
      const call = this.queue[i]!;
      const limit = call.def.fn.settings.concurrency;
      const nsLimit = this.nsLimit(call.funcName);
      const nsKey = `ns:${namespaceOf(call.funcName)}`;
      if (limit !== undefined || nsLimit !== undefined) {
        running ??= this.runningCounts();
        if (
          (limit !== undefined && (running.get(call.funcName) ?? 0) >= limit) ||
          (nsLimit !== undefined && (running.get(nsKey) ?? 0) >= nsLimit)
        ) {
          i++;
          continue;
        }
      }
      const node = choose(call, this.links.nodes());
      if (!node) return;
      this.queue.splice(i, 1);
      this.queued.delete(call.callNum);
      // A call that never reached its node goes back to the front: it keeps its turn (the broker logged it).
      this.links.invoke(node.info.id, call).catch(() => this.enqueue(call, true));
      running?.set(call.funcName, (running.get(call.funcName) ?? 0) + 1);
      running?.set(nsKey, (running.get(nsKey) ?? 0) + 1);
    }
  }
}
