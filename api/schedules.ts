// Schedules (cron triggers) of functions: the rules (parsing a schedule, its next tick, the tick a
// `missed: once` schedule runs on return) and the ScheduleRunner that fires them. (api/dispatcher.ts is
// something else: which node runs a call.)
// Exactly once per tick: every tick starts its call through Calls.invoke with the idempotency key
// `<tick ISO time>` of the caller `schedule:<id>` in the function's namespace (tickKey), which the DB
// service checks inside its ordered writes. An API killed
// and restarted between ticks, a retry after a DB error, or a second API process on the same DB making
// the same tick's call all get the call that tick already made (`replayed`), never a second one.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Cron } from 'croner';
import { errText, type Logger } from '../common/log.js';
import type { Call, ScheduleRef } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import { namespaceOf } from '../common/namespace.js';
import { scopedIdempotencyKey, type Schedule } from '../protocol/db.js';
import { NotFoundError } from '../common/errors.js';

export const MISSED = ['skip', 'once'] as const;
export type Missed = (typeof MISSED)[number];

// Why a schedule is refused: `field` is the field at fault (cron, timezone, missed).
export class ScheduleError extends Error {
  constructor(
    readonly field: 'cron' | 'timezone' | 'missed',
    message: string,
  ) {
    super(`invalid ${field}: ${message}`);
  }
}

export function checkTimezone(tz: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ScheduleError('timezone', `${JSON.stringify(tz)} is not an IANA time zone (such as UTC or Europe/Paris)`);
  }
}

// A cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), in a time zone.
export function cronOf(cron: string, timezone = 'UTC'): Cron {
  checkTimezone(timezone);
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    throw new ScheduleError('cron', `expected 5 fields (minute hour day month weekday) or 6 (seconds first), got ${fields}`);
  try {
    const c = new Cron(cron.trim(), { timezone, paused: true });
    if (!c.nextRun(new Date())) throw new Error('it never matches a time');
    return c;
  } catch (e) {
    if (e instanceof ScheduleError) throw e;
    throw new ScheduleError('cron', errText(e).replace(/^CronPattern: /, ''));
  }
}

// How close, in seconds, two ticks of a schedule come: the least gap over its next `runs` ticks, stopping
// early at one closer than `below`. Ticks less than a minute apart show within the first minute that has
// a tick (they need two values in the seconds field); wider patterns repeat hourly or daily, within the
// ticks read for any cron that ticks often enough to matter. Infinity when it ticks once or never.
export function shortestGapS(c: Cron, below: number, runs = 200, from = new Date()): number {
  let least = Infinity;
  let prev = c.nextRun(from);
  for (let i = 1; prev && i < runs; i++) {
    const next = c.nextRun(prev);
    if (!next) break;
    least = Math.min(least, (next.getTime() - prev.getTime()) / 1000);
    if (least < below) break;
    prev = next;
  }
  return least;
}

// The first tick strictly after `after`, or null if there is none.
export function nextTick(s: Pick<Schedule, 'cron' | 'timezone'>, after: Date): Date | null {
  return cronOf(s.cron, s.timezone).nextRun(after);
}

// The tick a schedule fires for when the API (re)starts at `now`: with `missed: once`, the latest tick
// after its last run (or its creation) and not after now; with `skip`, none.
export function missedTick(s: Pick<Schedule, 'cron' | 'timezone' | 'missed' | 'createdAt' | 'lastRun'>, now: Date): Date | null {
  if (s.missed !== 'once') return null;
  const since = Date.parse(s.lastRun?.tick ?? s.createdAt);
  const prev = cronOf(s.cron, s.timezone).previousRuns(1, now)[0];
  if (!prev || prev.getTime() > now.getTime() || prev.getTime() <= since) return null;
  return prev;
}

// The idempotency key of one tick, and its hash (sha256 of the same string): kept under the function's
// namespace and the schedule itself as the caller, so that ticks never meet another namespace's, another
// schedule's (one deleted and made again has a new id) or any key a caller sends.
export function tickKey(s: Pick<Schedule, 'id' | 'funcName'>, tick: Date): { key: string; hash: string } {
  const key = scopedIdempotencyKey(namespaceOf(s.funcName), `schedule:${s.id}`, tick.toISOString());
  return { key, hash: createHash('sha256').update(key).digest('hex') };
}

// What a runner tells of each tick it handled (for GET /metrics): `fired` started the tick's call, `late`
// started the call of a tick missed while no API ran (a `missed: once` schedule, at start), `skipped`
// found no function to call, `failed` could not start the call after every try. A tick whose call was
// made already (by another API process, or before a restart) is not told again.
export interface ScheduleEvents {
  tick: [t: { scheduleId: string; funcName: string; tick: string; outcome: 'fired' | 'late' | 'skipped' | 'failed' }];
}

type TickSink = { emit(event: 'tick', ...t: ScheduleEvents['tick']): unknown };

// Every runner of this process tells its ticks here unless given its own emitter (one API per process).
export const scheduleEvents = new EventEmitter<ScheduleEvents>();

export interface ScheduleRunnerDeps {
  db: Pick<DbClient, 'request'>;
  invoke(
    funcName: string,
    params: unknown,
    version: undefined,
    opts: { idempotency: { key: string; hash: string; ttlS?: number }; schedule: ScheduleRef },
  ): Promise<{ call: Call; replayed: boolean }>;
  log: Logger;
  now?: () => number; // the clock (tests)
  syncMs?: number; // how often the schedules are read again (another API may have changed them)
  retryMs?: number; // after a failed tick, the same tick is tried again this much later (a few times)
  events?: TickSink; // where ticks are told (default: scheduleEvents)
}

interface Entry {
  s: Schedule;
  next: Date | null;
  timer?: NodeJS.Timeout;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const RETRIES = 5;

// Keeps one timer per schedule for its next tick, fires it, and reads the schedules again every
// `syncMs`. Its timers never hold the process open, and it stops itself once the DB client is closed.
export class ScheduleRunner {
  private readonly entries = new Map<string, Entry>();
  private syncTimer?: NodeJS.Timeout;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly d: ScheduleRunnerDeps) {
    this.now = d.now ?? Date.now;
  }

  // Reads the schedules, fires the missed tick of each `missed: once` one, and arms every timer.
  async start(): Promise<void> {
    const all = await this.d.db.request('listSchedules', {});
    const now = new Date(this.now());
    for (const s of all) {
      const missed = missedTick(safe(s), now);
      if (missed) void this.fire(s, missed, 1, true);
      this.add(s);
    }
    this.scheduleSync();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.syncTimer);
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }

  // The next tick of a schedule this runner holds (for GET .../schedules).
  nextOf(s: Schedule): Date | null {
    return this.entries.get(s.id)?.next ?? nextTick(s, new Date(this.now()));
  }

  add(s: Schedule): void {
    if (this.stopped) return;
    const had = this.entries.get(s.id);
    if (had) {
      had.s = { ...s, lastRun: newer(had.s.lastRun, s.lastRun) };
      return;
    }
    const entry: Entry = { s, next: null };
    this.entries.set(s.id, entry);
    this.arm(entry, new Date(this.now()));
  }

  remove(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    clearTimeout(e.timer);
    this.entries.delete(id);
  }

  private arm(e: Entry, after: Date): void {
    let next: Date | null;
    try {
      next = nextTick(e.s, after);
    } catch (err) {
      this.d.log.warn({ schedule: e.s.id, err: errText(err) }, 'schedule cannot be computed');
      next = null;
    }
    e.next = next;
    if (!next || this.stopped) return;
    const wait = Math.max(0, next.getTime() - this.now());
    const tick = next;
    e.timer = setTimeout(
      () => {
        if (this.entries.get(e.s.id) !== e) return;
        // A long wait is split into timers of at most MAX_TIMER_MS: not yet the tick, wait again.
        if (tick.getTime() - this.now() > 1000) return this.arm(e, new Date(this.now() - 1));
        void this.fire(e.s, tick);
        this.arm(e, new Date(Math.max(tick.getTime(), this.now())));
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    e.timer.unref();
  }

  // Starts the call of one tick (again, after a failure: the key makes it once) and records the run.
  async fire(s: Schedule, tick: Date, attempt = 1, late = false): Promise<void> {
    if (this.stopped) return;
    const { key, hash } = tickKey(s, tick);
    const ref: ScheduleRef = { id: s.id, tick: tick.toISOString() };
    const tell = (outcome: ScheduleEvents['tick'][0]['outcome']): void => {
      const sink: TickSink = this.d.events ?? scheduleEvents;
      sink.emit('tick', { scheduleId: s.id, funcName: s.funcName, tick: ref.tick, outcome });
    };
    try {
      // Removed meanwhile (perhaps through another API, which this one hears of only at its next read)?
      const still = await this.d.db.request('listSchedules', { funcName: s.funcName });
      if (!still.some((x) => x.id === s.id)) return this.remove(s.id);
      const { call, replayed } = await this.d.invoke(s.funcName, s.params ?? {}, undefined, { idempotency: { key, hash }, schedule: ref });
      if (!replayed) tell(late ? 'late' : 'fired');
      this.d.log.info({ schedule: s.id, funcName: s.funcName, tick: ref.tick, callNum: call.callNum, replayed }, 'schedule fired');
      const updated = await this.d.db.request('recordScheduleRun', {
        funcName: s.funcName,
        id: s.id,
        tick: ref.tick,
        callNum: call.callNum,
      });
      const e = this.entries.get(s.id);
      if (updated && e) e.s = updated;
    } catch (err) {
      if (isClosed(err)) return this.stop();
      if (err instanceof NotFoundError) {
        this.d.log.warn({ schedule: s.id, funcName: s.funcName, err: errText(err) }, 'scheduled function not found; tick skipped');
        return tell('skipped');
      }
      this.d.log.warn({ schedule: s.id, tick: ref.tick, attempt, err: errText(err) }, 'schedule tick failed');
      if (attempt < RETRIES && !this.stopped) {
        setTimeout(() => void this.fire(s, tick, attempt + 1, late), this.d.retryMs ?? 1000).unref();
      } else if (!this.stopped) tell('failed');
    }
  }

  private scheduleSync(): void {
    if (this.stopped) return;
    this.syncTimer = setTimeout(() => {
      this.sync()
        .catch((err: unknown) => {
          if (isClosed(err)) this.stop();
          else this.d.log.warn({ err: errText(err) }, 'schedules not read');
        })
        .finally(() => this.scheduleSync());
    }, this.d.syncMs ?? 5000);
    this.syncTimer.unref();
  }

  // Picks up schedules another API process added or removed.
  async sync(): Promise<void> {
    const all = await this.d.db.request('listSchedules', {});
    const seen = new Set<string>();
    for (const s of all) {
      seen.add(s.id);
      this.add(s);
    }
    for (const id of [...this.entries.keys()]) if (!seen.has(id)) this.remove(id);
  }
}

const isClosed = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === 'CLOSED';

const newer = (a: Schedule['lastRun'], b: Schedule['lastRun']): Schedule['lastRun'] =>
  !a ? b : !b ? a : Date.parse(a.tick) >= Date.parse(b.tick) ? a : b;

// A stored schedule that no longer parses (should not happen: it was checked when added) fires nothing.
function safe(s: Schedule): Schedule {
  try {
    cronOf(s.cron, s.timezone);
    return s;
  } catch {
    return { ...s, missed: 'skip' };
  }
}
