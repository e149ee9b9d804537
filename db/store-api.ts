// What the DB service (db/server.ts) needs of a store, whichever engine keeps it: the embedded LevelDB
// (db/store.ts, the default) or PostgreSQL (db/pg-store.ts). The rules live above this line, in one place
// each: a call's table in db/call-life.ts (applied by db/call-group.ts), sealing in db/tenancy.ts; a
// backend only reads and writes records, atomically where it says so.
import type { Call, FunctionMeta, KeyRecord, Namespace, Runtime, SecretInfo } from '../common/model.js';
import type { DbContent, DbResults, Purged, Schedule, Trigger } from '../protocol/db.js';
import type { CallGroup } from './call-group.js';
import type { BackupRecord } from './backup-records.js';
import type { LeaseRequest } from './trigger-lease.js';
import type { LeaseAsk } from './api-lease.js';

export { NotFoundError } from '../common/errors.js';

export class ConflictError extends Error {}

// A write that failed for a reason that passes (another DB service on the same database held a lock or
// wrote the same key first): applied again, alone, it will see what the other wrote.
export class RetryableError extends Error {}

// A sealed secret as stored: the value never appears in clear (db/tenancy.ts seals and opens it).
export interface SealedSecret extends SecretInfo {
  iv: string; // base64, 12 bytes
  tag: string; // base64, 16 bytes
  data: string; // base64 ciphertext
}

// The tenancy records: namespaces, keys (salted slow hashes only) and sealed secrets.
export interface TenancyRecords {
  getNamespace(name: string): Promise<Namespace | null>;
  putNamespace(ns: Namespace): Promise<void>;
  listNamespaces(): Promise<Namespace[]>;
  getKey(id: string): Promise<KeyRecord | null>;
  putKey(k: KeyRecord): Promise<void>;
  listKeys(namespace: string): Promise<KeyRecord[]>;
  getSecret(namespace: string, name: string): Promise<SealedSecret | null>;
  putSecret(namespace: string, s: SealedSecret): Promise<void>;
  listSecrets(namespace: string): Promise<SealedSecret[]>;
  deleteSecret(namespace: string, name: string): Promise<void>;
  // The namespace's record with its keys and secrets, at once (all or nothing).
  dropNamespace(name: string): Promise<{ keys: string[] }>;
}

export type CallQuery = DbContent<'listCalls'>;
export type DeadLetterQuery = DbContent<'listDeadLetters'>;

// A consistent view of the whole store as of one instant, read record by record (what a backup reads).
export interface StoreSnapshot {
  next(max: number): Promise<BackupRecord[]>; // none: the end
  close(): Promise<void>;
}

export interface StoreBackend {
  readonly engine: 'leveldb' | 'postgres';
  readonly tenancy: TenancyRecords;
  close(): Promise<void>;

  putRuntime(rt: Runtime): Promise<Runtime>;
  getRuntime(name: string): Promise<Runtime | null>;
  listRuntimes(): Promise<Runtime[]>;
  deleteRuntime(name: string): Promise<{ deleted: boolean }>; // CONFLICT while a function uses it

  putArchive(digest: string, data: Buffer): Promise<{ digest: string; size: number }>;
  getArchive(digest: string): Promise<Buffer | null>;

  addFunction(c: DbContent<'addFunction'> & { settings: FunctionMeta['settings'] }): Promise<FunctionMeta>;
  getFunction(name: string, version?: number): Promise<FunctionMeta | null>;
  listFunctions(): Promise<FunctionMeta[]>;
  listVersions(name: string): Promise<FunctionMeta[]>;
  setCurrentVersion(name: string, version: number): Promise<FunctionMeta | null>;
  deleteFunction(name: string): Promise<{ deleted: boolean }>;
  deleteVersion(name: string, version: number): Promise<{ deleted: boolean; current?: true }>;
  // A version's build ends (endBuild in common/build.ts decides), atomically with respect to other writes of it.
  endBuild(c: DbContent<'endBuild'>): Promise<DbResults['endBuild']>;

  // Call writes go through a group (db/call-group.ts): planned against the store, written at once.
  group(): CallGroup;
  // A call number told to a caller before its write failed (db/server.ts, LevelDB only): never given again
  // in this process, since a run of it may have begun.
  passCallNum?(callNum: number): void;
  getCall(callNum: number): Promise<Call | null>;
  listCalls(q: CallQuery): Promise<Call[]>;
  listUnfinished(): Promise<Call[]>;
  listDeadLetters(q: DeadLetterQuery): Promise<Call[]>;

  putSchedule(sc: Omit<Schedule, 'lastRun'>): Promise<Schedule>;
  listSchedules(funcName?: string, namespace?: string): Promise<Schedule[]>;
  deleteSchedule(funcName: string, id: string): Promise<{ deleted: boolean }>;
  // Moves lastRun forward only, atomically: of two services recording ticks at once, the later tick stays.
  recordScheduleRun(r: { funcName: string; id: string; tick: string; callNum: number }): Promise<Schedule | null>;
  // Triggers (api/triggers consumes them; a lease keeps one consuming API at a time).
  putTrigger(t: Omit<Trigger, 'lease' | 'stats'>): Promise<Trigger>;
  listTriggers(funcName?: string, namespace?: string): Promise<Trigger[]>;
  deleteTrigger(funcName: string, id: string): Promise<{ deleted: boolean }>;
  pauseTrigger(funcName: string, id: string, paused: boolean): Promise<Trigger | null>;
  leaseTrigger(r: LeaseRequest): Promise<{ trigger: Trigger | null; held: boolean }>;

  // Several APIs on one store (db/api-lease.ts): an API's lease, and the atomic adoption of the unfinished
  // calls of APIs whose lease lapsed (only while the adopter's own runs; two adopters never both take one).
  leaseApi(r: LeaseAsk): Promise<{ held: boolean; lost: boolean }>;
  adoptCalls(adopter: string): Promise<{ calls: Call[]; from: string[] }>;

  // Everything kept under a namespace's name (calls, idempotency keys, schedules, functions, runtimes).
  purgeNamespace(namespace: string): Promise<Purged>;

  // Backups (db/backup-records.ts): a snapshot of every record, and records written back.
  snapshot(readBytes: number): Promise<StoreSnapshot>; // readBytes: about this much per read at most
  isEmpty(): Promise<boolean>;
  restore(records: BackupRecord[]): Promise<void>;
  restored(): Promise<void>; // after the last restore(): counters (call numbers) past what was restored
}

// The record of a new version of a function, as every store writes it.
export function versionMeta(c: DbContent<'addFunction'> & { settings: FunctionMeta['settings'] }, version: number): FunctionMeta {
  return {
    functionName: c.functionName,
    runtimeName: c.runtimeName,
    version,
    digest: c.digest,
    size: c.size,
    format: c.format,
    originalname: c.originalname,
    createdAt: new Date().toISOString(),
    settings: c.settings,
    ...(c.build ? { build: c.build } : {}),
    ...(c.image ? { image: c.image } : {}),
  };
}

// The archives a version holds: its source, and its built tree when it has one.
export const heldArchives = (v: FunctionMeta): string[] => (v.build?.digest ? [v.digest, v.build.digest] : [v.digest]);
