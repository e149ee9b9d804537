// The broker against fake nodes: messages go in through a fake transport, and the tests look at what the
// broker sends, what it tells its listeners and what it records in a fake DB. No sockets, no Docker.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import type { CallOutcome } from '../common/model.js';
import { encode } from '../protocol/codec.js';
import { BROKER_PROTOCOL, HEARTBEAT_LIVENESS, HEARTBEAT_MS, type ToApiSchema, type ToInstance } from '../protocol/broker.js';
import { fnMeta, nodeRuntime } from '../test/helpers/objects.js';
import { Broker, type BrokerEvents, type Definition, type NodeTransport, type QueuedCall } from './broker.js';
import { choose, Scheduler } from './dispatcher.js';

type FromNode = z.input<typeof ToApiSchema>;

class FakeTransport implements NodeTransport {
  private onMessage?: (nodeId: string, frames: Buffer[]) => void;
  readonly sent: { node: string; msg: ToInstance }[] = [];
  readonly unreachable = new Set<string>();

  async open(onMessage: (nodeId: string, frames: Buffer[]) => void): Promise<void> {
    this.onMessage = onMessage;
  }
  send(node: string, m: ToInstance): Promise<void> {
    this.sent.push({ node, msg: structuredClone(m) }); // as it was when sent
    return this.unreachable.has(node) ? Promise.reject(new Error('Host unreachable')) : Promise.resolve();
  }
  close(): void {}

  from(node: string, m: FromNode): void {
    this.onMessage!(node, encode(m));
  }
  of<T extends ToInstance['type']>(type: T, node?: string): Extract<ToInstance, { type: T }>[] {
    return this.sent
      .filter((s) => s.msg.type === type && (node === undefined || s.node === node))
      .map((s) => s.msg as Extract<ToInstance, { type: T }>);
  }
}

const runtime = nodeRuntime;
const done: CallOutcome = { status: 'DONE', result: '42' };

let num = 0;
const call = (def: Definition): QueuedCall => ({ callNum: ++num, funcName: def.fn.functionName, params: { n: num }, def });

const register = (id: string, life: string, running: number[] = [], capacity = 4, warm: Record<string, number> = {}): FromNode => ({
  type: 'register',
  node: { id, capacity, policy: 'none', life, protocol: BROKER_PROTOCOL },
  load: { running, warm },
});
const heartbeat = (running: number[]): FromNode => ({ type: 'heartbeat', load: { running } });

interface Setup {
  broker: Broker;
  net: FakeTransport;
  logs: { msg: string; [k: string]: unknown }[];
  heard: { [K in keyof BrokerEvents]: BrokerEvents[K][0][] };
}

async function setup(): Promise<Setup> {
  const net = new FakeTransport();
  const logs: Setup['logs'] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as Setup['logs'][0]) });
  const broker = new Broker({ transport: net, log });
  const heard: Setup['heard'] = { room: [], adopted: [], started: [], outcome: [], nodeLost: [], givenBack: [], stream: [] };
  broker.events.on('givenBack', (g) => heard.givenBack.push(g));
  broker.events.on('stream', (p) => heard.stream.push(p));
  broker.events.on('started', (r) => heard.started.push(r));
  broker.events.on('outcome', (r) => heard.outcome.push(r));
  broker.events.on('room', () => heard.room.push(undefined));
  broker.events.on('nodeLost', (l) => heard.nodeLost.push(l));
  broker.events.on('adopted', (a) => heard.adopted.push(a));
  await broker.start();
  return { broker, net, logs, heard };
}

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Broker', () => {
  it('registers a node, welcomes it and shows it read-only; a node claiming another id is ignored', async () => {
    const { broker, net } = await setup();
    net.from('n1', register('n1', 'L1', [], 3));
    expect(net.of('welcome', 'n1')).toHaveLength(1);
    expect(broker.get('n1')).toMatchObject({ state: 'alive', info: { id: 'n1', capacity: 3, life: 'L1' } });
    expect(broker.alive().map((n) => n.info.id)).toEqual(['n1']);
    expect(broker.capacity()).toBe(3);
    net.from('n1', heartbeat([]));
    net.from('n1', { type: 'heartbeat', load: { running: [], capacity: 5 } });
    expect(broker.capacity()).toBe(5); // heartbeats carry the node's current capacity
    net.from('n2', register('someone-else', 'L'));
    expect(broker.get('someone-else')).toBeUndefined();
    expect(broker.get('n2')).toBeUndefined();
    // A node we do not know is asked to register again.
    net.from('n3', heartbeat([]));
    expect(net.of('reregister', 'n3')).toHaveLength(1);
    broker.stop();
  });

  it('refuses a node of another protocol version, saying why, and gives it nothing', async () => {
    const { broker, net } = await setup();
    net.from('old', { type: 'register', node: { id: 'old', capacity: 4, policy: 'none', life: 'O1' }, load: { running: [7] } });
    expect(broker.get('old')).toBeUndefined();
    expect(net.of('welcome', 'old')).toEqual([]);
    expect(net.of('refused', 'old')[0]?.why).toBe(
      `this API speaks broker protocol ${BROKER_PROTOCOL} and the node 1: run the same zfaas version on both`,
    );
    expect(broker.holds(7)).toBe(false);
    broker.stop();
  });

  it('sends heartbeats and loses a node that falls silent, handing its calls to the retry rule', async () => {
    const { broker, net, heard } = await setup();
    net.from('n1', register('n1', 'L1'));
    const c = call({ fn: fnMeta('f'), runtime });
    await broker.invoke('n1', c);
    vi.advanceTimersByTime(HEARTBEAT_MS);
    expect(net.of('heartbeat', 'n1')).toHaveLength(1);
    vi.advanceTimersByTime(HEARTBEAT_MS * HEARTBEAT_LIVENESS);
    expect(broker.get('n1')?.state).toBe('dead');
    expect(heard.nodeLost).toEqual([{ node: 'n1', life: 'L1', calls: [c.callNum], why: 'fell silent' }]);
    expect(broker.holds(c.callNum)).toBe(false);
    broker.stop();
  });

  it('hears a draining node: calls it gives back leave its count and go to Calls; it takes no new call', async () => {
    const { broker, net, heard } = await setup();
    net.from('n1', register('n1', 'L1'));
    const [a, b] = [call({ fn: fnMeta('f'), runtime }), call({ fn: fnMeta('f'), runtime })];
    await broker.invoke('n1', a);
    await broker.invoke('n1', b);
    net.from('n1', { type: 'heartbeat', load: { running: [a.callNum, b.callNum], draining: true } });
    expect(choose(call({ fn: fnMeta('f'), runtime }), broker.nodes())).toBeUndefined();
    net.from('n1', { type: 'giveBack', calls: [b.callNum, 999] });
    expect(heard.givenBack).toEqual([{ node: 'n1', calls: [b.callNum] }]); // not one it never had
    expect([...broker.get('n1')!.inflight.keys()]).toEqual([a.callNum]);
    expect(heard.nodeLost).toEqual([]);
    broker.stop();
  });

  it('reconciles heartbeats: a call the node stops listing is lost only after it had time to arrive', async () => {
    const { broker, net, heard } = await setup();
    net.from('n1', register('n1', 'L1'));
    const [a, b] = [call({ fn: fnMeta('f'), runtime }), call({ fn: fnMeta('f'), runtime })];
    await broker.invoke('n1', a);
    await broker.invoke('n1', b);
    net.from('n1', heartbeat([a.callNum])); // b may still be on its way
    expect(heard.nodeLost).toEqual([]);
    vi.advanceTimersByTime(2 * HEARTBEAT_MS + 1);
    net.from('n1', heartbeat([a.callNum]));
    expect(heard.nodeLost).toEqual([{ node: 'n1', life: 'L1', calls: [b.callNum], why: 'no longer holds the call' }]);
    expect(broker.get('n1')?.inflight.has(a.callNum)).toBe(true);
    expect(broker.get('n1')?.inflight.has(b.callNum)).toBe(false);
    broker.stop();
  });

  it('adopts calls a node reports that nobody gave it (an API restart), counting them against its capacity', async () => {
    const { broker, net, heard } = await setup();
    net.from('n1', register('n1', 'L1', [501, 502], 2));
    expect(heard.adopted).toEqual([{ node: 'n1', calls: [501, 502] }]);
    expect(broker.holds(501)).toBe(true);
    expect(broker.get('n1')?.inflight.size).toBe(2);
    // Its result for an adopted call frees the slot.
    net.from('n1', { type: 'outcome', callNum: 501, outcome: done, ran: true, life: 'L1' });
    expect(broker.get('n1')?.inflight.size).toBe(1);
    broker.stop();
  });

  it('sends a definition once per node, again to a new life, and again when the definition object is new', async () => {
    const { broker, net } = await setup();
    net.from('n1', register('n1', 'L1'));
    net.from('n2', register('n2', 'M1'));
    const def: Definition = { fn: fnMeta('f', 3), runtime };
    const calls = [call(def), call(def), call(def)];
    await broker.invoke('n1', calls[0]!);
    await broker.invoke('n1', calls[1]!);
    await broker.invoke('n2', calls[2]!);
    const toN1 = net.of('invoke', 'n1');
    expect(toN1[0]).toEqual({
      type: 'invoke',
      call: { callNum: calls[0]!.callNum, params: calls[0]!.params },
      fn: { name: 'f', version: 3 },
      def: { fn: def.fn, runtime },
    });
    expect(toN1[1]).toEqual({
      type: 'invoke',
      call: { callNum: calls[1]!.callNum, params: calls[1]!.params },
      fn: { name: 'f', version: 3 },
    });
    expect(net.of('invoke', 'n2')[0]?.def).toEqual({ fn: def.fn, runtime });

    // The same process registering again keeps what it was sent.
    net.from('n1', register('n1', 'L1', [calls[0]!.callNum, calls[1]!.callNum]));
    await broker.invoke('n1', call(def));
    expect(net.of('invoke', 'n1')[2]?.def).toBeUndefined();
    // A new life has nothing.
    net.from('n1', register('n1', 'L2'));
    await broker.invoke('n1', call(def));
    expect(net.of('invoke', 'n1')[3]?.def).toEqual({ fn: def.fn, runtime });
    // A new definition object (the cache was cleared: the runtime may have changed) is sent again.
    const changed: Definition = { fn: def.fn, runtime: { ...runtime, run: 'node main.js' } };
    await broker.invoke('n1', call(changed));
    expect(net.of('invoke', 'n1')[4]?.def?.runtime.run).toBe('node main.js');
    broker.stop();
  });

  it('passes the redundant flag through', async () => {
    const { broker, net } = await setup();
    net.from('n1', register('n1', 'L1'));
    await broker.invoke('n1', { ...call({ fn: fnMeta('f'), runtime }), redundant: true });
    expect(net.of('invoke', 'n1')[0]?.call.redundant).toBe(true);
    broker.stop();
  });

  describe("a node's word about its calls", () => {
    async function running(): Promise<Setup & { c: QueuedCall }> {
      const s = await setup();
      s.net.from('n1', register('n1', 'L1'));
      const c = call({ fn: fnMeta('f'), runtime });
      await s.broker.invoke('n1', c);
      return { ...s, c };
    }

    it('passes a start and an outcome on with the node and life, frees the slot, and records nothing itself', async () => {
      const { broker, net, heard, c } = await running();
      net.from('n1', { type: 'started', callNum: c.callNum, attempt: 1, life: 'L1' });
      expect(heard.started).toEqual([{ callNum: c.callNum, node: 'n1', life: 'L1', attempt: 1 }]);
      net.from('n1', { type: 'outcome', callNum: c.callNum, attempt: 1, outcome: done, ran: true, life: 'L1' });
      expect(heard.outcome).toEqual([{ callNum: c.callNum, node: 'n1', life: 'L1', outcome: done, ran: true, attempt: 1, holder: true }]);
      expect(broker.get('n1')?.inflight.size).toBe(0);
      expect(broker.holds(c.callNum)).toBe(false);
      broker.stop();
    });

    it("asks a web call's node to stream, and passes its head and chunks on only from the node that holds it", async () => {
      const { broker, net, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      net.from('n2', register('n2', 'L2'));
      const http = { method: 'GET', path: '/', query: '', headers: {}, body: '', sourceIp: '127.0.0.1' };
      const c = { ...call({ fn: fnMeta('f'), runtime }), http };
      await broker.invoke('n1', c);
      expect(net.of('invoke', 'n1')[0]?.call.stream).toBe(true);
      const head = { type: 'head' as const, callNum: c.callNum, attempt: 1, status: 200, headers: { 'content-type': 'text/plain' } };
      const chunk = { type: 'chunk' as const, callNum: c.callNum, attempt: 1, seq: 0, data: 'aGk=' };
      net.from('n2', { ...head, life: 'L2' }); // not its call
      net.from('n1', { ...head, life: 'L1' });
      net.from('n1', { ...chunk, life: 'L1' });
      expect(heard.stream).toEqual([
        { ...head, life: 'L1' },
        { ...chunk, life: 'L1' },
      ]);
      // a call without http is not asked to stream
      const plain = call({ fn: fnMeta('f'), runtime });
      await broker.invoke('n1', plain);
      expect(net.of('invoke', 'n1')[1]?.call.stream).toBeUndefined();
      broker.stop();
    });

    it('tells the node its outcome is recorded when asked to', async () => {
      const { broker, net, c } = await running();
      broker.ack('n1', c.callNum);
      expect(net.of('recorded', 'n1')).toEqual([{ type: 'recorded', callNum: c.callNum }]);
      broker.stop();
    });

    it('an outcome sent again after it was passed on goes on with holder false: the table takes it once', async () => {
      const { broker, net, heard, c } = await running();
      const msg = { type: 'outcome' as const, callNum: c.callNum, attempt: 1, outcome: done, ran: true, life: 'L1' };
      net.from('n1', msg);
      net.from('n1', msg);
      expect(heard.outcome.map((o) => o.holder)).toEqual([true, false]);
      expect(heard.room).toHaveLength(2); // register, and the first outcome only
      broker.stop();
    });

    it('a start of a call the node does not hold is dropped', async () => {
      const { broker, net, heard, logs } = await running();
      net.from('n1', { type: 'started', callNum: 4242, attempt: 1, life: 'L1' });
      expect(heard.started).toEqual([]);
      expect(logs.some((l) => l.msg === 'start of a call the node does not hold: dropped' && l.callNum === 4242)).toBe(true);
      broker.stop();
    });

    it('a node that restarts loses what its last life held (with that life), except what the new life lists', async () => {
      const { broker, net, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      const [a, b] = [call({ fn: fnMeta('f'), runtime }), call({ fn: fnMeta('f'), runtime })];
      await broker.invoke('n1', a);
      await broker.invoke('n1', b);
      net.from('n1', register('n1', 'L2', [b.callNum]));
      expect(heard.nodeLost).toEqual([{ node: 'n1', life: 'L1', calls: [a.callNum], why: 'restarted' }]);
      expect([...broker.get('n1')!.inflight.keys()]).toEqual([b.callNum]);
      broker.stop();
    });

    it('a node it does not know is asked to register again, and nothing it says is taken meanwhile', async () => {
      const { broker, net, heard } = await setup();
      net.from('stranger', { type: 'outcome', callNum: 77, outcome: done, ran: true });
      net.from('stranger', { type: 'started', callNum: 77, attempt: 1 });
      net.from('stranger', { type: 'giveBack', calls: [77] });
      expect(heard.outcome).toEqual([]);
      expect(heard.started).toEqual([]);
      expect(heard.givenBack).toEqual([]);
      expect(net.of('reregister', 'stranger')).toHaveLength(3);
      // Registered, it lists the call (its outcome is not recorded yet): adopted, and its outcome is heard.
      net.from('stranger', register('stranger', 'S1', [77]));
      expect(heard.adopted).toEqual([{ node: 'stranger', calls: [77] }]);
      net.from('stranger', { type: 'outcome', callNum: 77, outcome: done, ran: true, life: 'S1' });
      expect(heard.outcome).toEqual([{ callNum: 77, node: 'stranger', life: 'S1', outcome: done, ran: true, holder: true }]);
      broker.stop();
    });

    it('a node that was declared lost is not taken at its word for the calls it held then', async () => {
      const { broker, net, heard, c } = await running();
      vi.advanceTimersByTime(HEARTBEAT_MS * (HEARTBEAT_LIVENESS + 1)); // silent: lost, the call went to the retry rule
      expect(heard.nodeLost).toEqual([{ node: 'n1', life: 'L1', calls: [c.callNum], why: 'fell silent' }]);
      net.from('n1', { type: 'outcome', callNum: c.callNum, outcome: done, ran: true, life: 'L1' });
      expect(heard.outcome).toEqual([]);
      expect(net.of('reregister', 'n1')).toHaveLength(1);
      broker.stop();
    });
  });

  describe('only a node registered in its current life speaks for a call', () => {
    it("passes on another registered node's outcome as not the holder's, and the holder still holds the call", async () => {
      const { broker, net, heard, logs } = await setup();
      net.from('n1', register('n1', 'L1'));
      net.from('n2', register('n2', 'M1'));
      const c = call({ fn: fnMeta('f'), runtime });
      await broker.invoke('n1', c);
      const forged = { status: 'DONE' as const, result: 'forged' };
      net.from('n2', { type: 'outcome', callNum: c.callNum, outcome: forged, ran: true, life: 'M1' });
      net.from('n2', { type: 'giveBack', calls: [c.callNum], life: 'M1' });
      net.from('n2', { type: 'started', callNum: c.callNum, attempt: 1, life: 'M1' });
      expect(heard.outcome).toEqual([{ callNum: c.callNum, node: 'n2', life: 'M1', outcome: forged, ran: true, holder: false }]);
      expect(heard.givenBack).toEqual([]);
      expect(heard.started).toEqual([]);
      expect(logs.some((l) => l.msg === 'start of a call the node does not hold: dropped')).toBe(true);
      expect(broker.get('n1')?.inflight.has(c.callNum)).toBe(true);
      // The holder's own outcome is its holder's.
      net.from('n1', { type: 'outcome', callNum: c.callNum, outcome: done, ran: true, life: 'L1' });
      expect(heard.outcome[1]).toMatchObject({ node: 'n1', holder: true });
      broker.stop();
    });

    it("drops another life's messages: its outcomes, its giveBack and its bye leave the live one as it is", async () => {
      const { broker, net, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      const c = call({ fn: fnMeta('f'), runtime });
      net.from('n1', register('n1', 'L2')); // restarted
      await broker.invoke('n1', c);
      net.from('n1', { type: 'outcome', callNum: c.callNum, outcome: { status: 'DONE', result: 'old' }, ran: true, life: 'L1' });
      net.from('n1', { type: 'giveBack', calls: [c.callNum], life: 'L1' });
      net.from('n1', { type: 'heartbeat', load: { running: [] }, life: 'L1' });
      net.from('n1', { type: 'bye', life: 'L1' });
      expect(heard.outcome).toEqual([]);
      expect(heard.givenBack).toEqual([]);
      expect(broker.get('n1')).toMatchObject({ state: 'alive', info: { life: 'L2' } });
      expect(broker.get('n1')?.inflight.has(c.callNum)).toBe(true);
      net.from('n1', { type: 'outcome', callNum: c.callNum, outcome: done, ran: true, life: 'L2' });
      expect(heard.outcome).toEqual([{ callNum: c.callNum, node: 'n1', life: 'L2', outcome: done, ran: true, holder: true }]);
      broker.stop();
    });
  });

  it('a failed invoke send puts the call back at the front of the queue and loses the node', async () => {
    const { broker, net, logs, heard } = await setup();
    const scheduler = new Scheduler(broker);
    net.from('bad', register('bad', 'B', [], 8, { 'f@1': 1 }));
    net.from('good', register('good', 'G', [], 1));
    const def: Definition = { fn: fnMeta('f'), runtime };
    const held = call(def);
    await broker.invoke('bad', held); // already on the node: goes to the retry rule with its loss
    net.unreachable.add('bad');
    const [c1, c2, c3] = [call(def), call(def), call(def)];
    scheduler.enqueue(c1); // warm on `bad`: sent there, and the send fails
    await settle();
    expect(logs.find((l) => l.msg.startsWith('could not send call to node'))).toMatchObject({ node: 'bad', callNum: c1.callNum });
    expect(broker.get('bad')?.state).toBe('dead');
    expect(heard.nodeLost).toEqual([{ node: 'bad', life: 'B', calls: [held.callNum], why: 'send failed: Host unreachable' }]);
    expect(net.of('invoke', 'good').map((m) => m.call.callNum)).toEqual([c1.callNum]);
    // It kept its turn: later calls queue behind it.
    scheduler.enqueue(c2);
    scheduler.enqueue(c3);
    net.from('good', { type: 'outcome', callNum: c1.callNum, outcome: done, ran: true, life: 'G' });
    expect(net.of('invoke', 'good').map((m) => m.call.callNum)).toEqual([c1.callNum, c2.callNum]);
    broker.stop();
  });
});
