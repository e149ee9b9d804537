// Delivers the final records of calls that carry a callback URL: POSTs each call's record (the JSON that
// GET /call/N answers) to its URL, with headers naming the call and its status (zfaas's own and the names
// OpenFaaS's queue-worker sends), and retries a failed try with exponential backoff until a 2xx answer or
// until its tries run out. The DB service holds the outbox (db/store.ts): a call's callback becomes
// `pending` when the call ends, this API claims the due ones (`claimDeliveries`, each leased so that two
// APIs never deliver the same one at once) and records each try (`recordDelivery`). Delivery is
// at-least-once: a try cut short by a stop or a crash is made again when its lease runs out, so a
// receiver should treat X-Zfaas-Call (with X-Zfaas-Delivery) as the key of what it got.
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { UsageError } from '../../common/errors.js';
import { errText, type Logger } from '../../common/log.js';
import type { Call, Delivery } from '../../common/model.js';
import type { DbContent, DbMsgType, DbResults } from '../../protocol/db.js';
import type { CallEvents } from '../calls.js';
import { Emitter } from '../broker.js';
import { hostOf, type AllowList, type Resolved } from '../../common/allow-list.js';

// What the deliverer tells of each try (metrics count them): `delivered` (a 2xx answer), `retry` (it
// failed and another try is due), `failed` (it failed and the tries ran out).
export interface DeliveryEvents {
  delivery: [{ funcName: string; result: 'delivered' | 'retry' | 'failed' }];
}

// The schedule of tries: the first again after firstMs, each next one after twice as long (at most
// maxStepMs), at most maxTries in all and none later than maxSpanMs after the call ended.
export interface Backoff {
  firstMs: number;
  maxStepMs: number;
  maxTries: number;
  maxSpanMs: number;
}
export const BACKOFF: Backoff = { firstMs: 1000, maxStepMs: 300_000, maxTries: 10, maxSpanMs: 3_600_000 };

const RESPONSE_READ_MAX = 4096; // bytes of a receiver's answer read (and discarded) before hanging up

// After `tries` tries that failed (this one included), when the next is due, or undefined: give up.
export function nextTry(b: Backoff, tries: number, endedAt: number, now: number): number | undefined {
  if (tries >= b.maxTries) return undefined;
  const at = now + Math.min(b.firstMs * 2 ** (tries - 1), b.maxStepMs);
  return at - endedAt > b.maxSpanMs ? undefined : at;
}

// ZFAAS_CALLBACK_BACKOFF_MS: the first step of the schedule, in ms (tests shorten it; default 1000).
export function firstBackoffMs(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 10 || n > BACKOFF.maxStepMs)
    throw new UsageError(
      `ZFAAS_CALLBACK_BACKOFF_MS must be a whole number of milliseconds from 10 to ${BACKOFF.maxStepMs}, not "${value}"`,
    );
  return n;
}

// OpenFaaS's X-Function-Status is the function's HTTP status: what its watchdog answers for an error
// (500) and for a run past its exec_timeout (504). A web call's record keeps the status its function chose.
export function functionStatus(call: Call): number {
  if (call.response?.status) return call.response.status;
  return call.status === 'DONE' ? 200 : call.status === 'TIMEOUT' ? 504 : 500;
}

// The headers of a delivery of `call`, its try number `attempt`.
export function deliveryHeaders(call: Call, attempt: number): Record<string, string> {
  const started = Date.parse(call.startedAt ?? '');
  const ended = Date.parse(call.finishedAt ?? '');
  const ms = call.durationMs ?? (Number.isFinite(started) && Number.isFinite(ended) ? ended - started : undefined);
  return {
    'content-type': 'application/json',
    'user-agent': 'zfaas-callback',
    'x-zfaas-call': String(call.callNum),
    'x-zfaas-status': call.status,
    'x-zfaas-function': call.funcName,
    'x-zfaas-delivery': String(attempt),
    'x-call-id': String(call.callNum),
    'x-function-name': call.funcName,
    'x-function-status': String(functionStatus(call)),
    ...(ms !== undefined ? { 'x-duration-seconds': (ms / 1000).toFixed(6) } : {}),
  };
}

interface Db {
  request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]>;
}

export interface DelivererOptions {
  db: Db;
  allow: AllowList;
  log: Logger;
  events?: EventEmitter<CallEvents>; // Calls.events: a call that ends here is delivered at once, not at the next poll
  pollMs?: number; // how often due deliveries are claimed (default 1 s)
  concurrency?: number; // deliveries under way at once (default 8)
  timeoutMs?: number; // one try: from connecting to the answer's status and its first few KB (default 10 s)
  backoff?: Partial<Backoff>;
}

const OURS_MAX = 100_000;

export class Deliverer {
  readonly events = new Emitter<DeliveryEvents>();
  private readonly log: Logger;
  private readonly pollMs: number;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly backoff: Backoff;
  private readonly tries = new Map<number, AbortController>(); // under way, by call
  private readonly running = new Set<Promise<void>>();
  private readonly ours = new Set<number>(); // accepted here with a callback and not ended yet
  private pollTimer?: NodeJS.Timeout;
  private wakeTimer?: NodeJS.Timeout;
  private wakeAt = Infinity;
  private claiming = false;
  private again = false;
  private more = false; // the last claim was full: more may be due
  private dbDown = false;
  private started = false;
  private stopped = false;

  constructor(private readonly o: DelivererOptions) {
    this.log = o.log;
    this.pollMs = o.pollMs ?? 1000;
    this.concurrency = Math.min(1000, Math.max(1, o.concurrency ?? 8));
    this.timeoutMs = o.timeoutMs ?? 10_000;
    // A claimed delivery is passed by until then: longer than a try can take (its DNS look-up included).
    this.leaseMs = Math.min(600_000, 2 * this.timeoutMs + 10_000);
    this.backoff = { ...BACKOFF, ...o.backoff };
  }

  private readonly onAccepted = (call: Call): void => {
    if (!call.callback) return;
    this.ours.add(call.callNum);
    if (this.ours.size > OURS_MAX) this.ours.delete(this.ours.values().next().value!);
  };

  // The end reaches this API before (or as) its node records it: claim now and once more a little later.
  private readonly onFinished = ({ callNum }: { callNum: number }): void => {
    if (!this.ours.delete(callNum)) return;
    this.kick();
    this.wake(Date.now() + 250);
  };

  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.o.events?.on('accepted', this.onAccepted);
    this.o.events?.on('finished', this.onFinished);
    this.pollTimer = setInterval(() => this.kick(), this.pollMs);
    this.kick();
  }

  // Stops claiming, cuts the tries under way short (not recorded: each is made again when its lease runs
  // out) and resolves once they have let go; no timer is left.
  async stop(): Promise<void> {
    this.stopped = true;
    this.o.events?.off('accepted', this.onAccepted);
    this.o.events?.off('finished', this.onFinished);
    clearInterval(this.pollTimer);
    clearTimeout(this.wakeTimer);
    for (const ac of this.tries.values()) ac.abort();
    await Promise.allSettled([...this.running]);
  }

  // Claims what is due now (one claim at a time; a kick during one makes another after it).
  kick(): void {
    if (this.stopped || !this.started) return;
    if (this.claiming) {
      this.again = true;
      return;
    }
    void this.claim();
  }

  private async claim(): Promise<void> {
    this.claiming = true;
    try {
      do {
        this.again = false;
        const free = this.concurrency - this.tries.size;
        if (free <= 0) return; // a try that ends kicks again
        let due: Call[];
        try {
          due = await this.o.db.request('claimDeliveries', { leaseMs: this.leaseMs, limit: free });
          if (this.dbDown) this.log.info('callback deliveries: the DB service answers again');
          this.dbDown = false;
        } catch (e) {
          if (!this.dbDown) this.log.warn({ err: errText(e) }, 'callback deliveries: cannot claim (retrying every poll)');
          this.dbDown = true;
          return;
        }
        this.more = due.length >= free;
        // Claimed during a stop: not delivered now; their leases run out and they are claimed again.
        if (this.stopped) return;
        for (const call of due) if (call.callback && !this.tries.has(call.callNum)) this.deliver(call);
      } while (this.again && !this.stopped);
    } finally {
      this.claiming = false;
    }
  }

  private deliver(call: Call): void {
    const ac = new AbortController();
    this.tries.set(call.callNum, ac);
    const p = this.tryOnce(call, ac.signal)
      .then((d) => (ac.signal.aborted ? undefined : this.record(call, d)))
      .catch((e: unknown) => this.log.warn({ callNum: call.callNum, err: errText(e) }, 'callback try not recorded (made again later)'))
      .finally(() => {
        this.tries.delete(call.callNum);
        this.running.delete(p);
        if (this.more) this.kick();
      });
    this.running.add(p);
  }

  // One POST of the call's record: the receiver's status, or why there was none.
  private async tryOnce(call: Call, signal: AbortSignal): Promise<Delivery> {
    const cb = call.callback!;
    const at = new Date().toISOString();
    try {
      const url = new URL(cb.url);
      const targets = await this.o.allow.targets(url); // checked again now: the name may resolve elsewhere today
      const status = await this.post(url, targets, JSON.stringify(call), deliveryHeaders(call, cb.deliveries.length + 1), signal);
      return { at, status };
    } catch (e) {
      return { at, error: errText(e).slice(0, 500) };
    }
  }

  private async record(call: Call, d: Delivery): Promise<void> {
    const cb = call.callback!;
    const tries = cb.deliveries.length + 1;
    const ok = d.status !== undefined && d.status >= 200 && d.status < 300;
    const endedAt = Date.parse(call.finishedAt ?? '') || Date.parse(cb.deliveries[0]?.at ?? '') || Date.parse(d.at);
    const next = ok ? undefined : nextTry(this.backoff, tries, endedAt, Date.now());
    const state = ok ? 'delivered' : next === undefined ? 'failed' : 'pending';
    await this.o.db.request('recordDelivery', {
      callNum: call.callNum,
      delivery: d,
      state,
      ...(next !== undefined ? { nextAt: new Date(next).toISOString() } : {}),
    });
    this.events.emit('delivery', { funcName: call.funcName, result: state === 'pending' ? 'retry' : state });
    const info = { callNum: call.callNum, to: new URL(cb.url).origin, try: tries, status: d.status, error: d.error };
    if (state === 'delivered') this.log.info(info, 'callback delivered');
    else if (state === 'failed') this.log.warn(info, `callback failed after ${tries} tries: given up`);
    else {
      this.log.info({ ...info, nextAt: new Date(next!).toISOString() }, 'callback try failed; trying again later');
      this.wake(next!);
    }
  }

  // A claim at `at` (the earliest wanted wins), so that a short backoff step is not rounded up to the poll.
  private wake(at: number): void {
    if (this.stopped || at >= this.wakeAt) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeAt = Infinity;
        this.kick();
      },
      Math.max(0, at - Date.now()),
    );
  }

  // POSTs body to url, connecting only to the checked addresses (no look-up of its own, no redirect
  // followed, no connection kept): the answer's status, once its first few KB are read or it ended.
  private post(url: URL, targets: Resolved[], body: string, headers: Record<string, string>, signal: AbortSignal): Promise<number> {
    const lookup: LookupFunction = (_host, opts, done) => {
      if (opts.all) done(null, targets);
      else done(null, targets[0]!.address, targets[0]!.family);
    };
    return new Promise<number>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? https : http).request({
        method: 'POST',
        hostname: hostOf(url),
        port: Number(url.port) || undefined,
        path: `${url.pathname}${url.search}`,
        headers: { ...headers, host: url.host, 'content-length': String(Buffer.byteLength(body)) },
        agent: false,
        lookup,
        signal,
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        const done = (): void => {
          clearTimeout(timer);
          resolve(status);
        };
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > RESPONSE_READ_MAX) {
            res.destroy();
            done();
          }
        });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done); // the status came: a body cut short does not change it
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(body);
    });
  }
}
