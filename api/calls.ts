// Everything that moves a call through its life on the API side: accept it (stored PENDING before we
// answer), hand it to the scheduler, record what its node says of it, and rescue calls whose node died or
// that this API forgot when it restarted. Calls hears about nodes only through the broker's events, and
// changes a call only through its table in the DB service (db/call-life.ts: started, outcome, nodeLost,
// givenBack, cancel, fail), which takes each word once. Waiters, GET /call/N, the event stream and
// callbacks all read the record that table keeps: an outcome wakes a waiter only once it is recorded.
// Retry rules (the table's): a run lost with its node runs again if its function allows it (setting
// `retry`, default true), at most MAX_NODE_LOSSES such runs; a run that ended in ERROR or TIMEOUT runs again
// only if its function opted in (`retries`, common/retry.ts): the record waits PENDING until `retryAt`, and
// the call is dispatched here at that time.
// Several APIs on one store (api/leases.ts): each call names the API that dispatches it, and only that API
// dispatches it, rescues it or waits for its retry; an API whose lease lapsed has its calls adopted by
// another, which recovers them as on its own start. A call that another API finished is found in the
// store by a short poll of the calls someone waits for here.
import { bareName, namespaceOf } from '../common/namespace.js';
import type { Quotas } from './tenancy/quotas.js';
import { EventEmitter } from 'node:events';
import { errText, type Logger } from '../common/log.js';
import { NotFoundError } from '../common/errors.js';
import { isFinal, type Call, type CallOutcome, type FunctionMeta, type ScheduleRef, type WebRequest } from '../common/model.js';
import type { HttpRequest } from '../protocol/loader.js';
import type { DbClient } from '../db/client.js';
import type { CallChange, CallIntent, CreatedCall } from '../protocol/db.js';
import type { BrokerEvents, Listen, NodeControl, NodeOutcome, QueuedCall } from './broker.js';
import { recordedOutcome, type Ended } from './ended.js';
import { hasRuntime, type MetaCache, type MetaEntry } from './meta-cache.js';
import { Waiters } from './waiters.js';

export { MAX_NODE_LOSSES as MAX_ATTEMPTS } from '../db/call-life.js';

// What observers (metrics, the dashboard's live view, batches) hear about calls, without touching their path.
export interface CallEvents {
  accepted: [call: Call];
  retrying: [info: { callNum: number; funcName?: string; retryAt: string; outcome: CallOutcome }]; // a run failed; another follows
  finished: [info: { callNum: number; funcName?: string; version?: number; node?: string; outcome: CallOutcome; latencyMs?: number }];
}

export interface CallsOptions {
  // requestPlanned: with the DB service in this process, a call is dispatched, and its waiters woken, as
  // soon as its write went to LevelDB (db/server.ts); reads wait for that write, so every answer agrees.
  db: Pick<DbClient, 'request'> & Partial<Pick<DbClient, 'requestPlanned'>>;
  log: Logger;
  meta: MetaCache;
  scheduler: { enqueue(call: QueuedCall): void; knows(callNum: number): boolean; clear?(): number; drop?(callNum: number): boolean };
  links: Listen<BrokerEvents>; // the broker's events
  // ack: tells a node its outcome of a call is recorded; holder and tell stop a run whose call could not be
  // written after it was dispatched.
  nodes: { ack(node: string, callNum: number): void } & Partial<NodeControl & { holder(callNum: number): string | undefined }>;
  recoveryGraceMs?: number; // after start, time for nodes to re-register before recovery looks
  // A namespace's quotas (api/tenancy/quotas.ts): a call past its calls per minute is refused (429).
  quotas?: Pick<Quotas, 'admit' | 'of'>;
  // Several APIs on one store: this API's id while it shares the store (undefined: alone, as on LevelDB),
  // and whether a node says it holds a call (another API may have sent it there).
  owner?: { readonly current: string | undefined };
  reported?(callNum: number): boolean;
  watchMs?: number; // how often calls waited for here are looked up in the store (shared store only)
  // How long a node's outcome that could not be recorded keeps its call from recovery: the node says it
  // again every few seconds until it is recorded (default 30 s; a node that died meanwhile is recovered after).
  unrecordedMs?: number;
}

// A call the DB holds PENDING or RUNNING, as the retry rule reads it.
type OpenCall = Pick<Call, 'callNum' | 'funcName' | 'version' | 'params' | 'status' | 'attempts'>;

const UNRECORDED_MS = 30_000;
const WATCH_MS = 500;
const WATCH_AFTER_MS = 1_000; // a call accepted here is looked up once open this long (a waited-for one at once)
const WATCH_MAX = 1000; // calls looked up at once; more take turns

export class Calls {
  readonly waiters = new Waiters();
  readonly events = new EventEmitter<CallEvents>();
  readonly meta: MetaCache;
  // Accepted here and not finished: for metrics and events, and the redundant flag for a rescue.
  private readonly open = new Map<number, { funcName: string; version: number; at: number; redundant?: boolean }>();
  private readonly db: CallsOptions['db'];
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private recoverTimer?: NodeJS.Timeout;
  private watchTimer?: NodeJS.Timeout;
  private watchRound = 0;
  private readonly seen = new Map<number, number>(); // shared store: RUNNING calls of ours no node reported, since when
  private readonly retryTimers = new Map<number, NodeJS.Timeout>(); // calls waiting for their retryAt
  private readonly recording = new Set<number>(); // a node's outcome of it is being recorded
  private readonly unrecorded = new Map<number, number>(); // a node's outcome of it could not be recorded, since when
  private stopped = false;

  constructor(private readonly o: CallsOptions) {
    this.db = o.db;
    this.log = o.log;
    this.meta = o.meta;
    o.links.on('started', ({ callNum, node, life, attempt }) => void this.onStarted(callNum, node, life, attempt));
    o.links.on('outcome', (r) => void this.onOutcome(r));
    o.links.on('nodeLost', ({ node, life, calls, why }) => void this.onNodeLost(node, life, calls, why));
    o.links.on('givenBack', ({ node, calls }) => void this.onGivenBack(node, calls));
  }

  // A node, a queue or an outcome being recorded knows it: recovery leaves it alone.
  knows(callNum: number): boolean {
    if (this.recording.has(callNum) || this.retryTimers.has(callNum) || this.o.scheduler.knows(callNum)) return true;
    // Its outcome is on its way again: recovering it now would run it a second time.
    if (Date.now() - (this.unrecorded.get(callNum) ?? -Infinity) < (this.o.unrecordedMs ?? UNRECORDED_MS)) return true;
    return this.shared && (this.o.reported?.(callNum) ?? false);
  }

  // The store is shared with other APIs (api/leases.ts).
  private get shared(): boolean {
    return this.o.owner?.current !== undefined;
  }

  // Whether this API dispatches the call: always when alone; on a shared store, when the call names it.
  private mine(call: Pick<Call, 'api'>): boolean {
    const id = this.o.owner?.current;
    return id === undefined || call.api === id;
  }

  private remember(callNum: number): void {
    const limit = this.o.unrecordedMs ?? UNRECORDED_MS;
    if (this.unrecorded.size >= 10_000) for (const [n, at] of this.unrecorded) if (Date.now() - at >= limit) this.unrecorded.delete(n);
    if (!this.unrecorded.has(callNum)) this.unrecorded.set(callNum, Date.now());
  }

  private intent(callNum: number, intent: CallIntent): Promise<CallChange> {
    return this.db.request('callIntent', { callNum, intent });
  }

  private async onStarted(callNum: number, node: string, life: string, attempt: number): Promise<void> {
    try {
      const r = await this.intent(callNum, { kind: 'started', node, life, attempt });
      // Cancelled meanwhile, or a run left behind: its node stops it (its outcome will be refused).
      if (!r.changed && r.why !== 'said twice') this.log.debug({ callNum, node, why: r.why }, 'start refused');
    } catch (e) {
      // Its outcome counts the run all the same (the table counts a run whose start it did not hear).
      this.log.warn({ callNum, err: errText(e) }, 'start of a call not recorded');
    }
  }

  // A node's outcome of a call: recorded through the call's table, then the node is told (it forgets the
  // outcome) and, once the call is final, its waiters wake with the record. Not recorded (the DB service is
  // away): the node says it again in a few seconds.
  private async onOutcome(r: NodeOutcome): Promise<void> {
    const { callNum, node, life, outcome, ran, attempt, holder } = r;
    this.recording.add(callNum);
    const intent: CallIntent = { kind: 'outcome', outcome, ran, node, life, holder, ...(attempt ? { attempt } : {}) };
    const ended = (call: Call): Ended => ({
      call,
      outcome: { ...recordedOutcome(call), ...(outcome.response ? { response: outcome.response } : {}) },
    });
    // Its waiters wake once the final record is on its way to LevelDB; the node hears it was recorded, and
    // observers that it finished, once it was written.
    const early = (c: CallChange): void => {
      if (c.changed && c.call && isFinal(c.call.status)) this.waiters.settle(callNum, ended(c.call));
    };
    let change: CallChange;
    try {
      change = this.db.requestPlanned
        ? await this.db.requestPlanned('callIntent', { callNum, intent }, early)
        : await this.intent(callNum, intent);
    } catch (e) {
      this.recording.delete(callNum);
      this.remember(callNum);
      this.log.warn({ callNum, node, err: errText(e) }, 'outcome not recorded yet; the node says it again');
      return;
    }
    this.recording.delete(callNum);
    this.unrecorded.delete(callNum);
    this.o.nodes.ack(node, callNum);
    const call = change.call;
    if (!call) return;
    if (!change.changed) {
      // A node speaking for a call it does not run is worth an operator's eye; a repeat is routine.
      if (!holder) this.log.warn({ callNum, node, why: change.why }, 'outcome from a node that does not run the call: refused');
      else this.log.debug({ callNum, node, why: change.why }, 'outcome not taken');
      if (isFinal(call.status)) this.waiters.settle(callNum, { call, outcome: recordedOutcome(call) }); // a waiter who came late
      return;
    }
    if (call.status === 'PENDING' && call.retryAt) {
      this.events.emit('retrying', { callNum, funcName: this.open.get(callNum)?.funcName, retryAt: call.retryAt, outcome });
      if (this.mine(call)) this.retryAt(callNum, call.retryAt); // else its own API waits for it
      return;
    }
    if (isFinal(call.status)) this.settle(callNum, ended(call), node);
  }

  // Dispatches a call that waits for its retry when its time comes, if it still waits then (it may have
  // been cancelled, or another API dispatched it).
  private retryAt(callNum: number, at: string): void {
    if (this.retryTimers.has(callNum) || this.stopped) return;
    const t = setTimeout(
      () => {
        void this.db
          .request('getCall', { callNum })
          .then((call) => {
            this.retryTimers.delete(callNum);
            if (!call || call.status !== 'PENDING' || !this.mine(call) || this.o.scheduler.knows(callNum)) return;
            this.log.info({ callNum, attempt: call.attempts + 1 }, 'call retried');
            return this.dispatch(call);
          })
          .catch((e: unknown) => {
            this.retryTimers.delete(callNum);
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
    if (!hit) throw new NotFoundError(version ? `function ${name} has no version ${version}` : `function ${name} not found`);
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
      // Told the call's number just before it is queued: a streamed answer's pieces may come from then on,
      // which can be before this returns.
      listen?: (callNum: number) => void;
    } = {},
  ): Promise<{ call: Call; fn: FunctionMeta; replayed: boolean }> {
    const { fn } = def;
    const funcName = fn.functionName;
    const { request, idempotency, schedule, callbackUrl, replayOf, by } = opts;
    await this.o.quotas?.admit(namespaceOf(funcName));
    const api = this.o.owner?.current;
    const content = {
      funcName,
      version: fn.version,
      params: params ?? {},
      request,
      idempotency,
      ...(schedule ? { schedule } : {}),
      ...(callbackUrl ? { callback: { url: callbackUrl } } : {}),
      ...(replayOf ? { replayOf } : {}),
      ...(by ? { by } : {}),
      ...(api ? { api } : {}),
    };
    // Queued for a node once its record is decided: while LevelDB writes it (in-process DB service), or
    // once written. A record that could not be written stops the run it began (its caller gets the error).
    let queued: number | undefined;
    const opened = (callNum: number): void =>
      void this.open.set(callNum, { funcName, version: fn.version, at: Date.now(), redundant: opts.redundant });
    const queue = (c: CreatedCall): void => {
      if (c.replayed || !hasRuntime(def)) return;
      queued = c.callNum;
      opened(c.callNum);
      opts.listen?.(c.callNum);
      this.o.scheduler.enqueue({ callNum: c.callNum, funcName, params: c.params, def, redundant: opts.redundant, http: opts.http });
    };
    let created: CreatedCall;
    try {
      created = this.db.requestPlanned
        ? await this.db.requestPlanned('createCall', content, queue)
        : await this.db.request('createCall', content);
    } catch (e) {
      if (queued !== undefined) this.unqueue(queued);
      throw e;
    }
    const { replayed, ...call } = created;
    if (replayed) return { call, fn, replayed: true };
    if (queued === undefined) {
      if (hasRuntime(def)) queue(created);
      else opened(call.callNum);
    }
    this.events.emit('accepted', call);
    if (!hasRuntime(def)) await this.fail(call.callNum, `runtime ${fn.runtimeName} no longer exists`);
    return { call, fn, replayed: false };
  }

  // A call queued before its record was written, whose record could not be written: it leaves the queue,
  // or its node stops it (the node's outcome then finds no call, and is dropped).
  private unqueue(callNum: number): void {
    this.open.delete(callNum);
    this.o.scheduler.drop?.(callNum);
    const node = this.o.nodes.holder?.(callNum);
    if (node) this.o.nodes.tell?.(node, { type: 'cancel', callNum });
    this.log.warn({ callNum }, 'the record of a call could not be written: its run was stopped');
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

  // The platform ends a call it cannot run (its function or runtime is gone).
  private async fail(callNum: number, error: string): Promise<void> {
    const { call } = await this.intent(callNum, { kind: 'fail', error });
    if (call && isFinal(call.status)) this.settle(callNum, { call, outcome: recordedOutcome(call) });
  }

  // Calls whose node is gone with that life: the table says whether each runs again (it goes back to the
  // queue) or ends (its waiters wake).
  private async onNodeLost(node: string, life: string, callNums: number[], why: string): Promise<void> {
    for (const callNum of callNums) {
      await this.lost(callNum, { kind: 'nodeLost', node, life, why: `node ${node} lost (${why})` }).catch((e) =>
        this.log.error({ callNum, err: errText(e) }, 'could not rescue call'),
      );
    }
  }

  private async lost(callNum: number, intent: Extract<CallIntent, { kind: 'nodeLost' | 'givenBack' }>): Promise<void> {
    const { call, changed } = await this.intent(callNum, intent);
    if (!call) return;
    if (isFinal(call.status)) {
      if (changed) this.settle(callNum, { call, outcome: recordedOutcome(call) });
      return;
    }
    // PENDING: it runs again (a run lost with its node), or it never began where it was sent; by the API
    // that dispatches it (another API hears of a node's loss too).
    if (call.status === 'PENDING' && !call.retryAt && !this.knows(callNum) && this.mine(call)) {
      this.log.info({ callNum, why: intent.kind === 'nodeLost' ? intent.why : `given back by ${intent.node}` }, 'call dispatched again');
      await this.dispatch(call);
    }
  }

  // Calls a draining node gave back before running them: to another node (they never began, so even a
  // retry=false function's call goes, and no attempt is counted).
  private async onGivenBack(node: string, callNums: number[]): Promise<void> {
    for (const callNum of callNums) {
      await this.lost(callNum, { kind: 'givenBack', node }).catch((e) =>
        this.log.error({ callNum, err: errText(e) }, 'could not dispatch a call given back'),
      );
    }
  }

  // Calls the DB holds unfinished that no node and no queue here knows of: after an API restart, a lost
  // dispatch, or a node that vanished while we were down.
  async recover(): Promise<number> {
    if (Date.now() - this.startedAt < (this.o.recoveryGraceMs ?? 4000)) return 0; // let nodes re-register and report what they hold
    let n = 0;
    const grace = this.o.recoveryGraceMs ?? 4000;
    const seen = new Map<number, number>();
    for (const call of await this.db.request('listUnfinished', {})) {
      if (this.knows(call.callNum) || !this.mine(call)) continue;
      if (call.status === 'RUNNING' && this.shared) {
        // Adopted from another API, or sent by it to a node that has not told us yet: its node has the
        // grace to report it here (nodes link to every API) before it counts as lost.
        const since = this.seen.get(call.callNum) ?? Date.now();
        seen.set(call.callNum, since);
        if (Date.now() - since < grace) continue;
      }
      if (call.status === 'PENDING' && call.retryAt) {
        this.retryAt(call.callNum, call.retryAt); // its retry is due then, whoever was to dispatch it
        continue;
      }
      if (Date.now() - Date.parse(call.createdAt) < 2000) continue; // being accepted right now
      n++;
      if (call.status === 'RUNNING') {
        const node = call.node ?? '?';
        await this.lost(call.callNum, {
          kind: 'nodeLost',
          node,
          ...(call.life ? { life: call.life } : {}),
          why: `node ${node} no longer holds it`,
        });
      } else {
        this.log.info({ callNum: call.callNum }, 'call dispatched again (it was queued when the API stopped)');
        await this.dispatch(call);
      }
    }
    if (this.shared) {
      this.seen.clear();
      for (const [k, v] of seen) this.seen.set(k, v);
    }
    return n;
  }

  // Calls adopted from an API whose lease lapsed (api/leases.ts): recovered as on this API's own start.
  // PENDING ones are dispatched now; RUNNING ones wait for their node to report them within the grace.
  async adopt(calls: Call[]): Promise<void> {
    const now = Date.now();
    for (const call of calls) {
      if (this.knows(call.callNum)) continue;
      if (call.status === 'RUNNING') this.seen.set(call.callNum, now);
      else if (call.retryAt) this.retryAt(call.callNum, call.retryAt);
      else
        await this.dispatch(call).catch((e) =>
          this.log.error({ callNum: call.callNum, err: errText(e) }, 'could not dispatch an adopted call'),
        );
    }
  }

  // This API's lease lapsed and its calls went to another API: what waits in its queue is not its own to
  // dispatch any more (recovery finds again those that are).
  leaseLost(): void {
    const dropped = this.o.scheduler.clear?.() ?? 0;
    if (dropped > 0) this.log.warn({ dropped }, 'queued calls left to the API that took them over');
  }

  // Shared store: the calls someone waits for here (a blocking invoke, GET /call/N?wait, the event stream
  // of calls accepted here) may end through another API; the store's record answers them.
  startWatch(): void {
    const run = (): void => {
      this.watch()
        .catch((e) => this.log.debug({ err: errText(e) }, 'watch pass failed'))
        .finally(() => {
          if (!this.stopped) this.watchTimer = setTimeout(run, this.o.watchMs ?? WATCH_MS);
        });
    };
    this.watchTimer = setTimeout(run, this.o.watchMs ?? WATCH_MS);
  }

  private async watch(): Promise<void> {
    if (!this.shared) return;
    const before = Date.now() - WATCH_AFTER_MS;
    const nums = new Set(this.waiters.callNums());
    for (const [callNum, o] of this.open) if (o.at < before) nums.add(callNum);
    if (nums.size === 0) return;
    const all = [...nums];
    const from = (this.watchRound++ * WATCH_MAX) % all.length;
    const some = [...all.slice(from), ...all.slice(0, from)].slice(0, WATCH_MAX);
    for (const call of await this.db.request('getCalls', { callNums: some })) {
      if (!isFinal(call.status) || !(this.waiters.has(call.callNum) || this.open.has(call.callNum))) continue;
      this.o.scheduler.drop?.(call.callNum); // cancelled through another API while it waited here
      this.settle(call.callNum, { call, outcome: recordedOutcome(call) });
    }
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
    clearTimeout(this.watchTimer);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    this.retryTimers.clear();
  }

  // A call reached its final state (also a cancelled one), as recorded: wake its waiters and tell the observers.
  settle(callNum: number, ended: Ended, node?: string): void {
    this.waiters.settle(callNum, ended);
    const o = this.open.get(callNum);
    this.open.delete(callNum);
    this.events.emit('finished', {
      callNum,
      funcName: o?.funcName ?? ended.call.funcName,
      version: o?.version ?? ended.call.version,
      node: node ?? ended.call.node,
      outcome: ended.outcome,
      latencyMs: o ? Date.now() - o.at : undefined,
    });
  }
}
