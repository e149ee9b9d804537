// Everything that moves a call through its life on the API side: accept (stored PENDING before we answer),
// dispatch, finish, and recovery of calls whose node died or that this API forgot when it restarted.
// Retry rule: a call runs again only when its node died (or vanished) before reporting, and only if its
// function allows retries (setting `retry`, default true). A result that arrives twice is recorded once.
import { EventEmitter } from 'node:events';
import { errText, type Logger } from '../common/log.js';
import { isFinal, type Call, type CallOutcome, type FunctionMeta, type Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { Broker } from './broker.js';
import { MetaCache } from './meta-cache.js';
import { Waiters } from './waiters.js';

export class NotFound extends Error {}

export const MAX_ATTEMPTS = 3;

// What observers (metrics, the dashboard's live view) hear about calls, without touching their path.
export interface CallEvents {
  accepted: [call: Call];
  finished: [info: { callNum: number; funcName?: string; version?: number; node?: string; outcome: CallOutcome; latencyMs?: number }];
}

export class Calls {
  readonly waiters = new Waiters();
  readonly events = new EventEmitter<CallEvents>();
  private readonly open = new Map<number, { funcName: string; version: number; at: number }>(); // accepted here, not finished
  private broker!: Broker;
  private readonly startedAt = Date.now();
  private recoverTimer?: NodeJS.Timeout;

  readonly meta: MetaCache;

  constructor(
    private readonly db: DbClient,
    private readonly log: Logger,
  ) {
    this.meta = new MetaCache(db);
  }

  attach(broker: Broker): void {
    this.broker = broker;
  }

  async resolveFunction(funcName: string, version?: number): Promise<{ fn: FunctionMeta; runtime: Runtime | null }> {
    const hit = await this.meta.get(funcName, version);
    if (!hit) throw new NotFound(version ? `function ${funcName} has no version ${version}` : `function ${funcName} not found`);
    return hit;
  }

  async invoke(
    funcName: string,
    params: unknown,
    version?: number,
    opts: { redundant?: boolean } = {},
  ): Promise<{ call: Call; fn: FunctionMeta }> {
    const { fn, runtime } = await this.resolveFunction(funcName, version);
    const call = await this.db.request('createCall', { funcName, version: fn.version, params: params ?? {} });
    this.open.set(call.callNum, { funcName, version: fn.version, at: Date.now() });
    this.events.emit('accepted', call);
    if (!runtime) await this.fail(call.callNum, `runtime ${fn.runtimeName} no longer exists`);
    else
      this.broker.scheduler.enqueue({
        callNum: call.callNum,
        funcName: call.funcName,
        params: call.params,
        fn,
        runtime,
        redundant: opts.redundant,
      });
    return { call, fn };
  }

  private async dispatch(call: Call): Promise<void> {
    const hit = await this.meta.get(call.funcName, call.version);
    if (!hit) return this.fail(call.callNum, `function ${call.funcName}@${call.version} no longer exists`);
    if (!hit.runtime) return this.fail(call.callNum, `runtime ${hit.fn.runtimeName} no longer exists`);
    this.broker.scheduler.enqueue({
      callNum: call.callNum,
      funcName: call.funcName,
      params: call.params,
      fn: hit.fn,
      runtime: hit.runtime,
    });
  }

  private async fail(callNum: number, error: string): Promise<void> {
    const outcome: CallOutcome = { status: 'ERROR', result: '', error };
    await this.db.request('finishCall', { callNum, outcome });
    this.settle(callNum, outcome);
  }

  onResult(callNum: number, outcome: CallOutcome, nodeId: string, recorded: boolean): void {
    this.settle(callNum, outcome, nodeId);
    if (!recorded) {
      // The node could not reach the DB: record it from here.
      this.db
        .request('finishCall', { callNum, outcome })
        .catch((e) => this.log.error({ callNum, err: errText(e) }, 'result could not be recorded'));
    }
  }

  async onNodeLost(nodeId: string, callNums: number[]): Promise<void> {
    for (const callNum of callNums) {
      await this.rescue(callNum, `node ${nodeId} died`).catch((e) => this.log.error({ callNum, err: errText(e) }, 'could not rescue call'));
    }
  }

  // A call whose node is gone: run it again when allowed, else end it with an error.
  private async rescue(callNum: number, why: string): Promise<void> {
    const call = await this.db.request('getCall', { callNum });
    if (!call) return;
    if (isFinal(call.status)) {
      this.settle(callNum, { status: call.status as CallOutcome['status'], result: call.result, error: call.error });
      return;
    }
    const fn = await this.db.request('getFunction', { name: call.funcName, version: call.version });
    if (call.status === 'RUNNING' && fn && !fn.settings.retry) {
      return this.fail(callNum, `${why} while running the call; not retried (the function has retry=false)`);
    }
    if (call.attempts >= MAX_ATTEMPTS) {
      return this.fail(callNum, `${why}; gave up after ${call.attempts} attempts`);
    }
    if (call.status === 'RUNNING') await this.db.request('requeueCall', { callNum });
    this.log.info({ callNum, why }, 'call redispatched');
    await this.dispatch(call);
  }

  // Calls the DB holds unfinished that no node and no queue here knows of: after an API restart, a lost
  // dispatch, or a node that vanished while we were down.
  async recover(): Promise<number> {
    const graceMs = 4000;
    if (Date.now() - this.startedAt < graceMs) return 0; // let nodes re-register and report what they hold
    let n = 0;
    for (const call of await this.db.request('listUnfinished', {})) {
      if (this.broker.scheduler.knows(call.callNum)) continue;
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
          this.recoverTimer = setTimeout(run, everyMs);
        });
    };
    this.recoverTimer = setTimeout(run, everyMs);
  }

  stop(): void {
    clearTimeout(this.recoverTimer);
  }

  // A call reached its final state: wake its waiters and tell the observers.
  private settle(callNum: number, outcome: CallOutcome, node?: string): void {
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
