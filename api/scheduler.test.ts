// The scheduling decision on its own: capacity, warm first, and the per-function concurrency limit.
import { describe, expect, it } from 'vitest';
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { NodeInfo, NodeLoad } from '../protocol/broker.js';
import { Scheduler, type NodeState, type QueuedCall } from './scheduler.js';

const runtime = { name: 'node', image: 'zfaas/node:latest', path: '/ws', dependencies: '', run: 'node index.js' } as Runtime;
const fn = (name: string, concurrency?: number): FunctionMeta => ({
  functionName: name,
  runtimeName: 'node',
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-11-23T00:00:00.000Z',
  settings: { timeout: 30, memory: 256, cpus: 1, pids: 128, network: false, retry: true, env: {}, concurrency },
});

function setup(nodes: { id: string; capacity: number; warm?: Record<string, number> }[]): { s: Scheduler; sent: [string, number][] } {
  const sent: [string, number][] = [];
  const s = new Scheduler((node, call) => (sent.push([node, call.callNum]), true));
  for (const n of nodes) {
    const state: NodeState = {
      info: { id: n.id, capacity: n.capacity } as NodeInfo,
      load: { running: [], warm: n.warm ?? {} } as unknown as NodeLoad,
      inflight: new Map(),
      sentAt: new Map(),
      lastSeen: Date.now(),
      joinedAt: Date.now(),
      state: 'alive',
    };
    s.nodes.set(n.id, state);
  }
  return { s, sent };
}

let num = 0;
const call = (f: FunctionMeta): QueuedCall => ({ callNum: ++num, funcName: f.functionName, params: {}, fn: f, runtime });

describe('Scheduler', () => {
  it('never gives a node more than its capacity; the rest wait in order', () => {
    const { s, sent } = setup([{ id: 'a', capacity: 2 }]);
    const f = fn('f');
    const calls = [call(f), call(f), call(f)];
    for (const c of calls) s.enqueue(c);
    expect(sent.map(([, n]) => n)).toEqual([calls[0]!.callNum, calls[1]!.callNum]);
    expect(s.queueLength).toBe(1);
    s.release('a', calls[0]!.callNum);
    expect(sent.map(([, n]) => n)).toEqual(calls.map((c) => c.callNum));
  });

  it('prefers a node with a warm container for the function, else the least loaded', () => {
    const { s, sent } = setup([
      { id: 'cold', capacity: 8 },
      { id: 'warm', capacity: 8, warm: { 'f@1': 1 } },
    ]);
    s.enqueue(call(fn('f')));
    s.enqueue(call(fn('g')));
    expect(sent.map(([node]) => node)).toEqual(['warm', 'cold']);
  });

  it("holds a function to its concurrency limit without holding up other functions' calls", () => {
    const { s, sent } = setup([{ id: 'a', capacity: 8 }]);
    const one = fn('one', 1);
    const other = fn('other');
    const [o1, o2, o3] = [call(one), call(one), call(one)];
    const [x1, x2] = [call(other), call(other)];
    for (const c of [o1!, o2!, x1, o3!, x2]) s.enqueue(c);
    // Only the first call of `one` runs; `other`'s calls, queued behind it, go past.
    expect(sent.map(([, n]) => n)).toEqual([o1!.callNum, x1.callNum, x2.callNum]);
    expect(s.queueLength).toBe(2);
    s.release('a', x1.callNum); // another function's end frees nothing for `one`
    expect(sent).toHaveLength(3);
    s.release('a', o1!.callNum);
    expect(sent.map(([, n]) => n).slice(3)).toEqual([o2!.callNum]);
    // A node that dies gives its calls' places back: the next call of `one` may run elsewhere.
    expect(s.drop('a')).toEqual(expect.arrayContaining([o2!.callNum, x2.callNum]));
    s.nodes.get('a')!.state = 'alive';
    s.pump();
    expect(sent.map(([, n]) => n).slice(4)).toEqual([o3!.callNum]);
    // A call the node no longer holds (lost with a previous life) frees its place too.
    s.forget('a', o3!.callNum);
    s.enqueue(call(one));
    expect(sent).toHaveLength(6);
  });
});
