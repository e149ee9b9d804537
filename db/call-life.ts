// A call's life as one declared table, applied by the DB service's store alone. Everything else (the API
// that dispatched it, the node that ran it, a cancel) sends an intent, which the table accepts (the next
// record) or refuses (why), idempotently per call, attempt and node life: the same word said twice, or said
// late by a run the call has left behind, changes nothing.
//
//   state            intent                          next
//   PENDING          started(a, node, life)          RUNNING, attempt a on node/life (a > attempts)
//   RUNNING(a)       started(a, same node/life)      -                    (said twice)
//   RUNNING(a)       outcome(a, same node/life)      DONE/ERROR/TIMEOUT, or PENDING until retryAt (retries)
//   PENDING          outcome(a > attempts)           as above: the run's start was not heard, its end counts it
//   PENDING retryAt  outcome(a = attempts)           -                    (the failed run said twice)
//   RUNNING          nodeLost(node, life)            PENDING (to run again) or ERROR (retry=false, or
//                                                    MAX_NODE_LOSSES runs lost)
//   PENDING          nodeLost                        -                    (it never began there: sent again)
//   RUNNING on node  givenBack(node)                 PENDING, that start not counted
//   open             cancel                          ERROR, cancelled
//   open             fail(error)                     ERROR (the platform ended it: its function or runtime
//                                                    is gone, its tree could not be made)
//   final            any                             -                    (the first final state wins)
import { afterRun, attemptOf } from '../common/retry.js';
import { failure } from '../common/faults.js';
import { isFinal, type Call, type CallOutcome, type FunctionSettings } from '../common/model.js';
import type { CallIntent } from '../protocol/db.js';

// How many runs of a call may be lost with their node (or miniworker) before it ends in ERROR; failed runs
// retried by the function's own `retries` do not count.
export const MAX_NODE_LOSSES = 3;

export type Verdict = { changed: true; next: Call } | { changed: false; why: string };

export interface LifeContext {
  now: Date;
  settings: Pick<FunctionSettings, 'retry' | 'retries' | 'retryBackoff'> | null; // of the call's version
}

const refuse = (why: string): Verdict => ({ changed: false, why });

// The next record for this intent, or why there is none. Pure.
export function applyIntent(call: Call, intent: CallIntent, ctx: LifeContext): Verdict {
  if (isFinal(call.status)) return refuse(`call ${call.callNum} has ended (${call.status})`);
  switch (intent.kind) {
    case 'started':
      return started(call, intent, ctx);
    case 'outcome':
      return outcome(call, intent, ctx);
    case 'nodeLost':
      return nodeLost(call, intent, ctx);
    case 'givenBack': {
      if (call.status !== 'RUNNING' || call.node !== intent.node) return refuse('the node did not run it');
      const next: Call = { ...call, status: 'PENDING', attempts: Math.max(0, call.attempts - 1) };
      for (const k of ['node', 'life', 'startedAt'] as const) delete next[k];
      return { changed: true, next };
    }
    case 'cancel':
      return end(call, { ...failure('cancelled', 'cancelled by request'), cancelled: true }, ctx, false);
    case 'fail':
      return end(call, failure('platform', intent.error), ctx, false);
  }
}

function started(call: Call, i: Extract<CallIntent, { kind: 'started' }>, ctx: LifeContext): Verdict {
  const attempt = i.attempt ?? call.attempts + 1;
  const same = call.status === 'RUNNING' && call.attempts === attempt && call.node === i.node && call.life === i.life;
  if (same) return refuse('said twice');
  if (attempt <= call.attempts) return refuse(`run ${attempt} was left behind (the call is at run ${call.attempts})`);
  const next: Call = { ...call, status: 'RUNNING', node: i.node, attempts: attempt, startedAt: ctx.now.toISOString() };
  if (i.life) next.life = i.life;
  else delete next.life;
  delete next.retryAt; // a retry's run has begun
  return { changed: true, next };
}

function outcome(call: Call, i: Extract<CallIntent, { kind: 'outcome' }>, ctx: LifeContext): Verdict {
  const { attempt: ranAs, ...said } = i.outcome;
  const attempt = i.attempt ?? ranAs;
  const onIt =
    call.status === 'RUNNING' && call.node === i.node && (call.life === undefined || i.life === undefined || call.life === i.life);
  // A node that does not hold the call speaks for it only where the record says it runs it.
  if (i.holder === false && !onIt) return refuse('the node does not run it');
  if (call.status === 'RUNNING' && i.node !== undefined && !onIt) return refuse(`it runs on node ${call.node}`);
  // Which run ended: as the node says, else the one running, else (its start was not heard) the next one.
  let run = 0;
  if (i.ran) {
    if (attempt === undefined && call.retryAt) return refuse('the failed run said twice');
    run = attempt ?? (call.status === 'RUNNING' ? call.attempts : call.attempts + 1);
    if (run < call.attempts) return refuse(`run ${run} was left behind (the call is at run ${call.attempts})`);
    // A failed run whose end is in the history already (the call waits for its retry, or was given back since).
    if ((call.history ?? []).some((h) => h.attempt >= run)) return refuse('the failed run said twice');
  }
  // The run that ended counts even when the word that it began was not heard.
  const counted: Call = { ...call, attempts: Math.max(call.attempts, run) };
  if (i.node) counted.node = i.node;
  return end(counted, said, ctx, i.ran);
}

// The call's end, or (a failed run of a function with `retries`) its wait for the next run.
function end(call: Call, o: CallOutcome, ctx: LifeContext, ran: boolean): Verdict {
  const after =
    ran && ctx.settings ? afterRun(ctx.settings, call.history?.length ?? 0, o) : ({ kind: 'final', deadLetter: false } as const);
  if (after.kind === 'retry') {
    const next: Call = {
      ...call,
      status: 'PENDING',
      result: '',
      history: [...(call.history ?? []), attemptOf(call, o, ctx.now)],
      retryAt: new Date(ctx.now.getTime() + after.delayMs).toISOString(),
    };
    for (const k of ['node', 'life', 'error', 'fault', 'logs', 'startedAt', 'durationMs', 'response'] as const) delete next[k];
    return { changed: true, next };
  }
  // A web answer's body went to its caller; the record keeps its status, headers and size. The outcome's
  // fields are named one by one: the record holds what the schema says, whatever else the object carried.
  const { response } = o;
  const rest: Omit<CallOutcome, 'response' | 'attempt'> = {
    status: o.status,
    result: o.result,
    ...(o.error !== undefined ? { error: o.error } : {}),
    ...(o.logs !== undefined ? { logs: o.logs } : {}),
    ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
    ...(o.cancelled !== undefined ? { cancelled: o.cancelled } : {}),
    ...(o.fault !== undefined ? { fault: o.fault } : {}),
  };
  const kept = response && {
    status: response.status,
    headers: response.headers,
    bytes: response.bytes ?? bodyBytes(response.body),
    ...(response.streamed ? { streamed: true } : {}),
  };
  const next: Call = {
    ...call,
    ...rest,
    ...(kept ? { response: kept } : {}),
    ...(after.deadLetter ? { deadLetter: 'listed' as const } : {}),
    ...(call.callback ? { callback: { ...call.callback, state: 'pending' as const, nextAt: ctx.now.toISOString() } } : {}),
    finishedAt: ctx.now.toISOString(),
  };
  delete next.retryAt; // ended while waiting for a retry (cancelled): it will not run again
  delete next.life;
  return { changed: true, next };
}

function nodeLost(call: Call, i: Extract<CallIntent, { kind: 'nodeLost' }>, ctx: LifeContext): Verdict {
  if (call.status !== 'RUNNING') return refuse('it was not running: it is sent again as it is');
  if (call.node !== undefined && call.node !== i.node) return refuse(`it runs on node ${call.node}`);
  if (call.life !== undefined && i.life !== undefined && call.life !== i.life) return refuse('it runs on another life of the node');
  if (ctx.settings && !ctx.settings.retry)
    return end(call, failure('platform', `${i.why} while running the call; not retried (the function has retry=false)`), ctx, false);
  const lost = call.attempts - (call.history?.length ?? 0);
  if (lost >= MAX_NODE_LOSSES) return end(call, failure('platform', `${i.why}; gave up after ${call.attempts} attempts`), ctx, false);
  const next: Call = { ...call, status: 'PENDING' };
  for (const k of ['node', 'life'] as const) delete next[k];
  return { changed: true, next };
}

function bodyBytes(b64: string | undefined): number {
  if (!b64) return 0;
  return Buffer.byteLength(b64, 'base64');
}
