// A call that reached its final state, as everyone who waits for one is told it: read from the record alone.
import type { Call, CallOutcome } from '../common/model.js';

// A call that reached its final state: the record, and the outcome as its node told it (a web answer's body
// is in it, and in the record only its first KiB of text).
export interface Ended {
  call: Call;
  outcome: CallOutcome;
}

// The outcome a final call record holds. A web answer's body is not kept, only its first KiB of text (as
// `result`): the body is given back when that is all of it, else it is left out (`response.body` unset).
export function recordedOutcome(call: Call): CallOutcome {
  const { status, result, error, fault, logs, durationMs, response, cancelled } = call;
  const outcome: CallOutcome = { status: status as CallOutcome['status'], result };
  if (error !== undefined) outcome.error = error;
  if (fault !== undefined) outcome.fault = fault;
  if (logs !== undefined) outcome.logs = logs;
  if (durationMs !== undefined) outcome.durationMs = durationMs;
  if (cancelled !== undefined) outcome.cancelled = cancelled;
  if (response) {
    const whole = Buffer.from(result, 'utf8');
    const bytes = response.bytes ?? 0;
    outcome.response = { ...response, ...(whole.length === bytes ? { body: whole.toString('base64') } : {}) };
  }
  return outcome;
}
