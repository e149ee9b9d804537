// Schedules: the next tick (seconds field, time zones), refusals naming their field, the missed-tick rule,
// and the runner on a fake clock: one call per tick, none twice across a restart or with two runners on
// one (fake) DB whose idempotency keys answer a tick's call again as the DB service does.
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Call, ScheduleRef } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { Schedule } from '../protocol/db.js';
import { cronOf, missedTick, nextTick, ScheduleError, ScheduleRunner, shortestGapS, tickKey } from './schedules.js';

const log = pino({ level: 'silent' });
const at = (iso: string): Date => new Date(iso);

function refusal(f: () => unknown): ScheduleError {
  try {
    f();
  } catch (e) {
    if (e instanceof ScheduleError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('next tick', () => {
  it('takes a seconds field and is strictly after the time given', () => {
    const s = { cron: '*/2 * * * * *', timezone: 'UTC' };
    expect(nextTick(s, at('2026-01-01T00:00:01.500Z'))?.toISOString()).toBe('2026-01-01T00:00:02.000Z');
    expect(nextTick(s, at('2026-01-01T00:00:02.000Z'))?.toISOString()).toBe('2026-01-01T00:00:04.000Z');
  });
  it('reads five fields in the time zone given', () => {
    expect(nextTick({ cron: '0 9 * * *', timezone: 'Europe/Paris' }, at('2026-01-01T00:00:00Z'))?.toISOString()).toBe(
      '2026-01-01T08:00:00.000Z',
    );
    expect(nextTick({ cron: '0 9 * * *', timezone: 'Europe/Paris' }, at('2026-07-01T00:00:00Z'))?.toISOString()).toBe(
      '2026-07-01T07:00:00.000Z',
    );
    expect(nextTick({ cron: '30 2 * * 1', timezone: 'UTC' }, at('2026-01-01T00:00:00Z'))?.toISOString()).toBe('2026-01-05T02:30:00.000Z');
  });
  it('refuses a bad expression or time zone, naming the field', () => {
    expect(refusal(() => cronOf('bad')).field).toBe('cron');
    expect(refusal(() => cronOf('* * * * * * 2030')).field).toBe('cron'); // no year field
    expect(refusal(() => cronOf('61 * * * *')).field).toBe('cron');
    expect(refusal(() => cronOf('* * * * *', 'Nope/Nowhere')).message).toMatch(/^invalid timezone: /);
    expect(() => cronOf('*/2 * * * * *', 'America/New_York')).not.toThrow();
  });
  it('keys a tick by namespace, schedule and time, hashed with sha256', () => {
    const { key, hash } = tickKey({ id: 'ab12', funcName: 'f' }, at('2026-01-01T00:00:02Z'));
    expect(key).toBe('default~schedule:ab12~2026-01-01T00:00:02.000Z');
    expect(hash).toBe(createHash('sha256').update(key).digest('hex'));
    // Another namespace's schedule with the same id, or a schedule made again (a new id), never meets it.
    expect(tickKey({ id: 'ab12', funcName: 'team-a~f' }, at('2026-01-01T00:00:02Z')).key).toBe(
      'team-a~schedule:ab12~2026-01-01T00:00:02.000Z',
    );
    expect(tickKey({ id: 'ab13', funcName: 'f' }, at('2026-01-01T00:00:02Z')).key).not.toBe(key);
  });
});

describe('how close ticks come', () => {
  const from = new Date('2030-01-01T00:00:30Z');
  it.each([
    ['* * * * * *', 1],
    ['*/20 * * * * *', 20],
    ['0,59 * * * * *', 1], // 59 s, then 1 s into the next minute
    ['* * * * *', 60],
    ['*/5 * * * *', 300],
    ['0,1 * * * *', 60],
    ['59 23,0 * * *', 3600],
    ['0 0 * * *', 86400],
  ])('%s: %i s at the closest', (cron, gap) => {
    expect(shortestGapS(cronOf(cron), 0, 200, from)).toBe(gap);
  });

  it('stops at the first gap closer than asked', () => {
    expect(shortestGapS(cronOf('* * * * * *'), 60, 200, from)).toBe(1);
    expect(shortestGapS(cronOf('0 0 1 1 *'), 60, 3, from)).toBe(365 * 86400);
  });
});

describe('missed ticks', () => {
  const base = { cron: '*/10 * * * * *', timezone: 'UTC', createdAt: '2026-01-01T00:00:00.000Z' };
  const run = (tick: string) => ({ tick, callNum: 1, at: tick });
  it('skip: nothing', () => {
    expect(missedTick({ ...base, missed: 'skip', lastRun: run('2026-01-01T00:00:10.000Z') }, at('2026-01-01T00:05:00Z'))).toBeNull();
  });
  it('once: the latest tick after the last run, not after now', () => {
    const s = { ...base, missed: 'once' as const, lastRun: run('2026-01-01T00:00:10.000Z') };
    expect(missedTick(s, at('2026-01-01T00:00:35.5Z'))?.toISOString()).toBe('2026-01-01T00:00:30.000Z');
    expect(missedTick(s, at('2026-01-01T00:00:19.9Z'))).toBeNull(); // nothing since the last run
    expect(missedTick({ ...s, lastRun: run('2026-01-01T00:00:30.000Z') }, at('2026-01-01T00:00:35Z'))).toBeNull();
  });
  it('once, never run: ticks since its creation only', () => {
    const s = { ...base, missed: 'once' as const, createdAt: '2026-01-01T00:00:05.000Z' };
    expect(missedTick(s, at('2026-01-01T00:00:09Z'))).toBeNull();
    expect(missedTick(s, at('2026-01-01T00:00:21Z'))?.toISOString()).toBe('2026-01-01T00:00:20.000Z');
  });
});

// A fake DB service: the schedules, and createCall's idempotency keys (the same key answers its call).
class FakeDb {
  schedules = new Map<string, Schedule>();
  calls: Call[] = [];
  private keys = new Map<string, number>();
  invoke = async (
    funcName: string,
    params: unknown,
    _v: undefined,
    o: { idempotency: { key: string; hash: string }; schedule: ScheduleRef },
  ): Promise<{ call: Call; replayed: boolean }> => {
    await Promise.resolve();
    const had = this.keys.get(o.idempotency.key);
    if (had) return { call: this.calls[had - 1]!, replayed: true };
    const call: Call = {
      callNum: this.calls.length + 1,
      funcName,
      params,
      status: 'PENDING',
      result: '',
      attempts: 0,
      createdAt: new Date().toISOString(),
      schedule: o.schedule,
    };
    this.calls.push(call);
    this.keys.set(o.idempotency.key, call.callNum);
    return { call, replayed: false };
  };
  request = (async (msgType: string, content: { id?: string; tick?: string; callNum?: number }) => {
    await Promise.resolve();
    if (msgType === 'listSchedules') return [...this.schedules.values()];
    if (msgType === 'recordScheduleRun') {
      const s = this.schedules.get(content.id!);
      if (!s) return null;
      if (!s.lastRun || Date.parse(s.lastRun.tick) < Date.parse(content.tick!))
        this.schedules.set(s.id, { ...s, lastRun: { tick: content.tick!, callNum: content.callNum!, at: new Date().toISOString() } });
      return this.schedules.get(s.id);
    }
    throw new Error(`unexpected ${msgType}`);
  }) as unknown as DbClient['request'];
}

describe('the runner', () => {
  let db: FakeDb;
  const runner = (): ScheduleRunner => new ScheduleRunner({ db, invoke: db.invoke, log, syncMs: 5000, retryMs: 100 });
  const sched = (over: Partial<Schedule> = {}): Schedule => ({
    id: 'aa01',
    funcName: 'f',
    cron: '*/2 * * * * *',
    timezone: 'UTC',
    params: { n: 1 },
    missed: 'skip',
    createdAt: '2026-01-01T00:00:00.000Z',
    ...over,
  });
  const ticks = (): string[] => db.calls.map((c) => c.schedule!.tick);

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    vi.setSystemTime(at('2026-01-01T00:00:00.500Z'));
    db = new FakeDb();
  });
  afterEach(() => vi.useRealTimers());

  it('fires once per tick, with the schedule and tick on the call, and records the last run', async () => {
    db.schedules.set('aa01', sched());
    const r = runner();
    await r.start();
    await vi.advanceTimersByTimeAsync(10_000); // to 00:00:10.5
    r.stop();
    expect(ticks()).toEqual(['02', '04', '06', '08', '10'].map((s) => `2026-01-01T00:00:${s}.000Z`));
    expect(db.calls.every((c) => c.schedule?.id === 'aa01' && (c.params as { n: number }).n === 1)).toBe(true);
    expect(db.schedules.get('aa01')?.lastRun?.tick).toBe('2026-01-01T00:00:10.000Z');
  });

  it('two runners on one DB make each tick once', async () => {
    db.schedules.set('aa01', sched());
    const [a, b] = [runner(), runner()];
    await Promise.all([a.start(), b.start()]);
    await vi.advanceTimersByTimeAsync(8_000);
    a.stop();
    b.stop();
    expect(ticks()).toHaveLength(4);
    expect(new Set(ticks()).size).toBe(4);
  });

  it('skip: after a restart, only the ticks from then on', async () => {
    db.schedules.set('aa01', sched({ lastRun: { tick: '2025-12-31T23:59:00.000Z', callNum: 9, at: '' } }));
    const r = runner();
    await r.start();
    await vi.advanceTimersByTimeAsync(2_000);
    r.stop();
    expect(ticks()).toEqual(['2026-01-01T00:00:02.000Z']);
  });

  it('once: on start, one call for the latest missed tick, and that tick once even if started twice', async () => {
    db.schedules.set(
      'aa01',
      sched({ missed: 'once', cron: '*/10 * * * * *', lastRun: { tick: '2025-12-31T23:58:00.000Z', callNum: 9, at: '' } }),
    );
    const r = runner();
    await r.start();
    const again = runner(); // a second start (a restart racing the first) replays the same tick
    await again.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(ticks()).toEqual(['2026-01-01T00:00:00.000Z']);
    await vi.advanceTimersByTimeAsync(10_000);
    r.stop();
    again.stop();
    expect(ticks()).toEqual(['2026-01-01T00:00:00.000Z', '2026-01-01T00:00:10.000Z']);
  });

  it('a tick that fails is tried again with the same key; a removed schedule stops firing', async () => {
    db.schedules.set('aa01', sched());
    let failures = 1;
    const invoke = db.invoke;
    db.invoke = async (...args) => {
      if (failures-- > 0) throw new Error('db service unavailable');
      return invoke(...args);
    };
    const r = new ScheduleRunner({ db, invoke: (...a) => db.invoke(...a), log, retryMs: 100 });
    await r.start();
    await vi.advanceTimersByTimeAsync(1_700); // the 00:00:02 tick fails, then is retried at 02.1
    expect(ticks()).toEqual(['2026-01-01T00:00:02.000Z']);
    db.schedules.delete('aa01'); // as DELETE .../schedules/ID does: from the DB, then from the runner
    r.remove('aa01');
    await vi.advanceTimersByTimeAsync(6_000);
    r.stop();
    expect(ticks()).toEqual(['2026-01-01T00:00:02.000Z']);
  });

  it('a schedule removed through another API does not fire, even before the next read', async () => {
    db.schedules.set('aa01', sched());
    const r = runner();
    await r.start();
    db.schedules.delete('aa01');
    await vi.advanceTimersByTimeAsync(4_000);
    r.stop();
    expect(ticks()).toEqual([]);
  });

  it('picks up schedules added or removed by another API on its next read', async () => {
    const r = runner();
    await r.start();
    db.schedules.set('bb02', sched({ id: 'bb02' }));
    await vi.advanceTimersByTimeAsync(5_000); // read at 00:00:05.5
    expect(ticks()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ticks()).toEqual(['2026-01-01T00:00:06.000Z']);
    db.schedules.delete('bb02');
    await vi.advanceTimersByTimeAsync(5_000);
    const n = ticks().length;
    await vi.advanceTimersByTimeAsync(6_000);
    r.stop();
    expect(ticks().length).toBe(n);
  });
});

describe('schedules in the DB service', () => {
  it('are stored, listed per function, outlive a restart, move lastRun forward only, and mark their calls', async () => {
    vi.useRealTimers();
    const { DbUnderTest } = await import('../test/helpers/db-service.js');
    const t = await DbUnderTest.open('zfaas-sched-');
    try {
      const s = {
        id: 'cc03',
        funcName: 'f',
        cron: '*/2 * * * * *',
        timezone: 'UTC',
        params: { a: 1 },
        missed: 'once' as const,
        createdAt: new Date().toISOString(),
      };
      expect(await t.remote.request('putSchedule', s)).toEqual(s);
      await t.remote.request('putSchedule', { ...s, id: 'dd04', funcName: 'g' });
      const tick = '2026-01-01T00:00:04.000Z';
      expect((await t.remote.request('recordScheduleRun', { funcName: 'f', id: 'cc03', tick, callNum: 2 }))?.lastRun?.tick).toBe(tick);
      const older = await t.remote.request('recordScheduleRun', {
        funcName: 'f',
        id: 'cc03',
        tick: '2026-01-01T00:00:02.000Z',
        callNum: 1,
      });
      expect(older?.lastRun).toMatchObject({ tick, callNum: 2 });
      const { key, hash } = tickKey({ id: 'cc03', funcName: 'f' }, at(tick));
      const made = await t.remote.request('createCall', {
        funcName: 'f',
        version: 1,
        params: {},
        idempotency: { key, hash },
        schedule: { id: 'cc03', tick },
      });
      const again = await t.remote.request('createCall', {
        funcName: 'f',
        version: 1,
        params: {},
        idempotency: { key, hash },
        schedule: { id: 'cc03', tick },
      });
      expect(again).toMatchObject({ callNum: made.callNum, replayed: true });
      await t.stop();
      await t.start();
      expect((await t.remote.request('listSchedules', { funcName: 'f' })).map((x) => [x.id, x.lastRun?.callNum])).toEqual([['cc03', 2]]);
      expect(await t.remote.request('listSchedules', {})).toHaveLength(2);
      expect((await t.remote.request('getCall', { callNum: made.callNum }))?.schedule).toEqual({ id: 'cc03', tick });
      expect(await t.remote.request('deleteSchedule', { funcName: 'f', id: 'cc03' })).toEqual({ deleted: true });
      expect(await t.remote.request('deleteSchedule', { funcName: 'f', id: 'cc03' })).toEqual({ deleted: false });
      expect(await t.remote.request('listSchedules', { funcName: 'f' })).toEqual([]);
      await t.remote.request('putSchedule', { ...s, id: 'ee05', funcName: 'g' });
      await t.remote.request('deleteFunction', { name: 'g' }); // no such function: nothing removed
      expect(await t.remote.request('listSchedules', { funcName: 'g' })).toHaveLength(2);
    } finally {
      await t.remove();
    }
  });
});
