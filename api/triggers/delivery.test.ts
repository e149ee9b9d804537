// The delivery loop with a fake broker and fake calls: a message is acknowledged only once its call is
// final (a retried failure is not final), a redelivered message makes no second call, a failed one is
// acknowledged or dead-lettered at the broker as set, a long one makes no call and is listed, a quota
// refusal is waited out, a pause holds messages, and a long queue of calls stops the pulling.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Call, CallOutcome } from '../../common/model.js';
import type { Trigger } from '../../protocol/db.js';
import type { CallEvents } from '../calls.js';
import { CallEnds, TriggerDelivery } from './delivery.js';
import type { MessageParams } from './model.js';
import type { Message, SourceEvents, SourceSpec } from './source.js';

const log = pino({ level: 'silent' });
const flush = () => new Promise((r) => setTimeout(r, 20));
const until = async (what: string, f: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await flush();
  }
};

const trigger = (settings: Partial<Trigger['settings']> = {}): Trigger => ({
  id: 'ab12',
  funcName: 'fn',
  type: 'redis',
  url: 'redis://127.0.0.1:1',
  source: 'orders',
  settings: { inFlight: 4, maxQueue: 100, maxBytes: 100, deadLetter: 'list', dedupWindowS: 3600, ...settings },
  paused: false,
  createdAt: new Date().toISOString(),
});

// A broker that hands over what the test gives it and records acks, dead letters and pauses.
function fakeBroker() {
  let events: SourceEvents | undefined;
  const acked: string[] = [];
  const dead: string[] = [];
  const pauses: boolean[] = [];
  const factory = (spec: SourceSpec) => {
    events = spec.events;
    return {
      start: async () => undefined,
      setPaused: (p: boolean) => void pauses.push(p),
      settled: () => undefined,
      lag: async () => 0,
      close: async () => undefined,
    };
  };
  let refuseAcks = 0; // the next acks fail (a broker restarting)
  const give = (id: string, body = '{"n":1}', redelivered = false): void => {
    const m: Message = {
      id,
      body: Buffer.from(body),
      headers: { h: 'v' },
      subject: 'orders',
      redelivered,
      ack: async () => {
        if (refuseAcks > 0) {
          refuseAcks--;
          throw new Error('TIMEOUT');
        }
        acked.push(id);
      },
      deadLetter: async () => void dead.push(id),
    };
    events!.message(m);
  };
  return { factory, give, acked, dead, pauses, refuseAcks: (n: number) => void (refuseAcks = n) };
}

// Calls as the DB would make them: one per key; `end` finishes one (a failure may be retried first).
function fakeCalls() {
  const events = new EventEmitter<CallEvents>();
  const byKey = new Map<string, Call>();
  const calls = new Map<number, Call>();
  const made: { key: string; params: MessageParams }[] = [];
  let refuse = 0;
  const invoke = async (_fn: string, params: MessageParams, idem: { key: string }) => {
    if (refuse > 0) {
      refuse--;
      throw Object.assign(new Error('namespace default makes at most 1 calls a minute'), { retryAfterS: 0.05 });
    }
    made.push({ key: idem.key, params });
    const had = byKey.get(idem.key);
    if (had) return { call: had, replayed: true };
    const call = { callNum: calls.size + 1, funcName: 'fn', params, status: 'PENDING', result: '', attempts: 0, createdAt: '' } as Call;
    calls.set(call.callNum, call);
    byKey.set(idem.key, call);
    return { call, replayed: false };
  };
  const end = (callNum: number, status: Call['status'], finalNow = true): void => {
    const c = calls.get(callNum)!;
    if (finalNow) c.status = status;
    events.emit('finished', { callNum, outcome: { status, result: '' } as CallOutcome });
  };
  const ends = new CallEnds({ events, getCall: async (n) => calls.get(n) ?? null, pollMs: 50 });
  return { invoke, end, ends, made, calls, refuse: (n: number) => void (refuse = n) };
}

function setup(settings: Partial<Trigger['settings']> = {}, queue = { length: 0, of: 'fn' }) {
  const b = fakeBroker();
  const c = fakeCalls();
  const d = new TriggerDelivery(trigger(settings), b.factory, undefined, {
    invoke: c.invoke,
    ends: c.ends,
    queueLength: (funcName: string) => (funcName === queue.of ? queue.length : 0),
    log,
  });
  d.start();
  return { b, c, d };
}

describe('a trigger delivery', () => {
  it('acknowledges a message only once its call is final, and a redelivery makes no second call', async () => {
    const { b, c, d } = setup();
    await flush();
    b.give('s:1');
    await until('call made', () => c.calls.size === 1);
    expect(c.made[0]!.params).toMatchObject({ body: { n: 1 }, headers: { h: 'v' }, trigger: { id: 'ab12', messageId: 's:1' } });
    b.give('s:1', '{"n":1}', true); // given again while its call runs
    c.end(1, 'ERROR', false); // a failed run its function retries: not final
    await flush();
    await flush();
    expect(b.acked).toEqual([]);
    c.end(1, 'DONE');
    await until('acked', () => b.acked.length === 2);
    expect(b.acked).toEqual(['s:1', 's:1']);
    expect(c.calls.size).toBe(1);
    b.give('s:1', '{"n":1}', true); // after its ack: the key finds the same call
    await until('acked again', () => b.acked.length === 3);
    expect(c.calls.size).toBe(1);
    expect(new Set(c.made.map((m) => m.key)).size).toBe(1);
    expect(await d.stats()).toMatchObject({ delivered: 2, failed: 0, inFlight: 0 });
    await d.close();
    c.ends.stop();
  });

  it('acknowledges a redelivery that comes while the first acknowledgement is being tried again', async () => {
    const { b, c, d } = setup();
    await flush();
    b.give('s:5');
    await until('call made', () => c.calls.size === 1);
    b.refuseAcks(1);
    c.end(1, 'DONE');
    await flush();
    b.give('s:5', '{"n":1}', true); // given again while the ack is retried
    await until('both acked', () => b.acked.length === 2, 5000);
    expect(c.calls.size).toBe(1);
    expect((await d.stats()).inFlight).toBe(0);
    await d.close();
    c.ends.stop();
  });

  it('acknowledges a failed message, or hands it to the broker dead-letter target when set', async () => {
    for (const deadLetter of ['list', 'broker'] as const) {
      const { b, c, d } = setup({ deadLetter });
      await flush();
      b.give('s:9', '{"poison":true}');
      await until('call made', () => c.calls.size === 1);
      c.end(1, 'ERROR');
      await until('settled', () => b.acked.length + b.dead.length === 1);
      expect(deadLetter === 'list' ? b.acked : b.dead).toEqual(['s:9']);
      expect(await d.stats()).toMatchObject({ delivered: 0, failed: 1 });
      await d.close();
      c.ends.stop();
    }
  });

  it('makes no call for a message longer than maxBytes: acknowledged and listed', async () => {
    const { b, c, d } = setup({ maxBytes: 10 });
    await flush();
    b.give('s:2', JSON.stringify({ pad: 'x'.repeat(50) }));
    await until('acked', () => b.acked.length === 1);
    expect(c.made).toEqual([]);
    expect((await d.stats()).rejected).toMatchObject([{ id: 's:2', subject: 'orders', bytes: 60 }]);
    await d.close();
    c.ends.stop();
  });

  it('waits out a quota refusal and makes the call then', async () => {
    const { b, c, d } = setup();
    await flush();
    c.refuse(2);
    b.give('s:3');
    await until('call made', () => c.calls.size === 1);
    expect((await d.stats()).lastError).toMatch(/at most 1 calls a minute/);
    c.end(1, 'DONE');
    await until('acked', () => b.acked.length === 1);
    await d.close();
    c.ends.stop();
  });

  it('holds messages while paused, and stops pulling while the queue of calls is long', async () => {
    const queue = { length: 0, of: 'fn' };
    const { b, c, d } = setup({ maxQueue: 5 }, queue);
    await flush();
    d.setPaused(true);
    b.give('s:4');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.made).toEqual([]);
    d.setPaused(false);
    await until('call made', () => c.calls.size === 1);
    queue.length = 5;
    queue.of = 'another'; // another function's queue holds back nothing
    await new Promise((r) => setTimeout(r, 400));
    expect(b.pauses.at(-1)).toBe(false);
    queue.of = 'fn';
    await until('pulling stopped', () => b.pauses.at(-1) === true);
    queue.length = 0;
    await until('pulling again', () => b.pauses.at(-1) === false);
    await d.close();
    c.ends.stop();
  });
});
