// Everything that moves a call through its life on the API side: accept (stored PENDING before we answer),
// hand it to the scheduler, settle it when its result comes, and rescue calls whose node died or that this
// API forgot when it restarted. Calls hears about nodes only through the broker's events.
// Retry rules. A call whose node died (or vanished) before reporting runs again if its function allows it
// (setting `retry`, default true), at most MAX_ATTEMPTS such times. A call whose run ended in ERROR or
// TIMEOUT runs again only if its function opted in (`retries`, common/retry.ts): the DB puts it back to
// PENDING with a `retryAt` (the broker's `retrying` event) and it is dispatched here at that time. A
// result that arrives twice is recorded once (the DB keeps the first final state).
import { bareName, namespaceOf } from '../common/namespace.js';
import type { Quotas } from './tenancy/quotas.js';
import { EventEmitter } from 'node:events';
import { errText, type Logger } from '../common/log.js';
import { isFinal, type Call, type CallOutcome, type FunctionMeta, type ScheduleRef, type WebRequest } from '../common/model.js';
import type { HttpRequest } from '../protocol/loader.js';
import type { DbClient } from '../db/client.js';
import type { BrokerEvents, Listen, QueuedCall } from './broker.js';
import { hasRuntime, type MetaCache, type MetaEntry } from './meta-cache.js';
import { Waiters } from './waiters.js';

export class NotFound extends Error {}

export const MAX_ATTEMPTS = 3;

// What observers (metrics, the dashboard's live view, batches) hear about calls, without touching their path.
export interface CallEvents {
  accepted: [call: Call];
  retrying: [info: { callNum: number; funcName?: string; retryAt: string; outcome: CallOutcome }]; // a run failed; another follows
  finished: [info: { callNum: number; funcName?: string; version?: number; node?: string; outcome: CallOutcome; latencyMs?: number }];
}

export interface CallsOptions {
  db: Pick<DbClient, 'request'>;
  log: Logger;
  meta: MetaCache;
  scheduler: { enqueue(call: QueuedCall): void; knows(callNum: number): boolean };
  links: Listen<BrokerEvents>; // the broker's events
  recoveryGraceMs?: number; // after start, time for nodes to re-register before recovery looks
  // A namespace's quotas (api/tenancy/quotas.ts): a call past its calls per minute is refused (429).
  quotas?: Pick<Quotas, 'admit' | 'of'>;
}

// A call the DB holds PENDING or RUNNING, as the retry rule reads it.
type OpenCall = Pick<Call, 'callNum' | 'funcName' | 'version' | 'params' | 'status' | 'attempts'>;

// The DB may not have a call's final state yet when its result has reached us (the node records it just
// after): what a client is shown is the call with that outcome.
export function withOutcome(call: Call, outcome: CallOutcome | null): Call {
  if (!outcome || isFinal(call.status)) return call;
  const { attempt, ...said } = outcome;
  return { ...call, ...said, attempts: Math.max(call.attempts, attempt ?? 0) };
}

export class Calls {
  readonly waiters = new Waiters();
  readonly events = new EventEmitter<CallEvents>();
  readonly meta: MetaCache;
  // Accepted here and not finished: for metrics and events, and the redundant flag for a rescue.
  private readonly open = new Map<number, { funcName: string; version: number; at: number; redundant?: boolean }>();
  private readonly db: Pick<DbClient, 'request'>;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private recoverTimer?: NodeJS.Timeout;
  private readonly retryTimers = new Map<number, NodeJS.Timeout>(); // calls waiting for their retryAt
  private stopped = false;

  // Outcomes that reached this API before their node recorded them: a client reading the call in between
  // sees it ended, as the caller that was answered did.
  private readonly unrecorded = new Map<number, CallOutcome>();

  // A call as the DB holds it, with an outcome this API already knows applied.
  known(call: Call): Call {
    return withOutcome(call, this.unrecorded.get(call.callNum) ?? null);
  }

  constructor(private readonly o: CallsOptions) {
    this.db = o.db;
    this.log = o.log;
    this.meta = o.meta;
    o.links.on('result', ({ callNum, node, outcome }) => {
      this.unrecorded.set(callNum, outcome);
      // Bounded whatever happens to a node's recording; the oldest go first.
      if (this.unrecorded.size > 50_000) this.unrecorded.delete(this.unrecorded.keys().next().value!);
      this.settle(callNum, outcome, node);
    });
    // A waiter that came after the result (it read the call from the DB before it was recorded) wakes now.
    o.links.on('recorded', ({ callNum, outcome }) => {
      this.unrecorded.delete(callNum);
      this.waiters.settle(callNum, outcome);
    });
    o.links.on('nodeLost', ({ node, calls, why }) => void this.onNodeLost(node, calls, why));
    o.links.on('givenBack', ({ node, calls }) => void this.onGivenBack(node, calls));
    o.links.on('retrying', ({ callNum, retryAt, outcome }) => {
      this.events.emit('retrying', { callNum, funcName: this.open.get(callNum)?.funcName, retryAt, outcome });
      this.retryAt(callNum, retryAt);
    });
  }

  // Dispatches a call that waits for its retry when its time comes, if it still waits then (it may have
  // been cancelled, or another API dispatched it).
  private retryAt(callNum: number, at: string): void {
    if (this.retryTimers.has(callNum) || this.stopped) return;
    const t = setTimeout(
      () => {
        this.retryTimers.delete(callNum);
        void this.db
          .request('getCall', { callNum })
          .then((call) => {
            if (!call || call.status !== 'PENDING' || this.o.scheduler.knows(callNum)) return;
            this.log.info({ callNum, attempt: call.attempts + 1 }, 'call retried');
            return this.dispatch(call);
          })
          .catch((e: unknown) => {
            // The DB service is down: recovery finds the call PENDING and dispatches it.
            this.log.warn({ callNum, err: errText(e) }, 'retry not dispatched yet');
          });
      },
      Math.max(0, Date.parse(at) - Date.now()),
    );
    this.retryTimers.set(callNum, t);
  }

  async resolveFunction(funcName: string, version?: number): Promise<MetaEntry> {
    const hit = await this.meta.get(funcName, version);
    const name = bareName(funcName); // as the caller knows it
    if (!hit) throw new NotFound(version ? `function ${name} has no version ${version}` : `function ${name} not found`);
    return hit;
  }

  async invoke(
    funcName: string,
    params: unknown,
    version?: number,
    opts: Parameters<Calls['invokeResolved']>[2] = {},
  ): Promise<{ call: Call; fn: FunctionMeta; replayed: boolean }> {
    const def = await this.resolveFunction(funcName, version);
    return this.invokeResolved(def, params, opts);
  }

  // As invoke(), for a caller that already resolved the function (the web path checks its settings first).
  // With an idempotency key (api/idempotency.ts) already used for the same request, the DB answers the call
  // that key made (`replayed`): it was dispatched then (or has ended), so it is not dispatched again.
  async invokeResolved(
    def: MetaEntry,
    params: unknown,
    opts: {
      redundant?: boolean;
      http?: HttpRequest;
      request?: WebRequest;
      idempotency?: { key: string; hash: string; ttlS?: number };
      schedule?: ScheduleRef; // api/schedules.ts: the schedule and tick that start it
      callbackUrl?: string; // checked against the allow-list already (api/callbacks)
      replayOf?: number; // a dead letter this call replays
      by?: string; // the key that makes it
    } = {},
  ): Promise<{ call: Call; fn: FunctionMeta; replayed: boolean }> {
    const { fn } = def;
    const funcName = fn.functionName;
    const { request, idempotency, schedule, callbackUrl, replayOf, by } = opts;
    await this.o.quotas?.admit(namespaceOf(funcName));
    const created = await this.db.request('createCall', {
      funcName,
      version: fn.version,
      params: params ?? {},
      request,
      idempotency,
      ...(schedule ? { schedule } : {}),
      ...(callbackUrl ? { callback: { url: callbackUrl } } : {}),
      ...(replayOf ? { replayOf } : {}),
      ...(by ? { by } : {}),
    });
    const { replayed, ...call } = created;
    if (replayed) return { call, fn, replayed: true };
    this.open.set(call.callNum, { funcName, version: fn.version, at: Date.now(), redundant: opts.redundant });
    this.events.emit('accepted', call);
    if (!hasRuntime(def)) await this.fail(call.callNum, `runtime ${fn.runtimeName} no longer exists`);
    else
      this.o.scheduler.enqueue({ callNum: call.callNum, funcName, params: call.params, def, redundant: opts.redundant, http: opts.http });
    return { call, fn, replayed: false };
  }

  // A call taken from the DB (rescued or recovered) goes back to the scheduler with today's definition.
  private async dispatch(call: OpenCall): Promise<void> {
    await this.o.quotas?.of(namespaceOf(call.funcName)); // its running limit known before it is queued
    const def = await this.meta.get(call.funcName, call.version);
    if (!def) return this.fail(call.callNum, `function ${call.funcName}@${call.version} no longer exists`);
    if (!hasRuntime(def)) return this.fail(call.callNum, `runtime ${def.fn.runtimeName} no longer exists`);
    const redundant = this.open.get(call.callNum)?.redundant;
    const attempt = call.attempts + 1; // `attempts` counts the runs that started
    this.o.scheduler.enqueue({ callNum: call.callNum, funcName: call.funcName, params: call.params, def, redundant, attempt });
  }

  private async fail(callNum: number, error: string): Promise<void> {
    const outcome: CallOutcome = { status: 'ERROR', result: '', error };
    const { call, changed } = await this.db.request('finishCall', { callNum, outcome });
    // Someone else's final state came first: that is the call's end.
    if (!changed && call && isFinal(call.status)) {
      return this.settle(callNum, {
        status: call.status as CallOutcome['status'],
        result: call.result,
        error: call.error,
        logs: call.logs,
      });
    }
    this.settle(callNum, outcome);
  }

  private async onNodeLost(nodeId: string, callNums: number[], why: string): Promise<void> {
    for (const callNum of callNums) {
      await this.rescue(callNum, `node ${nodeId} lost (${why})`).catch((e) =>
        this.log.error({ callNum, err: errText(e) }, 'could not rescue call'),
      );
    }
  }

  // Calls a draining node gave back before running them: PENDING again (the run it was counted for never
  // started, so even a retry=false function's call goes), to another node.
  private async onGivenBack(nodeId: string, callNums: number[]): Promise<void> {
    for (const callNum of callNums) {
      try {
        const { call } = await this.db.request('requeueCall', { callNum, unstartedOn: nodeId });
        if (!call || isFinal(call.status)) continue;
        this.log.info({ callNum, node: nodeId }, 'call given back by a draining node; dispatched again');
        await this.dispatch(call);
      } catch (e) {
        this.log.error({ callNum, err: errText(e) }, 'could not dispatch a call given back'); // recovery will
      }
    }
  }

  // A call whose node is gone: run it again when allowed, else end it with an error.
  private async rescue(callNum: number, why: string): Promise<void> {
    const call = await this.db.request('getCall', { callNum });
    if (!call) return;
    if (isFinal(call.status)) {
      this.settle(callNum, { status: call.status as CallOutcome['status'], result: call.result, error: call.error, logs: call.logs });
      return;
    }
    if (call.status === 'RUNNING') {
      const def = await this.meta.get(call.funcName, call.version);
      if (def && !def.fn.settings.retry) {
        return this.fail(callNum, `${why} while running the call; not retried (the function has retry=false)`);
      }
    }
    // Runs that failed and were retried by the function's own `retries` do not count here.
    if (call.attempts - (call.history?.length ?? 0) >= MAX_ATTEMPTS) {
      return this.fail(callNum, `${why}; gave up after ${call.attempts} attempts`);
    }
    if (call.status === 'RUNNING') await this.db.request('requeueCall', { callNum });
    this.log.info({ callNum, why }, 'call redispatched');
    await this.dispatch(call);
  }

  // Calls the DB holds unfinished that no node and no queue here knows of: after an API restart, a lost
  // dispatch, or a node that vanished while we were down.
  async recover(): Promise<number> {
    if (Date.now() - this.startedAt < (this.o.recoveryGraceMs ?? 4000)) return 0; // let nodes re-register and report what they hold
    let n = 0;
    for (const call of await this.db.request('listUnfinished', {})) {
      if (this.o.scheduler.knows(call.callNum) || this.retryTimers.has(call.callNum)) continue;
      if (call.status === 'PENDING' && call.retryAt) {
        this.retryAt(call.callNum, call.retryAt); // its retry is due then, whoever was to dispatch it
        continue;
      }
      if (Date.now() - Date.parse(call.createdAt) < 2000) continue; // being accepted right now
      n++;
      await this.rescue(
        call.callNum,
        call.status === 'RUNNING' ? `node ${call.node ?? '?'} no longer holds it` : 'it was queued when the API stopped',
      );
    }
    return n;
  }

  startRecovery(everyMs = 3000): void {
    const run = (): void => {
      this.recover()
        .catch((e) => this.log.warn({ err: errText(e) }, 'recovery pass failed'))
        .finally(() => {
          if (!this.stopped) this.recoverTimer = setTimeout(run, everyMs);
        });
    };
    this.recoverTimer = setTimeout(run, everyMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.recoverTimer);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
  }

  // A call reached its final state (also a cancelled one): wake its waiters and tell the observers.
  settle(callNum: number, outcome: CallOutcome, node?: string): void {
    this.waiters.settle(callNum, outcome);
    const o = this.open.get(callNum);
    this.open.delete(callNum);
    this.events.emit('finished', {
      callNum,
      funcName: o?.funcName,
      version: o?.version,
      node,
      outcome,
      latencyMs: o ? Date.now() - o.at : undefined,
    });
  }
}
