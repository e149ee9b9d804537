// The broker against fake nodes: messages go in through a fake transport, and the tests look at what the
// broker sends, what it tells its listeners and what it records in a fake DB. No sockets, no Docker.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { z } from 'zod';
import { FunctionSettingsSchema, type Call, type CallOutcome, type FunctionMeta, type Runtime } from '../common/model.js';
import { encode } from '../protocol/codec.js';
import { HEARTBEAT_LIVENESS, HEARTBEAT_MS, type ToApiSchema, type ToInstance } from '../protocol/broker.js';
import { Broker, type BrokerEvents, type Definition, type NodeTransport, type QueuedCall } from './broker.js';
import { choose, Scheduler } from './scheduler.js';

type FromNode = z.input<typeof ToApiSchema>;

class FakeTransport implements NodeTransport {
  private onMessage?: (nodeId: string, frames: Buffer[]) => void;
  readonly sent: { node: string; msg: ToInstance }[] = [];
  readonly unreachable = new Set<string>();

  async open(onMessage: (nodeId: string, frames: Buffer[]) => void): Promise<void> {
    this.onMessage = onMessage;
  }
  send(node: string, frames: Buffer[]): Promise<void> {
    this.sent.push({ node, msg: JSON.parse(frames[0]!.toString()) as ToInstance });
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

// The requests the broker makes of the DB service: recording results, and reading a call's record to see
// which node runs it.
class FakeDb {
  readonly finished: { callNum: number; node?: string; outcome: CallOutcome }[] = [];
  readonly records = new Map<number, Partial<Call>>();
  down = false;
  async request(msgType: string, content: unknown): Promise<never> {
    if (this.down) throw new Error('db service did not answer');
    if (msgType === 'getCall') return (this.records.get((content as { callNum: number }).callNum) ?? null) as never;
    if (msgType !== 'finishCall') throw new Error(`unexpected ${msgType}`);
    this.finished.push(content as FakeDb['finished'][0]);
    return { call: null, changed: true } as never;
  }
}

const runtime = { name: 'node', image: 'zfaas/node:latest', path: '/ws', dependencies: '', run: 'node index.js' } as Runtime;
const fnMeta = (name: string, version = 1): FunctionMeta => ({
  functionName: name,
  runtimeName: 'node',
  version,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-11-23T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse({}),
});
const done: CallOutcome = { status: 'DONE', result: '42' };

let num = 0;
const call = (def: Definition): QueuedCall => ({ callNum: ++num, funcName: def.fn.functionName, params: { n: num }, def });

const register = (id: string, life: string, running: number[] = [], capacity = 4, warm: Record<string, number> = {}): FromNode => ({
  type: 'register',
  node: { id, capacity, policy: 'none', life },
  load: { running, warm },
});
const heartbeat = (running: number[]): FromNode => ({ type: 'heartbeat', load: { running } });

interface Setup {
  broker: Broker;
  net: FakeTransport;
  db: FakeDb;
  logs: { msg: string; [k: string]: unknown }[];
  heard: { [K in keyof BrokerEvents]: BrokerEvents[K][0][] };
}

async function setup(): Promise<Setup> {
  const net = new FakeTransport();
  const db = new FakeDb();
  const logs: Setup['logs'] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void logs.push(JSON.parse(s) as Setup['logs'][0]) });
  const broker = new Broker({ transport: net, db, log });
  const heard: Setup['heard'] = { room: [], adopted: [], result: [], recorded: [], nodeLost: [], retrying: [], givenBack: [] };
  broker.events.on('givenBack', (g) => heard.givenBack.push(g));
  broker.events.on('result', (r) => heard.result.push(r));
  broker.events.on('retrying', (r) => heard.retrying.push(r));
  broker.events.on('recorded', (r) => heard.recorded.push(r));
  broker.events.on('nodeLost', (l) => heard.nodeLost.push(l));
  broker.events.on('adopted', (a) => heard.adopted.push(a));
  await broker.start();
  return { broker, net, db, logs, heard };
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

  it('sends heartbeats and loses a node that falls silent, handing its calls to the retry rule', async () => {
    const { broker, net, heard } = await setup();
    net.from('n1', register('n1', 'L1'));
    const c = call({ fn: fnMeta('f'), runtime });
    await broker.invoke('n1', c);
    vi.advanceTimersByTime(HEARTBEAT_MS);
    expect(net.of('heartbeat', 'n1')).toHaveLength(1);
    vi.advanceTimersByTime(HEARTBEAT_MS * HEARTBEAT_LIVENESS);
    expect(broker.get('n1')?.state).toBe('dead');
    expect(heard.nodeLost).toEqual([{ node: 'n1', calls: [c.callNum], why: 'fell silent' }]);
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
    expect(heard.nodeLost).toEqual([{ node: 'n1', calls: [b.callNum], why: 'no longer holds the call' }]);
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
    net.from('n1', { type: 'result', callNum: 501, outcome: done });
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

  describe('results before they are recorded', () => {
    async function withResult(): Promise<Setup & { c: QueuedCall }> {
      const s = await setup();
      s.net.from('n1', register('n1', 'L1'));
      const c = call({ fn: fnMeta('f'), runtime });
      await s.broker.invoke('n1', c);
      s.net.from('n1', { type: 'result', callNum: c.callNum, outcome: done });
      return { ...s, c };
    }

    it('passes a result on at once and frees the slot; the node recording it (it leaves `running`) ends it', async () => {
      const { broker, net, db, heard, c } = await withResult();
      expect(heard.result).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done }]);
      expect(broker.get('n1')?.inflight.size).toBe(0);
      expect(broker.holds(c.callNum)).toBe(true); // not recorded yet: recovery must leave it alone
      net.from('n1', heartbeat([c.callNum]));
      expect(heard.recorded).toEqual([]);
      net.from('n1', heartbeat([]));
      expect(heard.recorded).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done }]);
      expect(broker.holds(c.callNum)).toBe(false);
      vi.advanceTimersByTime(HEARTBEAT_MS * 10);
      expect(db.finished).toEqual([]); // the node recorded it: no second write from here
      broker.stop();
    });

    it('records them itself when the node falls silent', async () => {
      const { broker, db, heard, c } = await withResult();
      vi.advanceTimersByTime(HEARTBEAT_MS * (HEARTBEAT_LIVENESS + 1));
      await settle();
      expect(db.finished).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done, ran: true }]);
      expect(heard.recorded).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done }]);
      expect(heard.nodeLost).toEqual([]); // the call itself had ended: nothing to retry
      broker.stop();
    });

    it('records them itself when the node leaves', async () => {
      const { broker, net, db, c } = await withResult();
      net.from('n1', { type: 'bye' });
      await settle();
      expect(db.finished).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done, ran: true }]);
      expect(broker.get('n1')).toBeUndefined();
      broker.stop();
    });

    it('records them itself when the node comes back with a new life, not when it comes back with the same one', async () => {
      const same = await withResult();
      same.net.from('n1', register('n1', 'L1', [same.c.callNum]));
      await settle();
      expect(same.db.finished).toEqual([]);
      expect(same.broker.get('n1')?.inflight.has(same.c.callNum)).toBe(false); // ended: not adopted again
      same.net.from('n1', heartbeat([]));
      expect(same.heard.recorded.map((r) => r.callNum)).toEqual([same.c.callNum]);
      same.broker.stop();

      const other = await withResult();
      other.net.from('n1', register('n1', 'L2'));
      await settle();
      expect(other.db.finished).toEqual([{ callNum: other.c.callNum, node: 'n1', outcome: done, ran: true }]);
      other.broker.stop();
    });

    it('keeps trying while the DB service is down, and recovery leaves the call alone meanwhile', async () => {
      const { broker, net, db, logs, c } = await withResult();
      db.down = true;
      net.from('n1', { type: 'bye' });
      await settle();
      expect(db.finished).toEqual([]);
      expect(broker.holds(c.callNum)).toBe(true);
      vi.advanceTimersByTime(HEARTBEAT_MS * 3);
      await settle();
      expect(logs.filter((l) => l.msg === 'result not recorded yet; retrying')).toHaveLength(1); // said once
      db.down = false;
      vi.advanceTimersByTime(HEARTBEAT_MS);
      await settle();
      expect(db.finished).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done, ran: true }]);
      expect(broker.holds(c.callNum)).toBe(false);
      broker.stop();
    });

    it('a node that restarts loses what its last life held, except what the new life lists', async () => {
      const { broker, net, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      const [a, b] = [call({ fn: fnMeta('f'), runtime }), call({ fn: fnMeta('f'), runtime })];
      await broker.invoke('n1', a);
      await broker.invoke('n1', b);
      net.from('n1', register('n1', 'L2', [b.callNum]));
      expect(heard.nodeLost).toEqual([{ node: 'n1', calls: [a.callNum], why: 'restarted' }]);
      expect([...broker.get('n1')!.inflight.keys()]).toEqual([b.callNum]);
      broker.stop();
    });

    it('a result from a node it does not know counts only where the record says that node runs the call', async () => {
      const { broker, net, db, heard, logs } = await setup();
      db.records.set(77, { callNum: 77, status: 'RUNNING', node: 'stranger' }); // given by an API before a restart
      db.records.set(78, { callNum: 78, status: 'RUNNING', node: 'n1' });
      db.records.set(79, { callNum: 79, status: 'PENDING' });
      net.from('stranger', { type: 'result', callNum: 77, outcome: done });
      net.from('stranger', { type: 'result', callNum: 78, outcome: { status: 'DONE', result: 'forged' } });
      net.from('stranger', { type: 'result', callNum: 79, outcome: { status: 'DONE', result: 'forged' } });
      net.from('stranger', { type: 'result', callNum: 80, outcome: { status: 'DONE', result: 'forged' } });
      await settle();
      expect(heard.result).toEqual([{ callNum: 77, node: 'stranger', outcome: done }]);
      expect(db.finished).toEqual([{ callNum: 77, node: 'stranger', outcome: done, ran: true }]);
      expect(net.of('reregister', 'stranger')).toHaveLength(4);
      expect(logs.filter((l) => l.msg.startsWith('result from a node not registered')).map((l) => l.callNum)).toEqual([78, 79, 80]);
      // A retry the node recorded itself is heard only as the record has it.
      db.records.set(81, { callNum: 81, status: 'PENDING', retryAt: '2026-11-23T00:00:01.000Z' });
      net.from('stranger', { type: 'result', callNum: 81, outcome: { status: 'ERROR', result: '' }, retryAt: '2026-11-23T00:00:01.000Z' });
      net.from('stranger', { type: 'result', callNum: 79, outcome: { status: 'ERROR', result: '' }, retryAt: '2026-11-23T00:00:01.000Z' });
      await settle();
      expect(heard.retrying.map((r) => r.callNum)).toEqual([81]);
      broker.stop();
    });

    it('a node that was declared lost is not taken at its word for the calls it held then', async () => {
      const { broker, net, db, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      const c = call({ fn: fnMeta('f'), runtime });
      await broker.invoke('n1', c);
      vi.advanceTimersByTime(HEARTBEAT_MS * (HEARTBEAT_LIVENESS + 1)); // silent: lost, the call went to the retry rule
      db.records.set(c.callNum, { callNum: c.callNum, status: 'RUNNING', node: 'n2' }); // and runs elsewhere now
      net.from('n1', { type: 'result', callNum: c.callNum, outcome: done, life: 'L1' });
      await settle();
      expect(heard.result).toEqual([]);
      expect(db.finished).toEqual([]);
      expect(net.of('reregister', 'n1')).toHaveLength(1);
      broker.stop();
    });
  });

  describe('only the node that holds a call, in its current life, speaks for it', () => {
    it('drops a result from another registered node, and the holder still holds the call', async () => {
      const { broker, net, db, heard, logs } = await setup();
      net.from('n1', register('n1', 'L1'));
      net.from('n2', register('n2', 'M1'));
      const c = call({ fn: fnMeta('f'), runtime });
      await broker.invoke('n1', c);
      db.records.set(c.callNum, { callNum: c.callNum, status: 'RUNNING', node: 'n1' });
      net.from('n2', { type: 'result', callNum: c.callNum, outcome: { status: 'DONE', result: 'forged' }, life: 'M1' });
      net.from('n2', { type: 'result', callNum: 4242, outcome: { status: 'DONE', result: 'forged' }, life: 'M1' });
      net.from('n2', { type: 'giveBack', calls: [c.callNum], life: 'M1' });
      await settle();
      expect(heard.result).toEqual([]);
      expect(heard.givenBack).toEqual([]);
      expect(db.finished).toEqual([]);
      expect(broker.get('n1')?.inflight.has(c.callNum)).toBe(true);
      expect(broker.holds(4242)).toBe(false);
      expect(logs.filter((l) => l.msg === 'result for a call the node does not hold: dropped').map((l) => l.callNum)).toEqual([
        c.callNum,
        4242,
      ]);
      // The holder's own result is taken.
      net.from('n1', { type: 'result', callNum: c.callNum, outcome: done, life: 'L1' });
      expect(heard.result).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done }]);
      broker.stop();
    });

    it("drops another life's messages: its results, its giveBack and its bye leave the live one as it is", async () => {
      const { broker, net, db, heard } = await setup();
      net.from('n1', register('n1', 'L1'));
      const c = call({ fn: fnMeta('f'), runtime });
      net.from('n1', register('n1', 'L2')); // restarted
      await broker.invoke('n1', c);
      db.records.set(c.callNum, { callNum: c.callNum, status: 'RUNNING', node: 'n1' });
      net.from('n1', { type: 'result', callNum: c.callNum, outcome: { status: 'DONE', result: 'old' }, life: 'L1' });
      net.from('n1', { type: 'giveBack', calls: [c.callNum], life: 'L1' });
      net.from('n1', { type: 'heartbeat', load: { running: [] }, life: 'L1' });
      net.from('n1', { type: 'bye', life: 'L1' });
      await settle();
      expect(heard.result).toEqual([]);
      expect(heard.givenBack).toEqual([]);
      expect(db.finished).toEqual([]);
      expect(broker.get('n1')).toMatchObject({ state: 'alive', info: { life: 'L2' } });
      expect(broker.get('n1')?.inflight.has(c.callNum)).toBe(true);
      net.from('n1', { type: 'result', callNum: c.callNum, outcome: done, life: 'L2' });
      expect(heard.result).toEqual([{ callNum: c.callNum, node: 'n1', outcome: done }]);
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
    expect(heard.nodeLost).toEqual([{ node: 'bad', calls: [held.callNum], why: 'send failed: Host unreachable' }]);
    expect(net.of('invoke', 'good').map((m) => m.call.callNum)).toEqual([c1.callNum]);
    // It kept its turn: later calls queue behind it.
    scheduler.enqueue(c2);
    scheduler.enqueue(c3);
    net.from('good', { type: 'result', callNum: c1.callNum, outcome: done });
    expect(net.of('invoke', 'good').map((m) => m.call.callNum)).toEqual([c1.callNum, c2.callNum]);
    broker.stop();
  });
});
