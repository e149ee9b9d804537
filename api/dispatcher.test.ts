// The scheduling decision on its own: capacity, warm first, and the per-function concurrency limit. The
// node links are a fake that counts what it is given, as the broker does.
import { describe, expect, it } from 'vitest';
import type { FunctionMeta } from '../common/model.js';
import type { NodeInfo, NodeLoad } from '../protocol/broker.js';
import { Emitter, type BrokerEvents, type NodeView, type QueuedCall } from './broker.js';
import { fnMeta, nodeRuntime } from '../test/helpers/objects.js';
import { choose, Scheduler, type NodeLinks } from './dispatcher.js';

const runtime = nodeRuntime;
const fn = (name: string, concurrency?: number): FunctionMeta => fnMeta(name, 1, { concurrency });

interface FakeNode {
  info: NodeInfo;
  load: NodeLoad;
  state: 'alive' | 'dead';
  inflight: Map<number, QueuedCall | null>;
  lastSeen: number;
  joinedAt: number;
}

const node = (id: string, capacity: number, warm: Record<string, number> = {}): FakeNode => ({
  info: { id, capacity } as NodeInfo,
  load: { running: [], warm } as unknown as NodeLoad,
  state: 'alive',
  inflight: new Map(),
  lastSeen: Date.now(),
  joinedAt: Date.now(),
});

class FakeLinks implements NodeLinks {
  readonly events = new Emitter<BrokerEvents>();
  readonly table = new Map<string, FakeNode>();
  readonly sent: [string, number][] = [];
  readonly unreachable = new Set<string>();

  nodes(): Iterable<NodeView> {
    return this.table.values();
  }
  holds(callNum: number): boolean {
    return [...this.table.values()].some((n) => n.inflight.has(callNum));
  }
  invoke(nodeId: string, call: QueuedCall): Promise<void> {
    const n = this.table.get(nodeId)!;
    n.inflight.set(call.callNum, call);
    this.sent.push([nodeId, call.callNum]);
    if (!this.unreachable.has(nodeId)) return Promise.resolve();
    // As the broker does: the call is taken back and the node is lost before the scheduler hears.
    n.inflight.delete(call.callNum);
    n.state = 'dead';
    return Promise.reject(new Error('EHOSTUNREACH'));
  }
  release(nodeId: string, callNum: number): void {
    this.table.get(nodeId)!.inflight.delete(callNum);
    this.events.emit('room');
  }
  drop(nodeId: string): number[] {
    const n = this.table.get(nodeId)!;
    n.state = 'dead';
    const calls = [...n.inflight.keys()];
    n.inflight.clear();
    return calls;
  }
}

function setup(
  nodes: FakeNode[],
  nsLimit?: (qualifiedName: string) => number | undefined,
): { s: Scheduler; links: FakeLinks; sent: [string, number][] } {
  const links = new FakeLinks();
  for (const n of nodes) links.table.set(n.info.id, n);
  return { s: new Scheduler(links, nsLimit), links, sent: links.sent };
}

let num = 0;
const call = (f: FunctionMeta): QueuedCall => ({ callNum: ++num, funcName: f.functionName, params: {}, def: { fn: f, runtime } });

describe('choose', () => {
  it('is warm first, then least loaded by fraction, and skips full or dead nodes', () => {
    const f = fn('f');
    const c = call(f);
    const big = node('big', 10);
    big.inflight.set(1001, null); // 10% used
    const small = node('small', 2);
    small.inflight.set(1002, null); // 50% used
    expect(choose(c, [small, big])?.info.id).toBe('big');
    const warm = node('warm', 4, { 'f@1': 1 });
    warm.inflight.set(1003, null).set(1004, null); // 50% used, but warm
    expect(choose(c, [big, warm, small])?.info.id).toBe('warm');
    const full = node('full', 1, { 'f@1': 1 });
    full.inflight.set(1005, null);
    const dead = { ...node('dead', 8, { 'f@1': 1 }), state: 'dead' as const };
    expect(choose(c, [full, dead])).toBeUndefined();
    // A heartbeat's capacity wins over the registered one.
    const resized = node('resized', 1);
    resized.load = { ...resized.load, capacity: 4 };
    resized.inflight.set(1006, null);
    expect(choose(c, [resized])?.info.id).toBe('resized');
  });
});

describe('Scheduler', () => {
  it('never gives a node more than its capacity; the rest wait in order', () => {
    const { s, links, sent } = setup([node('a', 2)]);
    const f = fn('f');
    const calls = [call(f), call(f), call(f)];
    for (const c of calls) s.enqueue(c);
    expect(sent.map(([, n]) => n)).toEqual([calls[0]!.callNum, calls[1]!.callNum]);
    expect(s.queueLength).toBe(1);
    expect(s.knows(calls[2]!.callNum)).toBe(true);
    links.release('a', calls[0]!.callNum);
    expect(sent.map(([, n]) => n)).toEqual(calls.map((c) => c.callNum));
  });

  it('prefers a node with a warm container for the function, else the least loaded', () => {
    const { s, sent } = setup([node('cold', 8), node('warm', 8, { 'f@1': 1 })]);
    s.enqueue(call(fn('f')));
    s.enqueue(call(fn('g')));
    expect(sent.map(([n]) => n)).toEqual(['warm', 'cold']);
  });

  it("holds a function to its concurrency limit without holding up other functions' calls", () => {
    const { s, links, sent } = setup([node('a', 8)]);
    const one = fn('one', 1);
    const other = fn('other');
    const [o1, o2, o3] = [call(one), call(one), call(one)];
    const [x1, x2] = [call(other), call(other)];
    for (const c of [o1!, o2!, x1, o3!, x2]) s.enqueue(c);
    // Only the first call of `one` runs; `other`'s calls, queued behind it, go past.
    expect(sent.map(([, n]) => n)).toEqual([o1!.callNum, x1.callNum, x2.callNum]);
    expect(s.queueLength).toBe(2);
    links.release('a', x1.callNum); // another function's end frees nothing for `one`
    expect(sent).toHaveLength(3);
    links.release('a', o1!.callNum);
    expect(sent.map(([, n]) => n).slice(3)).toEqual([o2!.callNum]);
    // A node that dies gives its calls' places back: the next call of `one` may run elsewhere.
    expect(links.drop('a')).toEqual(expect.arrayContaining([o2!.callNum, x2.callNum]));
    links.table.get('a')!.state = 'alive';
    links.events.emit('room');
    expect(sent.map(([, n]) => n).slice(4)).toEqual([o3!.callNum]);
    // A call the node no longer holds (lost with a previous life) frees its place too.
    links.release('a', o3!.callNum);
    s.enqueue(call(one));
    expect(sent).toHaveLength(6);
  });

  it("holds a namespace to its running quota without holding up other namespaces' calls", () => {
    const limits: Record<string, number> = { flood: 2 };
    const { s, links, sent } = setup([node('a', 8)], (q) => limits[q.split('~')[0]!]);
    const [f1, f2] = [fn('flood~one'), fn('flood~two')];
    const flood = [call(f1), call(f2), call(f1), call(f2)];
    const neighbour = [call(fn('hello')), call(fn('team~hello'))];
    for (const c of [...flood, ...neighbour]) s.enqueue(c);
    // Two of the flooding namespace's calls, over both its functions; the others go past the rest.
    expect(sent.map(([, n]) => n)).toEqual([flood[0]!.callNum, flood[1]!.callNum, neighbour[0]!.callNum, neighbour[1]!.callNum]);
    expect(s.queueLength).toBe(2);
    links.release('a', neighbour[0]!.callNum);
    expect(sent).toHaveLength(4);
    links.release('a', flood[1]!.callNum);
    expect(sent.map(([, n]) => n).slice(4)).toEqual([flood[2]!.callNum]);
  });

  it('puts a call whose send failed back at the front, ahead of later calls', async () => {
    const { s, links, sent } = setup([node('bad', 8), node('good', 1)]);
    links.table.get('good')!.inflight.set(999, null); // full for now
    links.unreachable.add('bad');
    const f = fn('f');
    const [c1, c2] = [call(f), call(f)];
    s.enqueue(c1);
    expect(sent).toEqual([['bad', c1.callNum]]);
    await Promise.resolve(); // the rejection reaches the scheduler
    await Promise.resolve();
    expect(s.queueLength).toBe(1);
    s.enqueue(c2);
    links.release('good', 999);
    expect(sent.slice(1)).toEqual([['good', c1.callNum]]);
    expect(s.queueLength).toBe(1);
  });

  it('drops queued calls a node turns out to hold, so they do not run twice', () => {
    const { s, links, sent } = setup([node('a', 1)]);
    links.table.get('a')!.inflight.set(998, null);
    const f = fn('f');
    const [c1, c2] = [call(f), call(f)];
    s.enqueue(c1);
    s.enqueue(c2);
    links.events.emit('adopted', { node: 'a', calls: [c1.callNum] });
    expect(s.queueLength).toBe(1);
    links.release('a', 998);
    expect(sent).toEqual([['a', c2.callNum]]);
  });

  it('hands nothing out while it may not dispatch, and all in order once it may again', () => {
    const links = new FakeLinks();
    links.table.set('a', node('a', 4));
    let may = false;
    const s = new Scheduler(links, undefined, () => may);
    const f = fn('f');
    const calls = [call(f), call(f)];
    for (const c of calls) s.enqueue(c);
    links.events.emit('room');
    expect(links.sent).toEqual([]);
    expect(s.knows(calls[0]!.callNum)).toBe(true);
    may = true;
    s.pump();
    expect(links.sent).toEqual(calls.map((c) => ['a', c.callNum]));
  });
});
