// What follows a run of a call that ended: the call is final, or (its function opted in with `retries`)
// it runs again later. One rule, applied by the DB service when the run's outcome is recorded, so that
// whoever records it (the node, or the API for a node that died) gets the same answer.
import type { Attempt, Call, CallOutcome, FunctionSettings } from './model.js';

const MAX_DELAY_MS = 3_600_000;
const ATTEMPT_LOGS_MAX = 4096; // each earlier run keeps the end of its output, not all of it

export type AfterRun = { kind: 'final'; deadLetter: boolean } | { kind: 'retry'; delayMs: number };

// `failedBefore`: runs of this call that failed and were retried already.
export function afterRun(
  settings: Pick<FunctionSettings, 'retries' | 'retryBackoff'>,
  failedBefore: number,
  outcome: CallOutcome,
): AfterRun {
  const failed = outcome.status !== 'DONE' && !outcome.cancelled;
  if (!failed || settings.retries <= 0) return { kind: 'final', deadLetter: false };
  if (failedBefore >= settings.retries) return { kind: 'final', deadLetter: true };
  return { kind: 'retry', delayMs: Math.min(settings.retryBackoff * 2 ** failedBefore, MAX_DELAY_MS) };
}

// The failed run as the call's history keeps it.
export function attemptOf(call: Call, outcome: CallOutcome, now: Date): Attempt {
  const logs = outcome.logs && outcome.logs.length > ATTEMPT_LOGS_MAX ? outcome.logs.slice(-ATTEMPT_LOGS_MAX) : outcome.logs;
  return {
    attempt: Math.max(1, call.attempts),
    status: outcome.status === 'TIMEOUT' ? 'TIMEOUT' : 'ERROR',
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(outcome.fault !== undefined ? { fault: outcome.fault } : {}),
    ...(logs !== undefined ? { logs } : {}),
    ...(call.node !== undefined ? { node: call.node } : {}),
    ...(call.startedAt !== undefined ? { startedAt: call.startedAt } : {}),
    finishedAt: now.toISOString(),
    ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
  };
}
