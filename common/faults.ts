// Every way a call can fail, in one table: what its record says (`fault`, and its status), what a web
// caller is answered and what the CLI exits with. Everything that fails a call names one of these, so
// that no answer is ever chosen by reading the words of an error.
import { z } from 'zod';

export const FAULTS = {
  function: { status: 'ERROR', http: 500, exit: 3, what: 'the function failed (threw, exited non-zero, crashed, ran out of memory)' },
  timeout: { status: 'TIMEOUT', http: 504, exit: 4, what: 'the function ran past its timeout and was stopped' },
  response: { status: 'ERROR', http: 502, exit: 3, what: 'the function answered, but not with a response that can be served' },
  platform: { status: 'ERROR', http: 500, exit: 3, what: 'zfaas could not run the function (container, tree, secret, node)' },
  cancelled: { status: 'ERROR', http: 500, exit: 3, what: 'the call was cancelled by request' },
} as const;

export type Fault = keyof typeof FAULTS;
export const FaultSchema = z.enum(Object.keys(FAULTS) as [Fault, ...Fault[]]);

// A failed call's outcome: its status follows from its fault.
export function failure<F extends Fault>(
  fault: F,
  error: string,
): { status: (typeof FAULTS)[F]['status']; result: ''; error: string; fault: F } {
  return { status: FAULTS[fault].status, result: '', error, fault };
}

// The fault of a failed outcome or record; one from before faults were recorded is told by its status.
export function faultOf(o: { status: string; fault?: Fault; cancelled?: boolean }): Fault | undefined {
  if (o.status !== 'ERROR' && o.status !== 'TIMEOUT') return undefined;
  if (o.fault) return o.fault;
  if (o.cancelled) return 'cancelled';
  return o.status === 'TIMEOUT' ? 'timeout' : 'function';
}
