// Which DB requests a client may send again to another DB service when the one it sent them to stopped
// answering (db/client.ts fails over between the addresses of `--db a,b`). The first service may have
// applied the request before it died, so only a request that means the same when applied twice goes again:
// reads; writes that set a record to a given state (runtimes, archives by digest, schedules, keys, leases);
// the call writes, whose table takes each intent once per call, attempt and node life (db/call-life.ts);
// and createCall, which the client marks with a request id that the store remembers with the call it made
// (db/call-group.ts), so that the same request answers the same call. The others (a new function version,
// deletions, a delivery try, a namespace, backup sessions) fail with UNAVAILABLE: they may or may not have
// been applied, and their caller decides.
import { dbKind, type DbMsgType } from '../protocol/db.js';

const SAFE_WRITES: ReadonlySet<DbMsgType> = new Set<DbMsgType>([
  'putRuntime',
  'putArchive',
  'createCall',
  'callIntent',
  'dismissDeadLetter',
  'claimDeliveries',
  'putSchedule',
  'recordScheduleRun',
  'putTrigger',
  'pauseTrigger',
  'leaseTrigger',
  'setQuotas',
  'putKey',
  'putSecret',
  'leaseApi',
  'adoptCalls',
]);

const SESSIONS: ReadonlySet<DbMsgType> = new Set<DbMsgType>(['backupOpen', 'backupNext', 'backupClose']);

export function resendable(msgType: DbMsgType): boolean {
  if (SESSIONS.has(msgType)) return false; // a backup session lives in the service that opened it
  return dbKind(msgType) === 'read' || SAFE_WRITES.has(msgType);
}
