// Metrics without Docker or a DB service: the per-minute timeline (buckets, quantiles, the hour's edge,
// bounds), the counters fed by events (retries, dead letters, schedule ticks, callback deliveries), and the
// timeline filled at start from stored calls, page by page, against fakes.
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { fnMeta } from '../test/helpers/objects.js';
import type { Call, CallOutcome, FunctionMeta, ScheduleRef } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { DbContent, DbMsgType, DbResults, Schedule } from '../protocol/db.js';
import { Emitter, type BrokerEvents, type NodeOutcome, type NodeRegistry } from './broker.js';
import type { CallEvents } from './calls.js';
import { NotFoundError } from '../common/errors.js';
import type { MetaEntry } from './meta-cache.js';
import { MINUTE_MS, Metrics, Timeline, type CallsView } from './metrics.js';
import type { DeliveryEvents } from './callbacks/deliverer.js';
import { ScheduleRunner, type ScheduleEvents } from './schedules.js';

const T0 = Date.parse('2026-03-01T12:00:30.000Z'); // half a minute into a minute

describe('Timeline', () => {
  let now = T0;
  let t: Timeline;
  beforeEach(() => {
    now = T0;
    t = new Timeline(() => now);
  });

  it('counts calls and failures in the minute they ended, oldest minute first, 60 of them', () => {
    t.add('f', now, 10, false);
    t.add('f', now - 1000, 20, true);
    t.add('f', now - 5 * MINUTE_MS, 30, false);
    const v = t.view();
    expect(v.minuteMs).toBe(MINUTE_MS);
    expect(v.minutes).toHaveLength(60);
    expect(v.minutes.at(-1)).toBe(Date.parse('2026-03-01T12:00:00.000Z'));
    expect(v.minutes[0]).toBe(Date.parse('2026-03-01T11:01:00.000Z'));
    const f = v.functions.f!;
    expect(f.calls).toHaveLength(60);
    expect(f.calls.at(-1)).toBe(2);
    expect(f.errors.at(-1)).toBe(1);
    expect(f.calls.at(-6)).toBe(1);
    expect(f.calls.reduce((a, n) => a + n)).toBe(3);
    expect(f.p50.at(-1)).toBe(10);
    expect(f.p95.at(-1)).toBe(20);
    expect(f.p50.at(-6)).toBe(30);
    expect(f.p50.at(-2)).toBeNull();
  });

  it('gives exact quantiles per minute up to the sample size', () => {
    for (let i = 1; i <= 100; i++) t.add('f', now, i, false);
    const f = t.view().functions.f!;
    expect(f.calls.at(-1)).toBe(100);
    expect(f.p50.at(-1)).toBe(50);
    expect(f.p95.at(-1)).toBe(95);
  });

  it('keeps a bounded sample past it: counts stay exact, quantiles are estimates', () => {
    for (let i = 0; i < 20_000; i++) t.add('f', now, i % 1000, false);
    const f = t.view().functions.f!;
    expect(f.calls.at(-1)).toBe(20_000);
    expect(f.p50.at(-1)).toBeGreaterThan(300);
    expect(f.p50.at(-1)).toBeLessThan(700);
    expect(f.p95.at(-1)).toBeGreaterThan(850);
  });

  it('leaves out what is older than the hour, and a function with no call for an hour', () => {
    expect(t.add('f', now - 60 * MINUTE_MS, 1, false)).toBe(false);
    expect(t.add('f', now - 59 * MINUTE_MS, 1, false)).toBe(true);
    expect(t.view().functions.f!.calls[0]).toBe(1);
    now += MINUTE_MS; // that minute has left the hour
    expect(t.view().functions.f).toBeUndefined();
  });

  it('reuses a minute slot an hour later without keeping the old counts', () => {
    t.add('f', now, 5, false);
    t.add('g', now, 5, false); // g keeps the timeline alive
    now += 60 * MINUTE_MS;
    t.add('f', now, 7, true);
    const f = t.view().functions.f!;
    expect(f.calls.reduce((a, n) => a + n)).toBe(1);
    expect(f.errors.at(-1)).toBe(1);
    expect(f.p50.at(-1)).toBe(7);
  });

  it('puts a call from a clock ahead of ours in the current minute, and filters by function', () => {
    t.add('f', now + 10 * MINUTE_MS, 1, false);
    t.add('g', now, undefined, false); // no latency known: counted, not sampled
    const v = t.view('g');
    expect(Object.keys(v.functions)).toEqual(['g']);
    expect(v.functions.g!.calls.at(-1)).toBe(1);
    expect(v.functions.g!.p50.at(-1)).toBeNull();
    expect(t.view().functions.f!.calls.at(-1)).toBe(1);
  });
});

// ---- Metrics against fakes ----

const metaOf = (name: string, retries: number): FunctionMeta => fnMeta(name, 1, { retries, retryBackoff: 100 });

const nodes: NodeRegistry = { list: () => [], get: () => undefined, alive: () => [], capacity: () => 0 };
const queue = { queueLength: 0 };
const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom' };
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

async function value(m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('Metrics counters', () => {
  let events: EventEmitter<CallEvents>;
  let calls: CallsView;
  let ticks: Emitter<ScheduleEvents>;
  let deliveries: Emitter<DeliveryEvents>;
  let m: Metrics;
  const fns = new Map<string, FunctionMeta>([
    ['flaky', metaOf('flaky', 2)],
    ['plain', metaOf('plain', 0)],
  ]);

  beforeEach(() => {
    events = new EventEmitter<CallEvents>();
    calls = {
      events,
      meta: {
        get: async (name: string): Promise<MetaEntry | null> => {
          const fn = fns.get(name);
          return fn ? { fn, runtime: null } : null;
        },
      },
    };
    ticks = new Emitter<ScheduleEvents>();
    deliveries = new Emitter<DeliveryEvents>();
    m = new Metrics(calls, nodes, queue, { schedules: ticks, deliveries });
  });

  it('counts retries by function', async () => {
    const retryAt = new Date().toISOString();
    events.emit('retrying', { callNum: 1, funcName: 'flaky', retryAt, outcome: failed });
    events.emit('retrying', { callNum: 1, funcName: 'flaky', retryAt, outcome: failed });
    events.emit('retrying', { callNum: 2, retryAt, outcome: failed });
    expect(await value(m, 'zfaas_call_retries_total', { function: 'flaky' })).toBe(2);
    expect(await value(m, 'zfaas_call_retries_total', { function: 'unknown' })).toBe(1);
  });

  it('counts a dead letter: a final failed run from a node, of a function with retries', async () => {
    const end = (over: Partial<CallEvents['finished'][0]>): void => {
      events.emit('finished', { callNum: 1, funcName: 'flaky', version: 1, node: 'n1', outcome: failed, latencyMs: 5, ...over });
    };
    end({}); // a dead letter
    end({ outcome: { ...failed, status: 'TIMEOUT' } }); // a dead letter too
    end({ outcome: { status: 'DONE', result: '1' } }); // succeeded at last
    end({ outcome: { ...failed, cancelled: true } }); // cancelled
    end({ node: undefined }); // the platform ended it (no run): not listed
    end({ funcName: 'plain' }); // no retries: an ordinary failure
    end({ funcName: 'gone' }); // its function is not found
    await flush();
    expect(await value(m, 'zfaas_dead_letters_total', { function: 'flaky' })).toBe(2);
    expect(await value(m, 'zfaas_dead_letters_total', { function: 'plain' })).toBeUndefined();
    expect(await value(m, 'zfaas_calls_total', { function: 'flaky', status: 'ERROR' })).toBe(3);
    // Every finished call is in the timeline's current minute.
    expect(m.timeline.view('flaky').functions.flaky!.calls.at(-1)).toBe(5);
  });

  it('counts schedule ticks by outcome and callback deliveries by result', async () => {
    const tick = { scheduleId: 'ab', funcName: 'cron', tick: new Date().toISOString() };
    ticks.emit('tick', { ...tick, outcome: 'fired' });
    ticks.emit('tick', { ...tick, outcome: 'fired' });
    ticks.emit('tick', { ...tick, outcome: 'late' });
    ticks.emit('tick', { ...tick, outcome: 'skipped' });
    deliveries.emit('delivery', { funcName: 'hook', result: 'retry' });
    deliveries.emit('delivery', { funcName: 'hook', result: 'delivered' });
    deliveries.emit('delivery', { funcName: 'hook', result: 'failed' });
    deliveries.emit('delivery', { funcName: 'hook', result: 'retry' });
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'cron', outcome: 'fired' })).toBe(2);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'cron', outcome: 'late' })).toBe(1);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'cron', outcome: 'skipped' })).toBe(1);
    expect(await value(m, 'zfaas_callback_deliveries_total', { function: 'hook', result: 'retry' })).toBe(2);
    expect(await value(m, 'zfaas_callback_deliveries_total', { function: 'hook', result: 'delivered' })).toBe(1);
    expect(await value(m, 'zfaas_callback_deliveries_total', { function: 'hook', result: 'failed' })).toBe(1);
    const text = await m.text();
    expect(text).toContain('# TYPE zfaas_schedule_ticks_total counter');
    expect(text).toContain('zfaas_callback_deliveries_total{function="hook",result="delivered"} 1');
  });

  it("forgets a deleted namespace's functions everywhere, and no other namespace's", async () => {
    for (const funcName of ['team-a~f', 'team-ab~f', 'f']) {
      events.emit('accepted', { callNum: 1, funcName } as Call);
      events.emit('finished', { callNum: 1, funcName, version: 1, node: 'n1', outcome: { status: 'DONE', result: '1' }, latencyMs: 5 });
      ticks.emit('tick', { scheduleId: 'ab', funcName, tick: new Date().toISOString(), outcome: 'fired' });
    }
    await flush();
    await m.forgetNamespace('team-a');
    const text = await m.text();
    expect(text).not.toContain('team-a~');
    expect(text).toContain('zfaas_calls_total{function="team-ab~f",status="DONE"} 1');
    expect(text).toContain('zfaas_call_latency_seconds_count{function="f"} 1');
    expect(Object.keys(m.functions()).sort()).toEqual(['f', 'team-ab~f']);
    expect(Object.keys(m.timeline.view().functions).sort()).toEqual(['f', 'team-ab~f']);
  });
});

describe('schedule ticks as a ScheduleRunner tells them', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(Date.parse('2026-01-01T00:00:00.500Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('fired on time, late for a missed tick at start, skipped without the function, failed after every try', async () => {
    const sched = (id: string, funcName: string, over: Partial<Schedule> = {}): Schedule => ({
      id,
      funcName,
      cron: '*/10 * * * * *',
      timezone: 'UTC',
      params: {},
      missed: 'skip',
      createdAt: '2025-12-31T00:00:00.000Z',
      ...over,
    });
    const schedules = [
      sched('a1', 'ok', { missed: 'once', lastRun: { tick: '2025-12-31T23:00:00.000Z', callNum: 1, at: '' } }),
      sched('a2', 'gone'),
      sched('a3', 'broken'),
    ];
    const db = {
      request: (async (msgType: string) => {
        await Promise.resolve();
        if (msgType === 'listSchedules') return schedules;
        if (msgType === 'recordScheduleRun') return null;
        throw new Error(`unexpected ${msgType}`);
      }) as unknown as DbClient['request'],
    };
    let callNum = 0;
    const invoke = async (funcName: string, _p: unknown, _v: undefined, o: { schedule: ScheduleRef }) => {
      await Promise.resolve();
      if (funcName === 'gone') throw new NotFoundError('function gone not found');
      if (funcName === 'broken') throw new Error('db service unavailable');
      return { call: { callNum: ++callNum, schedule: o.schedule } as Call, replayed: false };
    };
    const ticks = new Emitter<ScheduleEvents>();
    const told: string[] = [];
    ticks.on('tick', (t) => told.push(`${t.funcName} ${t.outcome} ${t.tick.slice(11, 19)}`));
    const m = new Metrics({ events: new EventEmitter<CallEvents>(), meta: { get: async () => null } }, nodes, queue, { schedules: ticks });
    const runner = new ScheduleRunner({ db, invoke, log: pino({ level: 'silent' }), retryMs: 100, events: ticks });
    await runner.start();
    await vi.advanceTimersByTimeAsync(10_000); // the 00:00:10 tick, and the broken one's 5 tries (100 ms apart)
    runner.stop();
    expect(told.sort()).toEqual(['broken failed 00:00:10', 'gone skipped 00:00:10', 'ok fired 00:00:10', 'ok late 00:00:00']);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'ok', outcome: 'fired' })).toBe(1);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'ok', outcome: 'late' })).toBe(1);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'gone', outcome: 'skipped' })).toBe(1);
    expect(await value(m, 'zfaas_schedule_ticks_total', { function: 'broken', outcome: 'failed' })).toBe(1);
  });
});

describe('cold starts', () => {
  it('counts each run that began with a container start once, by function and kind, however often its node tells it', async () => {
    const words = new Emitter<Pick<BrokerEvents, 'outcome'>>();
    const m = new Metrics({ events: new EventEmitter<CallEvents>(), meta: { get: async () => null } }, nodes, queue, {
      schedules: new Emitter(),
      nodeWords: words,
    });
    const outcome: CallOutcome = { status: 'DONE', result: '1', durationMs: 2 };
    const word = (callNum: number, start?: NodeOutcome['start'], life = 'L1'): void =>
      words.emit('outcome', { callNum, node: 'n1', life, outcome, ran: true, attempt: 1, holder: true, ...(start ? { start } : {}) });
    word(1, { fn: 'f', kind: 'new', ms: 200 });
    word(1, { fn: 'f', kind: 'new', ms: 200 }); // told again before the API said `recorded`
    word(2); // a warm run
    word(3, { fn: 'f', kind: 'stem', ms: 40 });
    word(4, { fn: 'g', kind: 'fresh', ms: 300 });
    expect(await value(m, 'zfaas_cold_starts_total', { function: 'f', kind: 'new' })).toBe(1);
    expect(await value(m, 'zfaas_cold_starts_total', { function: 'f', kind: 'stem' })).toBe(1);
    expect(await value(m, 'zfaas_cold_starts_total', { function: 'g', kind: 'fresh' })).toBe(1);
    const text = await m.text();
    expect(text).toContain('zfaas_cold_start_seconds_count{function="f",kind="new"} 1');
    expect(text).toContain('zfaas_cold_start_seconds_sum{function="f",kind="new"} 0.2');
    expect(text).toContain('zfaas_cold_start_seconds_bucket{le="0.25",function="f",kind="new"} 1');
    expect(text).toContain('zfaas_cold_start_seconds_bucket{le="0.1",function="f",kind="new"} 0');
    // On the dashboard's per-function row, beside its calls.
    const events = new EventEmitter<CallEvents>();
    const m2 = new Metrics({ events, meta: { get: async () => null } }, nodes, queue, { schedules: new Emitter(), nodeWords: words });
    events.emit('finished', { callNum: 9, funcName: 'f', outcome, latencyMs: 5 });
    word(9, { fn: 'f', kind: 'new', ms: 120 }, 'L2');
    expect(m2.functions().f).toMatchObject({ calls: 1, coldStarts: 1, coldP50: 120 });
  });
});

// ---- The timeline filled from stored calls ----

// listCalls as the DB service answers it: newest first, `before` exclusive, at most `limit`.
class FakeDb implements Pick<DbClient, 'request'> {
  readonly requests: { limit?: number; before?: number }[] = [];
  failNext = 0;
  constructor(readonly calls: Call[]) {}

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]> {
    if (msgType !== 'listCalls') throw new Error(`unexpected ${msgType}`);
    await Promise.resolve();
    const q = content as { limit?: number; before?: number; order?: string };
    this.requests.push({ limit: q.limit, before: q.before });
    if (this.failNext-- > 0) throw Object.assign(new Error('db service unavailable'), { code: 'TIMEOUT' });
    const sorted = [...this.calls].sort((a, b) => b.callNum - a.callNum).filter((c) => !q.before || c.callNum < q.before);
    return sorted.slice(0, q.limit ?? Infinity) as DbResults[K];
  }
}

// One call a minute for three hours before T0, the last ones ending after it; each took 100 ms + n ms.
function history(): Call[] {
  const out: Call[] = [];
  for (let i = 0; i < 180; i++) {
    const created = T0 - (180 - i) * MINUTE_MS + 10_000; // i = 179: 50 s before T0 + 10 s
    out.push({
      callNum: i + 1,
      funcName: i % 2 ? 'odd' : 'even',
      params: {},
      status: i % 10 === 0 ? 'ERROR' : 'DONE',
      result: '',
      attempts: 1,
      createdAt: new Date(created).toISOString(),
      finishedAt: new Date(created + 100 + i).toISOString(),
    });
  }
  out.push({
    callNum: 181,
    funcName: 'even',
    params: {},
    status: 'RUNNING',
    result: '',
    attempts: 1,
    createdAt: new Date(T0).toISOString(),
  });
  out.push({
    callNum: 182,
    funcName: 'even',
    params: {},
    status: 'DONE',
    result: '',
    attempts: 1,
    createdAt: new Date(T0).toISOString(),
    finishedAt: new Date(T0 + 5).toISOString(), // after the API started: it comes as an event instead
  });
  return out;
}

describe('Metrics filled at start from the stored calls', () => {
  const quiet = new EventEmitter<CallEvents>();
  const calls: CallsView = { events: quiet, meta: { get: async () => null } };

  it('adds the calls that ended in the hour before the start, reading newest first, page by page', async () => {
    const db = new FakeDb(history());
    const m = new Metrics(calls, nodes, queue, { db, now: () => T0, schedules: new Emitter(), backfill: { pageSize: 50 } });
    // The hour is the 60 minutes 11:01..12:00: calls 122..180 ended in it (call 121 at 11:00:40).
    expect(await m.filled).toBe(59);
    const v = m.timeline.view();
    const sum = (xs: number[]): number => xs.reduce((a, n) => a + n, 0);
    expect(sum(v.functions.odd!.calls) + sum(v.functions.even!.calls)).toBe(59);
    expect(sum(v.functions.even!.errors)).toBe(5); // i = 130, 140, ..., 170
    // The call of the minute 11:59 (i = 179, odd) took 279 ms from acceptance to its end.
    expect(v.functions.odd!.p50.at(-2)).toBe(279);
    // Paged with `before`, and stopped once the calls were made long before the hour.
    expect(db.requests.map((r) => r.before)).toEqual([undefined, 133]);
  });

  it('reads at most maxCalls, and after a failed read goes on from the same page', async () => {
    const db = new FakeDb(history());
    db.failNext = 1;
    const m = new Metrics(calls, nodes, queue, {
      db,
      now: () => T0,
      schedules: new Emitter(),
      backfill: { pageSize: 20, maxCalls: 30, retryMs: 1 },
    });
    // The newest 30 calls: 182 (ended after the start), 181 (running) and 153..180 (28 in the hour).
    expect(await m.filled).toBe(28);
    expect(db.requests).toEqual([
      { limit: 20, before: undefined },
      { limit: 20, before: undefined },
      { limit: 10, before: 163 },
    ]);
  });

  it('gives up after its tries without throwing', async () => {
    const db = new FakeDb(history());
    db.failNext = 10;
    const m = new Metrics(calls, nodes, queue, { db, now: () => T0, schedules: new Emitter(), backfill: { tries: 3, retryMs: 1 } });
    expect(await m.filled).toBe(0);
    expect(db.requests).toHaveLength(3);
  });
});
