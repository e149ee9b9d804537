// The scheduler's front door for calls of versions with a build (common/build.ts): a call of a version that
// is still building waits here, in the API, holding no node's slot, and goes to the scheduler once the build
// is ready; a call of a version whose build failed ends at once in ERROR with what failed (the function's
// fault: its dependencies cannot be installed as it stands). Every other call passes straight through.
import { callGate } from '../common/build.js';
import { failure } from '../common/faults.js';
import { errText, type Logger } from '../common/log.js';
import { isFinal, type FunctionMeta } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { QueuedCall } from './broker.js';
import { recordedOutcome, type Ended } from './ended.js';
import { hasRuntime, type MetaCache } from './meta-cache.js';

export interface CallQueue {
  enqueue(call: QueuedCall): void;
  knows(callNum: number): boolean;
}

export interface BuildGateOptions {
  queue: CallQueue;
  builds: { follow(fn: FunctionMeta): Promise<FunctionMeta | null> };
  meta: Pick<MetaCache, 'get'>;
  db: Pick<DbClient, 'request'>;
  settle(callNum: number, ended: Ended): void; // the call ended here: its waiters wake
  log: Logger;
}

export class BuildGate implements CallQueue {
  private readonly held = new Map<number, QueuedCall>();

  constructor(private readonly o: BuildGateOptions) {}

  enqueue(call: QueuedCall): void {
    const gate = callGate(call.def.fn);
    if (gate.kind === 'run') return this.o.queue.enqueue(call);
    if (gate.kind === 'fail') return void this.fail(call.callNum, gate.error);
    if (this.held.has(call.callNum)) return;
    this.held.set(call.callNum, call);
    void this.o.builds.follow(call.def.fn).then(() => this.release(call.callNum));
  }

  knows(callNum: number): boolean {
    return this.held.has(callNum) || this.o.queue.knows(callNum);
  }

  // Calls waiting for a build, for the operator's eye.
  get waiting(): number {
    return this.held.size;
  }

  // The build ended: the call goes on with its version as it now stands (or ends, if it was cancelled meanwhile).
  private async release(callNum: number): Promise<void> {
    const call = this.held.get(callNum);
    if (!call) return;
    try {
      const def = await this.o.meta.get(call.funcName, call.def.fn.version);
      const record = await this.o.db.request('getCall', { callNum });
      this.held.delete(callNum);
      if (!record || isFinal(record.status)) return;
      if (!def) return void (await this.fail(callNum, `version ${call.def.fn.version} of ${call.funcName} no longer exists`, 'platform'));
      if (!hasRuntime(def)) return void (await this.fail(callNum, `runtime ${def.fn.runtimeName} no longer exists`, 'platform'));
      this.enqueue({ ...call, def });
    } catch (e) {
      // The DB service is away: the call stays PENDING and the API's recovery dispatches it again.
      this.held.delete(callNum);
      this.o.log.warn({ callNum, err: errText(e) }, 'call held for a build not released; recovery takes it');
    }
  }

  private async fail(callNum: number, error: string, fault: 'function' | 'platform' = 'function'): Promise<void> {
    try {
      const { call } = await this.o.db.request('callIntent', {
        callNum,
        intent: { kind: 'outcome', outcome: failure(fault, error), ran: false },
      });
      if (call && isFinal(call.status)) this.o.settle(callNum, { call, outcome: recordedOutcome(call) });
    } catch (e) {
      this.o.log.warn({ callNum, err: errText(e) }, 'call of a failed build not ended yet; recovery takes it');
    }
  }
}
