// Cancelling a call: its table ends it first (ERROR, cancelled), so nothing can run it again (the first
// final state wins, and a final call takes no other word); then it leaves the queue, or the node running it
// is told to stop it and kill its container. Anyone waiting on it wakes at once, with that record.
import { isFinal, type Call, type CallOutcome } from '../common/model.js';
import type { Ended } from './ended.js';
import type { DbClient } from '../db/client.js';
import type { NodeControl } from './broker.js';
import { HttpError } from './http.js';
import { failure } from '../common/faults.js';

export const CANCELLED: CallOutcome = { ...failure('cancelled', 'cancelled by request'), cancelled: true };

export interface CancelDeps {
  db: Pick<DbClient, 'request'>;
  queue: { drop(callNum: number): boolean };
  nodes: NodeControl & { holder(callNum: number): string | undefined };
  settle(callNum: number, ended: Ended): void; // wakes the call's waiters and tells observers
}

// `sees`: whether the caller may see the call (its namespace's; an invoker's own): else it is not found.
export async function cancelCall(d: CancelDeps, callNum: number, sees: (call: Call) => boolean = () => true): Promise<Call> {
  const call = await d.db.request('getCall', { callNum });
  if (!call || !sees(call)) throw new HttpError(404, `call ${callNum} not found`);
  if (isFinal(call.status)) throw new HttpError(409, `call ${callNum} already ended ${call.status}`);
  const { call: after, changed } = await d.db.request('callIntent', { callNum, intent: { kind: 'cancel' } });
  if (!changed || !after) throw new HttpError(409, `call ${callNum} already ended ${after?.status ?? ''}`.trim());
  d.queue.drop(callNum);
  const node = d.nodes.holder(callNum);
  if (node) d.nodes.tell(node, { type: 'cancel', callNum });
  d.settle(callNum, { call: after, outcome: CANCELLED });
  return after;
}
