// The DB service's wire protocol. As in the seed: a request is {msgType, content}; we add an `id` so that
// one DEALER can have many requests in flight. Frames: ["", JSON, ...blobs] (the empty delimiter makes it
// REQ-compatible). Replies: ["", {id, ok, data} | {id, ok:false, error, code}, ...blobs].
import { z } from 'zod';
import {
  CallOutcomeSchema,
  CallStatusSchema,
  DeliverySchema,
  KeyRecordSchema,
  QuotasSchema,
  secretNameSchema,
  FunctionSettingsSchema,
  qualifiedNameSchema,
  WebRequestSchema,
  RuntimeSchema,
  ScheduleRefSchema,
  type Call,
  type FunctionMeta,
  type KeyRecord,
  type Namespace,
  type Runtime,
  type SecretInfo,
} from '../common/model.js';
import { NAMESPACE_RE, namespaceSchema, NS_SEP } from '../common/namespace.js';

const digest = z.string().regex(/^[a-f0-9]{64}$/);

// A schedule (cron trigger) of a function, as stored (api/schedules.ts fires it). `lastRun`: the newest
// tick a call was made for.
export const ScheduleSchema = z.object({
  id: z.string().regex(/^[a-f0-9]{1,64}$/),
  funcName: qualifiedNameSchema,
  cron: z.string().min(1).max(256),
  timezone: z.string().min(1).max(64),
  params: z.unknown(),
  missed: z.enum(['skip', 'once']),
  createdAt: z.string(),
  lastRun: z.object({ tick: z.string(), callNum: z.number().int().min(1), at: z.string() }).optional(),
});
export type Schedule = z.infer<typeof ScheduleSchema>;

// A trigger of a function: messages of a broker (api/triggers) each make a call. The password, when the
// broker wants one, is never here: `auth.secret` names a secret of the function's namespace that holds it.
export const TRIGGER_TYPES = ['nats', 'mqtt', 'amqp', 'redis'] as const;
export const TriggerIdSchema = z.string().regex(/^[a-f0-9]{1,64}$/);
export const TriggerSettingsSchema = z.object({
  inFlight: z.number().int().min(1).max(1000), // calls of the trigger in flight at once (unacknowledged messages)
  maxQueue: z.number().int().min(1).max(1_000_000), // no pulling while this many of the function's calls wait in the API's queue
  maxBytes: z
    .number()
    .int()
    .min(1)
    .max(1024 * 1024), // a longer message makes no call: it is acknowledged and listed
  deadLetter: z.enum(['list', 'broker']), // a failed message: listed here, or handed to the broker's own dead-letter target
  dedupWindowS: z
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600), // how long a message's identity stands for its call
  stream: z.string().min(1).max(256).optional(), // nats: the JetStream stream (else found by the subject)
  group: z.string().min(1).max(128).optional(), // consumer group / durable / client id (else zfaas-<id>)
});
export const TriggerStatsSchema = z.object({
  connected: z.boolean(),
  lag: z.number().int().min(0).optional(), // messages at the broker not yet delivered to this trigger (or pending)
  inFlight: z.number().int().min(0),
  delivered: z.number().int().min(0), // acknowledged after a DONE call
  failed: z.number().int().min(0), // acknowledged after a call that failed for good (or refused, too long)
  lastError: z.string().max(1024).optional(),
  // The newest messages that made no call (too long), with where they came from.
  rejected: z
    .array(
      z.object({
        id: z.string().max(512),
        subject: z.string().max(512),
        bytes: z.number().int(),
        reason: z.string().max(256),
        at: z.string(),
      }),
    )
    .max(20)
    .default([]),
  at: z.string(),
});
export const TriggerSchema = z.object({
  id: TriggerIdSchema,
  funcName: qualifiedNameSchema,
  type: z.enum(TRIGGER_TYPES),
  url: z.string().min(1).max(2048), // with no password in it
  source: z.string().min(1).max(512),
  auth: z.object({ username: z.string().max(256).optional(), secret: secretNameSchema.optional() }).optional(),
  settings: TriggerSettingsSchema,
  paused: z.boolean(),
  createdAt: z.string(),
  // Which API process consumes it, until when (a lease it renews; another takes over once it lapses).
  lease: z.object({ holder: z.string().max(128), until: z.string() }).optional(),
  stats: TriggerStatsSchema.optional(),
});
export type Trigger = z.infer<typeof TriggerSchema>;
export type TriggerStats = z.infer<typeof TriggerStatsSchema>;
export type TriggerType = Trigger['type'];

// An idempotency key: 1 to 255 printable ASCII characters; kept this long unless the API says otherwise.
export const IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,255}$/;
// As the DB service keeps it: "NAMESPACE~CALLER~KEY" (scopedIdempotencyKey), so that two callers, or two
// namespaces, sending the same key never meet, and a namespace's keys go with it (by their prefix).
export const STORED_IDEMPOTENCY_KEY = /^[\x20-\x7e]{1,600}$/;
export const IDEMPOTENCY_TTL_S = 24 * 3600;

// Who a key belongs to inside a namespace: `operator`, `key:ID` (a namespace's key, by its id, which a
// rotation keeps), `web:NAME` (the anonymous callers of one public function, together) or `schedule:ID`
// (one schedule's ticks) or `trigger:ID` (one trigger's messages). None holds a "~", so the stored key splits back into its parts.
export const IDEMPOTENCY_CALLER =
  /^(operator|key:[a-f0-9]{16}|web:[A-Za-z0-9][A-Za-z0-9._-]{0,127}|schedule:[a-f0-9]{1,64}|trigger:[a-f0-9]{1,64})$/;

export function scopedIdempotencyKey(namespace: string, caller: string, key: string): string {
  if (!NAMESPACE_RE.test(namespace) || !IDEMPOTENCY_CALLER.test(caller)) throw new Error(`bad idempotency scope ${namespace} ${caller}`);
  return `${namespace}${NS_SEP}${caller}${NS_SEP}${key}`;
}

// The key as its caller sent it (for messages): a stored key without its namespace and caller.
export function shownIdempotencyKey(stored: string): string {
  const m = /^[a-z0-9-]{1,32}~[^~]+~(.+)$/s.exec(stored);
  return m ? m[1]! : stored;
}

// The prefix of every stored key of a namespace (what deleting it removes).
export const idempotencyPrefix = (namespace: string): string => `${namespace}${NS_SEP}`;

// A backup session of the DB service (db/backup.ts): its id, as backupOpen hands it out.
export const BackupIdSchema = z.string().regex(/^[a-f0-9]{32}$/);

export const DbRequestSchema = z.discriminatedUnion('msgType', [
  z.object({ msgType: z.literal('ping'), content: z.object({}).passthrough().default({}) }),
  z.object({ msgType: z.literal('putRuntime'), content: RuntimeSchema }),
  z.object({ msgType: z.literal('getRuntime'), content: z.object({ name: qualifiedNameSchema }) }),
  z.object({ msgType: z.literal('listRuntimes'), content: z.object({}).passthrough().default({}) }),
  z.object({ msgType: z.literal('deleteRuntime'), content: z.object({ name: qualifiedNameSchema }) }),
  z.object({ msgType: z.literal('putArchive'), content: z.object({ digest }) }),
  z.object({ msgType: z.literal('getArchive'), content: z.object({ digest }) }),
  z.object({
    msgType: z.literal('addFunction'),
    content: z.object({
      functionName: qualifiedNameSchema,
      runtimeName: qualifiedNameSchema,
      digest,
      size: z.number().int().min(0),
      format: z.enum(['tar.gz', 'tar', 'zip']),
      originalname: z.string().max(1024).optional(),
      settings: FunctionSettingsSchema,
    }),
  }),
  z.object({
    msgType: z.literal('getFunction'),
    content: z.object({ name: qualifiedNameSchema, version: z.number().int().min(1).optional() }),
  }),
  z.object({ msgType: z.literal('listFunctions'), content: z.object({}).passthrough().default({}) }),
  z.object({ msgType: z.literal('listVersions'), content: z.object({ name: qualifiedNameSchema }) }),
  z.object({ msgType: z.literal('setCurrentVersion'), content: z.object({ name: qualifiedNameSchema, version: z.number().int().min(1) }) }),
  z.object({ msgType: z.literal('deleteFunction'), content: z.object({ name: qualifiedNameSchema }) }),
  // An old version (and its archive, when no other version holds it); the current one is refused (`current`).
  z.object({ msgType: z.literal('deleteVersion'), content: z.object({ name: qualifiedNameSchema, version: z.number().int().min(1) }) }),
  z.object({
    msgType: z.literal('createCall'),
    content: z.object({
      funcName: qualifiedNameSchema,
      version: z.number().int().min(1),
      params: z.unknown(),
      request: WebRequestSchema.optional(),
      // An idempotency key (api/idempotency.ts): the same key with the same hash within ttlS seconds
      // answers the call it made (flagged `replayed`) instead of making another; another hash is CONFLICT.
      idempotency: z
        .object({
          key: z.string().regex(STORED_IDEMPOTENCY_KEY, 'must be 1 to 300 printable ASCII characters'),
          hash: digest,
          ttlS: z.number().int().min(1).optional(), // default: IDEMPOTENCY_TTL_S
        })
        .optional(),
      schedule: ScheduleRefSchema.optional(), // the schedule and tick that started it
      callback: z.object({ url: z.string().min(1).max(2048) }).optional(), // its final record is POSTed there
      // A replay of that dead letter (listed, not replayed yet; else CONFLICT), which is marked replayed.
      replayOf: z.number().int().min(1).optional(),
      by: z.string().max(64).optional(), // the key that made it
    }),
  }),
  z.object({ msgType: z.literal('startCall'), content: z.object({ callNum: z.number().int().min(1), node: z.string().max(256) }) }),
  z.object({
    msgType: z.literal('requeueCall'),
    // unstartedOn: that node gave it back without running it (draining): its start is not counted.
    content: z.object({ callNum: z.number().int().min(1), unstartedOn: z.string().max(256).optional() }),
  }),
  z.object({
    msgType: z.literal('finishCall'),
    content: z.object({
      callNum: z.number().int().min(1),
      node: z.string().max(256).optional(),
      outcome: CallOutcomeSchema,
      // The outcome of a run of the function (a node's report), to which its retry rule applies
      // (common/retry.ts); unset: the platform ended the call (cancelled, could not run it).
      ran: z.boolean().optional(),
      // Which run reported it (the call's `attempts` when it started): a late report of an earlier run
      // changes nothing.
      attempt: z.number().int().min(1).optional(),
    }),
  }),
  z.object({ msgType: z.literal('getCall'), content: z.object({ callNum: z.number().int().min(1) }) }),
  z.object({
    msgType: z.literal('listCalls'),
    content: z
      .object({
        funcName: qualifiedNameSchema.optional(),
        namespace: namespaceSchema.optional(), // only its calls
        by: z.string().max(64).optional(), // only the calls this key made
        status: CallStatusSchema.optional(),
        limit: z.number().int().min(1).max(100_000).optional(),
        before: z.number().int().min(1).optional(),
        order: z.enum(['asc', 'desc']).default('asc'),
      })
      .default({}),
  }),
  z.object({ msgType: z.literal('listUnfinished'), content: z.object({}).passthrough().default({}) }),
  z.object({
    msgType: z.literal('listDeadLetters'), // newest first
    content: z
      .object({
        funcName: qualifiedNameSchema.optional(),
        namespace: namespaceSchema.optional(),
        limit: z.number().int().min(1).max(10_000).optional(),
      })
      .default({}),
  }),
  z.object({ msgType: z.literal('dismissDeadLetter'), content: z.object({ callNum: z.number().int().min(1) }) }),
  z.object({
    // Callback deliveries that are due, each claimed for leaseMs (its next try moves that far out), so
    // that two APIs never deliver the same one at once.
    msgType: z.literal('claimDeliveries'),
    content: z.object({ leaseMs: z.number().int().min(100).max(600_000), limit: z.number().int().min(1).max(1000).default(50) }),
  }),
  z.object({
    msgType: z.literal('recordDelivery'), // one try: the next one at `nextAt`, or the end (`state`)
    content: z
      .object({
        callNum: z.number().int().min(1),
        delivery: DeliverySchema,
        nextAt: z.string().datetime().optional(),
        state: z.enum(['pending', 'delivered', 'failed']),
      })
      .refine((c) => c.state !== 'pending' || c.nextAt !== undefined, { message: 'a pending delivery needs nextAt', path: ['nextAt'] }),
  }),
  z.object({ msgType: z.literal('putSchedule'), content: ScheduleSchema.omit({ lastRun: true }) }),
  z.object({
    msgType: z.literal('listSchedules'),
    content: z.object({ funcName: qualifiedNameSchema.optional(), namespace: namespaceSchema.optional() }).default({}),
  }),
  z.object({ msgType: z.literal('deleteSchedule'), content: z.object({ funcName: qualifiedNameSchema, id: ScheduleSchema.shape.id }) }),
  z.object({
    msgType: z.literal('recordScheduleRun'), // moves lastRun forward only (a later tick replaces an earlier one)
    content: z.object({
      funcName: qualifiedNameSchema,
      id: ScheduleSchema.shape.id,
      tick: z.string().max(64),
      callNum: z.number().int().min(1),
    }),
  }),
  z.object({ msgType: z.literal('putTrigger'), content: TriggerSchema.omit({ lease: true, stats: true }) }),
  z.object({
    msgType: z.literal('listTriggers'),
    content: z.object({ funcName: qualifiedNameSchema.optional(), namespace: namespaceSchema.optional() }).default({}),
  }),
  z.object({ msgType: z.literal('deleteTrigger'), content: z.object({ funcName: qualifiedNameSchema, id: TriggerIdSchema }) }),
  z.object({
    msgType: z.literal('pauseTrigger'),
    content: z.object({ funcName: qualifiedNameSchema, id: TriggerIdSchema, paused: z.boolean() }),
  }),
  // Takes or renews the lease of a trigger for `holder` (refused while another holder's lease runs: `held`
  // false), recording the holder's stats; `release` gives it up.
  z.object({
    msgType: z.literal('leaseTrigger'),
    content: z.object({
      funcName: qualifiedNameSchema,
      id: TriggerIdSchema,
      holder: z.string().min(1).max(128),
      leaseMs: z.number().int().min(100).max(600_000),
      stats: TriggerStatsSchema.optional(),
      release: z.boolean().optional(),
    }),
  }),
  // Backups (db/backup.ts, zfaas backup): backupOpen takes a snapshot of the whole store (every key as of
  // that instant) and answers a session id; each backupNext answers the next entries of it as records in
  // its blob frames (their layout is there), `done` with the last; backupClose ends a session early.
  // A session not asked for anything for a while is closed by the service.
  // Tenancy (db/tenancy.ts): namespaces with their quotas, keys (salted slow hashes only), secrets.
  z.object({ msgType: z.literal('createNamespace'), content: z.object({ name: namespaceSchema, quotas: QuotasSchema.default({}) }) }),
  z.object({ msgType: z.literal('getNamespace'), content: z.object({ name: namespaceSchema }) }),
  z.object({ msgType: z.literal('listNamespaces'), content: z.object({}).passthrough().default({}) }),
  // With its keys and secrets, and everything the store keeps under its name: calls (results, logs, dead
  // letters, callback deliveries), idempotency keys, and any schedule, function or runtime left.
  z.object({ msgType: z.literal('deleteNamespace'), content: z.object({ name: namespaceSchema }) }),
  z.object({ msgType: z.literal('setQuotas'), content: z.object({ name: namespaceSchema, quotas: QuotasSchema }) }),
  z.object({ msgType: z.literal('putKey'), content: KeyRecordSchema }), // a new key, or a rotated or revoked one
  z.object({ msgType: z.literal('getKey'), content: z.object({ id: KeyRecordSchema.shape.id }) }),
  z.object({ msgType: z.literal('listKeys'), content: z.object({ namespace: namespaceSchema }) }),
  z.object({
    msgType: z.literal('putSecret'), // the value (UTF-8 or binary) is the frame after the request
    content: z.object({ namespace: namespaceSchema, name: secretNameSchema }),
  }),
  z.object({ msgType: z.literal('listSecrets'), content: z.object({ namespace: namespaceSchema }) }),
  z.object({ msgType: z.literal('deleteSecret'), content: z.object({ namespace: namespaceSchema, name: secretNameSchema }) }),
  // For the nodes only: the values, decrypted, as blob frames in the order of `secrets` in the answer.
  z.object({
    msgType: z.literal('readSecrets'),
    content: z.object({ namespace: namespaceSchema, names: z.array(secretNameSchema).max(32) }),
  }),
  z.object({ msgType: z.literal('backupOpen'), content: z.object({}).passthrough().default({}) }),
  z.object({ msgType: z.literal('backupNext'), content: z.object({ id: BackupIdSchema }) }),
  z.object({ msgType: z.literal('backupClose'), content: z.object({ id: BackupIdSchema }) }),
]);
export type DbRequest = z.infer<typeof DbRequestSchema>;
export type DbMsgType = DbRequest['msgType'];
export type DbContent<K extends DbMsgType> =
  z.input<typeof DbRequestSchema> extends infer U ? (U extends { msgType: K; content?: infer C } ? C : never) : never;

// What went with a namespace (or was found left under its name when it was made again).
export interface Purged {
  calls: number;
  idempotencyKeys: number;
}

// createCall's answer: the new call, or, for an idempotency key already used with the same request, the
// call it made then, as it stands now, with `replayed: true`.
export type CreatedCall = Call & { replayed?: true };

// What each request answers with (in `data`).
export interface DbResults {
  ping: { ok: true };
  putRuntime: Runtime;
  getRuntime: Runtime | null;
  listRuntimes: Runtime[];
  deleteRuntime: { deleted: boolean };
  putArchive: { digest: string; size: number };
  getArchive: { digest: string; size: number } | null; // the archive itself is the blob frame
  addFunction: FunctionMeta;
  getFunction: FunctionMeta | null;
  listFunctions: FunctionMeta[];
  listVersions: FunctionMeta[];
  setCurrentVersion: FunctionMeta | null;
  deleteFunction: { deleted: boolean };
  deleteVersion: { deleted: boolean; current?: true };
  createCall: CreatedCall;
  startCall: { call: Call | null; changed: boolean };
  requeueCall: { call: Call | null; changed: boolean };
  finishCall: { call: Call | null; changed: boolean };
  getCall: Call | null;
  listCalls: Call[];
  listUnfinished: Call[];
  listDeadLetters: Call[];
  dismissDeadLetter: { call: Call | null; changed: boolean };
  claimDeliveries: Call[];
  recordDelivery: { call: Call | null; changed: boolean };
  putSchedule: Schedule;
  listSchedules: Schedule[];
  deleteSchedule: { deleted: boolean };
  recordScheduleRun: Schedule | null;
  putTrigger: Trigger;
  listTriggers: Trigger[];
  deleteTrigger: { deleted: boolean };
  pauseTrigger: Trigger | null;
  leaseTrigger: { trigger: Trigger | null; held: boolean };
  createNamespace: Namespace;
  getNamespace: Namespace | null;
  listNamespaces: Namespace[];
  setQuotas: Namespace;
  deleteNamespace: { deleted: boolean; keys: string[] } & Partial<Purged>; // keys: the ids of the keys that went with it
  putKey: KeyRecord;
  getKey: KeyRecord | null;
  listKeys: KeyRecord[];
  putSecret: SecretInfo;
  listSecrets: SecretInfo[];
  deleteSecret: { deleted: boolean };
  readSecrets: { secrets: SecretInfo[]; missing: string[] }; // values: the blob frames, in that order
  // idleMs: the session is closed after that long without a request; chunkBytes: a chunk's usual size.
  backupOpen: { id: string; startedAt: string; idleMs: number; chunkBytes: number };
  backupNext: { done: boolean; entries: number; bytes: number }; // the records are the blob frames, in order
  backupClose: { closed: boolean };
}

export const DbReplySchema = z.union([
  z.object({ id: z.number().optional(), ok: z.literal(true), data: z.unknown() }),
  z.object({ id: z.number().optional(), ok: z.literal(false), error: z.string(), code: z.string().optional() }),
]);
export type DbReply = z.infer<typeof DbReplySchema>;

export const DbEnvelopeSchema = z.object({ id: z.number().int().optional() }).passthrough();
