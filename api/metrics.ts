// What the API measures about calls, for Prometheus (GET /metrics) and for the dashboard: per-function
// latency (GET /metrics/functions) and the last hour minute by minute (GET /metrics/functions/timeline).
// Everything is fed by events (Calls', the schedule runners', the callback deliverer's), so the call path
// stays untouched; gauges that describe the cluster (queue, nodes, warm containers) are read from the node
// registry and the queue at scrape time. The timeline is filled at start from the calls the DB service
// holds, so the dashboard's charts survive an API restart.
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { errText, type Logger } from '../common/log.js';
import { isFinal, SETTING_LIMITS, type Call } from '../common/model.js';
import { namespaceOf } from '../common/namespace.js';
import { afterRun } from '../common/retry.js';
import type { DbClient } from '../db/client.js';
import type { BrokerEvents, Listen, NodeRegistry } from './broker.js';
import type { DeliveryEvents } from './callbacks/deliverer.js';
import type { CallEvents } from './calls.js';
import type { MetaCache } from './meta-cache.js';
import { Recent, Sample } from './quantiles.js';
import type { QueueView } from './dispatcher.js';
import { scheduleEvents, type ScheduleEvents } from './schedules.js';

type Finished = CallEvents['finished'][0];

// Seconds; from a warm call (~1 ms) to a long one (the default timeout is 30 s).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

// Seconds a cold start takes: from a stem cell taking a function (~50 ms) to a dependencies step.
const COLD_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
const COLD_SEEN_MAX = 10_000; // runs remembered to count each start once (resends come within seconds)

// Calls of a function not accepted by this API process (e.g. recovered after a restart) have no name here.
const UNKNOWN = 'unknown';

export interface FunctionStats {
  calls: number; // finished since the API started
  errors: number; // ERROR or TIMEOUT
  p50: number | null; // ms, over its most recent calls
  p95: number | null;
  lastAt: string | null;
  coldStarts: number; // runs that began with a container start, since the API started
  coldP50: number | null; // ms a start took, over the most recent ones
}

// ---- The last hour, minute by minute -------------------------------------------------------------------

export const MINUTE_MS = 60_000;
export const TIMELINE_MINUTES = 60;
const SAMPLE_SIZE = 128; // latencies kept per function and minute: exact quantiles up to this many calls
const MAX_FUNCTIONS = 10_000;

interface Minute {
  minute: number; // minutes since the epoch
  calls: number;
  errors: number;
  latency: Sample;
  q?: (number | null)[]; // p50 and p95 of `latency`, until it changes
}

// One function's hour, oldest minute first; the last minute is the current one (still filling).
export interface FunctionTimeline {
  calls: number[]; // calls that ended in that minute
  errors: number[]; // of which ERROR or TIMEOUT
  p50: (number | null)[]; // ms, acceptance to final state; null: no call that minute
  p95: (number | null)[];
}

export interface TimelineView {
  minuteMs: number;
  minutes: number[]; // the start of each minute, epoch ms, oldest first
  functions: Record<string, FunctionTimeline>; // functions with a call in the hour, by name
}

// Per function, a ring of 60 per-minute buckets (calls, errors, a bounded sample of latencies): memory is
// at most functions × 60 × SAMPLE_SIZE numbers, and a function without a call for an hour is dropped.
export class Timeline {
  private readonly fns = new Map<string, (Minute | undefined)[]>();
  private prunedAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A call of `fn` that ended at `at` (epoch ms). False when it is outside the hour (or over the bounds). */
  add(fn: string, at: number, latencyMs: number | undefined, failed: boolean): boolean {
    const current = Math.floor(this.now() / MINUTE_MS);
    const minute = Math.min(current, Math.floor(at / MINUTE_MS)); // a clock ahead of ours: this minute
    if (!Number.isFinite(minute) || minute <= current - TIMELINE_MINUTES) return false;
    if (current !== this.prunedAt) this.prune(current);
    let ring = this.fns.get(fn);
    if (!ring) {
      if (this.fns.size >= MAX_FUNCTIONS) return false;
      ring = new Array<Minute | undefined>(TIMELINE_MINUTES);
      this.fns.set(fn, ring);
    }
    const slot = minute % TIMELINE_MINUTES;
    let m = ring[slot];
    if (!m || m.minute !== minute) ring[slot] = m = { minute, calls: 0, errors: 0, latency: new Sample(SAMPLE_SIZE) };
    m.calls++;
    if (failed) m.errors++;
    if (latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs >= 0) {
      m.latency.add(latencyMs);
      m.q = undefined;
    }
    return true;
  }

  // Drops the functions that had no call in the hour, and works out the quantiles of the minutes that are
  // over (they change no more, but for stored calls at start), so that a view computes only this minute's.
  private prune(current: number): void {
    this.prunedAt = current;
    for (const [fn, ring] of this.fns) {
      let live = false;
      for (const m of ring) {
        if (!m || m.minute <= current - TIMELINE_MINUTES) continue;
        live = true;
        if (m.minute < current) m.q ??= m.latency.quantiles([0.5, 0.95]);
      }
      if (!live) this.fns.delete(fn);
    }
  }

  /** Drops the functions `gone` says went (their namespace was deleted). */
  forget(gone: (fn: string) => boolean): void {
    for (const fn of [...this.fns.keys()]) if (gone(fn)) this.fns.delete(fn);
  }

  view(only?: string): TimelineView {
    const current = Math.floor(this.now() / MINUTE_MS);
    this.prune(current);
    const first = current - TIMELINE_MINUTES + 1;
    const minutes = Array.from({ length: TIMELINE_MINUTES }, (_, i) => (first + i) * MINUTE_MS);
    const entries: [string, FunctionTimeline][] = [];
    for (const fn of [...this.fns.keys()].sort()) {
      if (only !== undefined && fn !== only) continue;
      const ring = this.fns.get(fn)!;
      const t: FunctionTimeline = { calls: [], errors: [], p50: [], p95: [] };
      for (let minute = first; minute <= current; minute++) {
        const m = ring[minute % TIMELINE_MINUTES];
        const here = m && m.minute === minute ? m : undefined;
        if (here) here.q ??= here.latency.quantiles([0.5, 0.95]); // a past minute's are computed once
        t.calls.push(here?.calls ?? 0);
        t.errors.push(here?.errors ?? 0);
        t.p50.push(here?.q?.[0] ?? null);
        t.p95.push(here?.q?.[1] ?? null);
      }
      entries.push([fn, t]);
    }
    return { minuteMs: MINUTE_MS, minutes, functions: Object.fromEntries(entries) };
  }
}

// ---- Metrics -------------------------------------------------------------------------------------------

export interface MetricsOptions {
  db?: Pick<DbClient, 'request'>; // to fill the timeline at start from the calls of the last hour
  deliveries?: Listen<DeliveryEvents>; // the callback deliverer's tries
  schedules?: Listen<ScheduleEvents>; // the schedule runners' ticks (default: this process's, scheduleEvents)
  nodeWords?: Listen<Pick<BrokerEvents, 'outcome'>>; // outcomes as nodes tell them (cold starts ride on them)
  log?: Logger;
  now?: () => number; // the clock (tests)
  backfill?: { maxCalls?: number; pageSize?: number; tries?: number; retryMs?: number };
}

// What Metrics reads of Calls: its events, and the function definitions (to tell a dead letter).
export interface CallsView {
  events: Listen<CallEvents>;
  meta: Pick<MetaCache, 'get'>;
}

export class Metrics {
  readonly registry = new Registry();
  readonly timeline: Timeline;
  /** Resolves with the number of stored calls the timeline was filled with at start (0 without a DB). */
  readonly filled: Promise<number>;
  private readonly recent = new Map<string, Recent>(); // function -> latencies of its last calls
  private readonly totals = new Map<string, { calls: number; errors: number; lastAt: number }>();
  private readonly cold = new Map<string, { starts: number; recent: Recent }>(); // function -> its cold starts
  private readonly coldSeen = new Set<string>(); // runs whose start is counted (a node may tell an outcome twice)
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly byFunction: (Counter | Histogram)[]; // the series with a `function` label

  constructor(
    private readonly calls: CallsView,
    nodes: NodeRegistry,
    queue: QueueView,
    private readonly o: MetricsOptions = {},
  ) {
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.timeline = new Timeline(this.now);
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const finished = new Counter({
      name: 'zfaas_calls_total',
      help: 'Calls that reached a final state, by function and status',
      labelNames: ['function', 'status'],
      registers,
    });
    const accepted = new Counter({
      name: 'zfaas_calls_accepted_total',
      help: 'Calls accepted (stored PENDING), by function',
      labelNames: ['function'],
      registers,
    });
    const latency = new Histogram({
      name: 'zfaas_call_latency_seconds',
      help: 'From acceptance to final state (queueing, container, run), by function',
      labelNames: ['function'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const duration = new Histogram({
      name: 'zfaas_call_duration_seconds',
      help: 'Run time inside the container as the node measured it, by function',
      labelNames: ['function'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const retries = new Counter({
      name: 'zfaas_call_retries_total',
      help: "Runs that failed and are run again (the function's `retries` setting), by function",
      labelNames: ['function'],
      registers,
    });
    const deadLetters = new Counter({
      name: 'zfaas_dead_letters_total',
      help: 'Calls that failed every run their function allowed and were listed as dead letters, by function',
      labelNames: ['function'],
      registers,
    });
    const ticks = new Counter({
      name: 'zfaas_schedule_ticks_total',
      help: 'Schedule ticks, by function and outcome: fired, late (a missed tick fired at start), skipped (no such function), failed (no call after every try)',
      labelNames: ['function', 'outcome'],
      registers,
    });
    const deliveries = new Counter({
      name: 'zfaas_callback_deliveries_total',
      help: 'Callback delivery tries, by function and result: delivered, retry (failed, tried again later), failed (given up)',
      labelNames: ['function', 'result'],
      registers,
    });

    const coldStarts = new Counter({
      name: 'zfaas_cold_starts_total',
      help: 'Runs that began by starting a container, by function and kind: fresh (policy none), new (made for the call), stem (a stem cell took the function)',
      labelNames: ['function', 'kind'],
      registers,
    });
    const coldStartTime = new Histogram({
      name: 'zfaas_cold_start_seconds',
      help: "How long a cold start took (the run's time beyond the function's own), by function and kind",
      labelNames: ['function', 'kind'],
      buckets: COLD_BUCKETS,
      registers,
    });

    this.byFunction = [finished, accepted, latency, duration, retries, deadLetters, ticks, deliveries, coldStarts, coldStartTime];

    o.nodeWords?.on('outcome', (w) => {
      if (!w.start || !this.firstWord(`${w.callNum}:${w.attempt ?? 1}:${w.life}`)) return;
      const fn = w.start.fn;
      coldStarts.inc({ function: fn, kind: w.start.kind });
      coldStartTime.observe({ function: fn, kind: w.start.kind }, w.start.ms / 1000);
      let c = this.cold.get(fn);
      if (!c) this.cold.set(fn, (c = { starts: 0, recent: new Recent() }));
      c.starts++;
      c.recent.add(w.start.ms);
    });

    calls.events.on('accepted', (call) => accepted.inc({ function: call.funcName }));
    calls.events.on('retrying', (r) => retries.inc({ function: r.funcName ?? UNKNOWN }));
    calls.events.on('finished', (f: Finished) => {
      const fn = f.funcName ?? UNKNOWN;
      finished.inc({ function: fn, status: f.outcome.status });
      if (f.latencyMs !== undefined) latency.observe({ function: fn }, f.latencyMs / 1000);
      if (f.outcome.durationMs !== undefined) duration.observe({ function: fn }, f.outcome.durationMs / 1000);
      this.remember(fn, f);
      this.timeline.add(fn, this.now(), f.latencyMs, f.outcome.status !== 'DONE');
      void this.isDeadLetter(f).then((dead) => dead && deadLetters.inc({ function: fn }));
    });
    (o.schedules ?? scheduleEvents).on('tick', (t) => ticks.inc({ function: t.funcName, outcome: t.outcome }));
    o.deliveries?.on('delivery', (d) => deliveries.inc({ function: d.funcName, result: d.result }));

    // Gauges computed when scraped: they describe the cluster now, not a history.
    new Gauge({
      name: 'zfaas_queue_length',
      help: 'Calls waiting at the API for a node with room',
      registers,
      collect() {
        this.set(queue.queueLength);
      },
    });
    new Gauge({
      name: 'zfaas_nodes_alive',
      help: 'Nodes currently registered and heartbeating',
      registers,
      collect() {
        this.set(nodes.alive().length);
      },
    });
    new Gauge({
      name: 'zfaas_node_running_calls',
      help: 'Calls a node holds (running or queued on it), by node',
      labelNames: ['node'],
      registers,
      collect() {
        this.reset();
        for (const n of nodes.alive()) this.set({ node: n.info.id }, n.inflight.size);
      },
    });
    new Gauge({
      name: 'zfaas_warm_containers',
      help: 'Warm containers holding a function version, by node and function (NAME@VERSION)',
      labelNames: ['node', 'function'],
      registers,
      collect() {
        this.reset(); // a function whose containers were reaped must disappear, not keep its last value
        for (const n of nodes.alive()) {
          for (const [fn, count] of Object.entries(n.load.warm)) this.set({ node: n.info.id, function: fn }, count);
        }
      },
    });
    new Gauge({
      name: 'zfaas_containers',
      help: "Containers in a node's pool, by node and state",
      labelNames: ['node', 'state'],
      registers,
      collect() {
        this.reset();
        for (const n of nodes.alive()) {
          for (const [state, count] of Object.entries(n.load.containers)) this.set({ node: n.info.id, state }, count);
        }
      },
    });

    this.filled = o.db ? this.fillFromDb(o.db) : Promise.resolve(0);
  }

  // A final failed run of a function that allows retries is a dead letter: the DB service's own rule
  // (common/retry.ts), applied to the version's settings. A `finished` event has no record, so this is
  // what tells it: the outcome came from a node (a run, not the platform ending the call), it failed and
  // was not cancelled, and the function version has `retries` (a run that is retried is `retrying`, not
  // `finished`). Calls this API did not accept (no name here) are not counted.
  private async isDeadLetter(f: Finished): Promise<boolean> {
    if (f.funcName === undefined || f.node === undefined || f.outcome.status === 'DONE' || f.outcome.cancelled) return false;
    try {
      const def = await this.calls.meta.get(f.funcName, f.version);
      if (!def) return false;
      const after = afterRun(def.fn.settings, def.fn.settings.retries, f.outcome);
      return after.kind === 'final' && after.deadLetter;
    } catch {
      return false; // the DB service is unreachable: not counted rather than guessed
    }
  }

  // A node tells an outcome again until the API has recorded it: a run's start is counted once.
  private firstWord(run: string): boolean {
    if (this.coldSeen.has(run)) return false;
    if (this.coldSeen.size >= COLD_SEEN_MAX) this.coldSeen.clear();
    this.coldSeen.add(run);
    return true;
  }

  private remember(fn: string, f: Finished): void {
    let r = this.recent.get(fn);
    if (!r) this.recent.set(fn, (r = new Recent()));
    if (f.latencyMs !== undefined) r.add(f.latencyMs);
    const t = this.totals.get(fn) ?? { calls: 0, errors: 0, lastAt: 0 };
    t.calls++;
    if (f.outcome.status !== 'DONE') t.errors++;
    t.lastAt = Date.now();
    this.totals.set(fn, t);
  }

  /**
   * Adds stored calls that ended in the hour before this API started to the timeline (calls that end
   * later come as events). Latency as the DB recorded it: from createdAt to finishedAt. Returns how many.
   */
  addStored(calls: readonly Call[]): number {
    let n = 0;
    const from = this.startedAt - TIMELINE_MINUTES * MINUTE_MS;
    for (const c of calls) {
      if (!isFinal(c.status) || !c.finishedAt) continue;
      const end = Date.parse(c.finishedAt);
      if (!Number.isFinite(end) || end < from || end >= this.startedAt) continue;
      const begin = Date.parse(c.createdAt);
      const latency = Number.isFinite(begin) && end >= begin ? end - begin : undefined;
      if (this.timeline.add(c.funcName, end, latency, c.status !== 'DONE')) n++;
    }
    return n;
  }

  // Reads the newest calls page by page (newest first) until they were created well before the hour (a
  // call may end up to the longest timeout after it was made), or maxCalls were read. The DB service may
  // still be starting: a failed read is tried again a few times.
  private async fillFromDb(db: Pick<DbClient, 'request'>): Promise<number> {
    const b = this.o.backfill ?? {};
    const maxCalls = b.maxCalls ?? 20_000;
    const pageSize = b.pageSize ?? 500;
    const oldest = this.startedAt - TIMELINE_MINUTES * MINUTE_MS - SETTING_LIMITS.timeout.max * 1000;
    let read = 0;
    let used = 0;
    let before: number | undefined;
    let attempt = 1;
    while (read < maxCalls) {
      const limit = Math.min(pageSize, maxCalls - read);
      let page: Call[];
      try {
        page = await db.request('listCalls', { order: 'desc', limit, ...(before ? { before } : {}) });
      } catch (e) {
        if ((e as { code?: unknown } | null)?.code === 'CLOSED' || attempt >= (b.tries ?? 5)) {
          this.o.log?.warn({ err: errText(e), read, used }, 'metrics timeline not filled from the stored calls');
          return used;
        }
        attempt++;
        await sleep(b.retryMs ?? 2000, undefined, { ref: false });
        continue; // from the same page on: nothing is added twice
      }
      read += page.length;
      used += this.addStored(page);
      const last = page[page.length - 1];
      if (!last || page.length < limit || Date.parse(last.createdAt) < oldest) break;
      before = last.callNum;
      await yieldToLoop(); // a page at a time: requests are served in between
    }
    this.o.log?.info({ read, used }, 'metrics timeline filled from the stored calls');
    return used;
  }

  // A namespace was deleted: every series and figure of its functions goes, so that a namespace made again
  // under its name never sees the old one's function names or counts.
  async forgetNamespace(namespace: string): Promise<void> {
    const gone = (fn: string): boolean => namespaceOf(fn) === namespace;
    for (const fn of [...this.recent.keys()]) if (gone(fn)) this.recent.delete(fn);
    for (const fn of [...this.totals.keys()]) if (gone(fn)) this.totals.delete(fn);
    for (const fn of [...this.cold.keys()]) if (gone(fn)) this.cold.delete(fn);
    this.timeline.forget(gone);
    for (const metric of this.byFunction) {
      const seen = new Set<string>();
      for (const { labels } of (await metric.get()).values) {
        const { le: _bucket, ...series } = labels; // a histogram's buckets are one series with it
        const key = JSON.stringify(series);
        if (typeof series.function !== 'string' || !gone(series.function) || seen.has(key)) continue;
        seen.add(key);
        metric.remove(series);
      }
    }
  }

  // Per function, for people (the dashboard): counts since start and latency over the most recent calls.
  functions(): Record<string, FunctionStats> {
    const out: Record<string, FunctionStats> = {};
    for (const [fn, t] of this.totals) {
      const r = this.recent.get(fn);
      const c = this.cold.get(fn);
      out[fn] = {
        calls: t.calls,
        errors: t.errors,
        p50: r?.quantile(0.5) ?? null,
        p95: r?.quantile(0.95) ?? null,
        lastAt: new Date(t.lastAt).toISOString(),
        coldStarts: c?.starts ?? 0,
        coldP50: c?.recent.quantile(0.5) ?? null,
      };
    }
    return out;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
