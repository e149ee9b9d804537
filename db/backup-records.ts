// The logical records of a backup: what the store holds, by kind, the same whichever engine kept it, so that
// a backup taken from LevelDB restores into PostgreSQL and back. Indexes (open calls, dead letters, the
// callback outbox, call numbers) are not records: each backend rebuilds them from the calls it restores.
//
// In the file and the backup chunks a record is one key and one value (db/backup.ts frames them):
// the key "zfaas:KIND:ID", the value the record's JSON, or an archive's bytes as they are. Keys of the raw
// layout of older backups (LevelDB keys, which begin with "!") never begin with "zfaas:".
import { z } from 'zod';
import {
  FunctionMetaSchema,
  KeyRecordSchema,
  NamespaceSchema,
  RuntimeSchema,
  CallSchema,
  SecretInfoSchema,
  type Call,
  type FunctionMeta,
  type KeyRecord,
  type Namespace,
  type Runtime,
} from '../common/model.js';
import { ScheduleSchema, TriggerSchema, type Schedule, type Trigger } from '../protocol/db.js';
import type { KeyEntry } from './call-group.js';
import type { SealedSecret } from './store-api.js';

export type BackupRecord =
  | { kind: 'runtime'; value: Runtime }
  | { kind: 'archive'; digest: string; data: Buffer }
  | { kind: 'function'; name: string; current: number; latest: number }
  | { kind: 'version'; value: FunctionMeta }
  | { kind: 'call'; value: Call }
  | { kind: 'idempotency'; key: string; value: KeyEntry }
  | { kind: 'schedule'; value: Schedule }
  | { kind: 'trigger'; value: Trigger }
  | { kind: 'namespace'; value: Namespace }
  | { kind: 'key'; value: KeyRecord }
  | { kind: 'secret'; namespace: string; value: SealedSecret };

export const LOGICAL_PREFIX = 'zfaas:';

const KeyEntrySchema = z.object({ funcName: z.string(), hash: z.string(), callNum: z.number().int().min(1), at: z.number() });
const SealedSecretSchema = SecretInfoSchema.extend({ iv: z.string(), tag: z.string(), data: z.string() });
const HeadSchema = z.object({ current: z.number().int().min(1), latest: z.number().int().min(1) });
// A record is checked against its schema and kept as it was written (zod's output would reorder its
// fields and fill in defaults; the record restored is the record backed up).
const checked = <T>(schema: z.ZodTypeAny, v: unknown): T => {
  schema.parse(v);
  return v as T;
};

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

// One record as a key and a value.
export function encodeRecord(r: BackupRecord): [Buffer, Buffer] {
  const key = (id: string | number): Buffer => Buffer.from(`${LOGICAL_PREFIX}${r.kind}:${id}`);
  switch (r.kind) {
    case 'runtime':
      return [key(r.value.name), json(r.value)];
    case 'archive':
      return [key(r.digest), r.data];
    case 'function':
      return [key(r.name), json({ current: r.current, latest: r.latest })];
    case 'version':
      return [key(`${r.value.functionName}!${r.value.version}`), json(r.value)];
    case 'call':
      return [key(r.value.callNum), json(r.value)];
    case 'idempotency':
      return [key(r.key), json(r.value)];
    case 'schedule':
      return [key(`${r.value.funcName}!${r.value.id}`), json(r.value)];
    case 'trigger':
      return [key(`${r.value.funcName}!${r.value.id}`), json(r.value)];
    case 'namespace':
      return [key(r.value.name), json(r.value)];
    case 'key':
      return [key(r.value.id), json(r.value)];
    case 'secret':
      return [key(`${r.namespace}!${r.value.name}`), json(r.value)];
  }
}

export const isLogicalKey = (key: Buffer): boolean => key.subarray(0, LOGICAL_PREFIX.length).toString('latin1') === LOGICAL_PREFIX;

// A key and a value back as a record; a key of another layout or a value that does not fit throws.
export function decodeRecord(keyBuf: Buffer, value: Buffer): BackupRecord {
  const k = keyBuf.toString('utf8');
  const m = /^zfaas:([a-z]+):(.+)$/s.exec(k);
  if (!m) throw new Error(`not a record of a logical backup: ${JSON.stringify(k.slice(0, 80))}`);
  const [, kind, id] = m as unknown as [string, string, string];
  const parsed = (): unknown => JSON.parse(value.toString('utf8'));
  switch (kind) {
    case 'runtime':
      return { kind, value: checked<Runtime>(RuntimeSchema, parsed()) };
    case 'archive':
      return { kind, digest: id, data: value };
    case 'function':
      return { kind, name: id, ...HeadSchema.parse(parsed()) };
    case 'version':
      return { kind, value: checked<FunctionMeta>(FunctionMetaSchema, parsed()) };
    case 'call':
      return { kind, value: checked<Call>(CallSchema, parsed()) };
    case 'idempotency':
      return { kind, key: id, value: checked<KeyEntry>(KeyEntrySchema, parsed()) };
    case 'schedule':
      return { kind, value: checked<Schedule>(ScheduleSchema, parsed()) };
    case 'trigger':
      return { kind, value: checked<Trigger>(TriggerSchema, parsed()) };
    case 'namespace':
      return { kind, value: checked<Namespace>(NamespaceSchema, parsed()) };
    case 'key':
      return { kind, value: checked<KeyRecord>(KeyRecordSchema, parsed()) };
    case 'secret': {
      const namespace = id.slice(0, id.indexOf('!'));
      return { kind, namespace, value: checked<SealedSecret>(SealedSecretSchema, parsed()) };
    }
    default:
      throw new Error(`a backup record of an unknown kind ${JSON.stringify(kind)}: restore it with a newer zfaas`);
  }
}
