// The DB service's wire protocol. As in the seed: a request is {msgType, content}; we add an `id` so that
// one DEALER can have many requests in flight. Frames: ["", JSON, ...blobs] (the empty delimiter makes it
// REQ-compatible). Replies: ["", {id, ok, data} | {id, ok:false, error, code}, ...blobs].
import { z } from 'zod';
import {
  CallOutcomeSchema,
  CallSchema,
  CallStatusSchema,
  FunctionMetaSchema,
  NamespaceSchema,
  SecretInfoSchema,
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
} from '../common/model.js';
import { NAMESPACE_RE, namespaceSchema, NS_SEP } from '../common/namespace.js';
import { BuildEndSchema, BuildSchema } from '../common/build.js';
import { ImageSpecSchema } from '../common/image-function.js';

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

const node = z.string().min(1).max(256);

// An API process's id (several APIs on one store, db/api-lease.ts).
export const ApiIdSchema = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/);
const REQUEST_ID = /^[A-Za-z0-9-]{1,64}$/;
const life = z.string().max(64).optional();
const attempt = z.number().int().min(1).max(1000).optional();

// What may happen to a call after its creation (db/call-life.ts says what each does to it).
export const CallIntentSchema = z.discriminatedUnion('kind', [
  // A run of it began on that node (attempt: which run; unset, the next).
  z.object({ kind: z.literal('started'), node, life, attempt }),
  // It ended: `ran`, a run of the function ended so (its retry rule applies); else the platform ended it.
  // `holder`: the API gave the node the call (default); false, the table takes it only where the record
  // says that very node and life run it.
  z.object({
    kind: z.literal('outcome'),
    outcome: CallOutcomeSchema,
    ran: z.boolean(),
    node: node.optional(),
    life,
    attempt,
    holder: z.boolean().optional(),
  }),
  // The node (in that life) it ran on is gone, its run with it.
  z.object({ kind: z.literal('nodeLost'), node, life, why: z.string().max(1000) }),
  // A draining node gave it back before running it.
  z.object({ kind: z.literal('givenBack'), node }),
  z.object({ kind: z.literal('cancel') }),
  // The platform cannot run it (its function or runtime is gone, its tree could not be made).
  z.object({ kind: z.literal('fail'), error: z.string().max(100_000) }),
]);
export type CallIntent = z.infer<typeof CallIntentSchema>;

// What an intent did: the call as it stands after it, whether it changed, and why not when it did not.
export interface CallChange {
  call: Call | null;
  changed: boolean;
  why?: string;
}

// A backup session of the DB service (db/backup.ts): its id, as backupOpen hands it out.
export const BackupIdSchema = z.string().regex(/^[a-f0-9]{32}$/);

// Every message of the DB service, declared once: whether it only reads (it runs beside the write queue),
// writes, or writes a call (planned into the current group: one batch per group, db/server.ts); the schema
// of its content; and the schema of its answer's `data`, which the client checks before anyone reads it.
type Kind = 'read' | 'write' | 'callWrite';
const message = <K extends Kind, C extends z.ZodTypeAny, R extends z.ZodTypeAny>(kind: K, content: C, reply: R) => ({
  kind,
  content,
  reply,
});

const none = z.object({}).passthrough().default({});
const callNumber = z.number().int().min(1);
const versionNumber = z.number().int().min(1);
const deleted = z.object({ deleted: z.boolean() });
const change = z.object({ call: CallSchema.nullable(), changed: z.boolean(), why: z.string().optional() });
const schedule = ScheduleSchema;

// createCall's answer: the new call, or, for an idempotency key already used with the same request, the
// call it made then, as it stands now, with `replayed: true`.
const CreatedCallSchema = CallSchema.extend({ replayed: z.literal(true).optional() });

export const DB_MESSAGES = {
  // `engine`: which store the service keeps (an API runs with others only on a shared one, PostgreSQL).
  ping: message('read', none, z.object({ ok: z.literal(true), engine: z.enum(['leveldb', 'postgres']).optional() })),
  putRuntime: message('write', RuntimeSchema, RuntimeSchema),
  getRuntime: message('read', z.object({ name: qualifiedNameSchema }), RuntimeSchema.nullable()),
  listRuntimes: message('read', none, z.array(RuntimeSchema)),
  deleteRuntime: message('write', z.object({ name: qualifiedNameSchema }), deleted),
  // The archive is the frame after the request.
  putArchive: message('write', z.object({ digest }), z.object({ digest, size: z.number().int().min(0) })),
  // The archive itself is the blob frame of the answer.
  getArchive: message('read', z.object({ digest }), z.object({ digest, size: z.number().int().min(0) }).nullable()),
  addFunction: message(
    'write',
    z.object({
      functionName: qualifiedNameSchema,
      runtimeName: qualifiedNameSchema,
      digest,
      size: z.number().int().min(0),
      format: z.enum(['tar.gz', 'tar', 'zip']),
      originalname: z.string().max(1024).optional(),
      settings: FunctionSettingsSchema,
      build: BuildSchema.optional(), // `building` when its runtime has a dependencies step
      image: ImageSpecSchema.optional(), // a container-image function
    }),
    FunctionMetaSchema,
  ),
  // A version's build ended (a node ran it; common/build.ts says which end is taken): `fn` as it stands after.
  endBuild: message(
    'write',
    z.object({ name: qualifiedNameSchema, version: versionNumber, createdAt: z.string(), end: BuildEndSchema }),
    z.object({ fn: FunctionMetaSchema.nullable(), changed: z.boolean(), why: z.string().optional() }),
  ),
  getFunction: message('read', z.object({ name: qualifiedNameSchema, version: versionNumber.optional() }), FunctionMetaSchema.nullable()),
  listFunctions: message('read', none, z.array(FunctionMetaSchema)),
  listVersions: message('read', z.object({ name: qualifiedNameSchema }), z.array(FunctionMetaSchema)),
  setCurrentVersion: message('write', z.object({ name: qualifiedNameSchema, version: versionNumber }), FunctionMetaSchema.nullable()),
  deleteFunction: message('write', z.object({ name: qualifiedNameSchema }), deleted),
  // An old version (and its archive, when no other version holds it); the current one is refused (`current`).
  deleteVersion: message(
    'write',
    z.object({ name: qualifiedNameSchema, version: versionNumber }),
    z.object({ deleted: z.boolean(), current: z.literal(true).optional() }),
  ),
  createCall: message(
    'callWrite',
    z.object({
      funcName: qualifiedNameSchema,
      version: versionNumber,
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
      replayOf: callNumber.optional(),
      by: z.string().max(64).optional(), // the key that made it
      api: ApiIdSchema.optional(), // the API process that dispatches it (several APIs on one store)
      // Set by a client that may send it again to another DB service (db/resend.ts): the same id answers
      // the call it made, as it was made (not `replayed`).
      requestId: z.string().regex(REQUEST_ID).optional(),
    }),
    CreatedCallSchema,
  ),
  // Every change of a call after its creation: an intent the call's table (db/call-life.ts) accepts or
  // refuses, idempotently per call, attempt and node life.
  callIntent: message('callWrite', z.object({ callNum: callNumber, intent: CallIntentSchema }), change),
  getCall: message('read', z.object({ callNum: callNumber }), CallSchema.nullable()),
  // Several at once (an API looking whether calls it waits for ended through another API): those found.
  getCalls: message('read', z.object({ callNums: z.array(callNumber).max(1000) }), z.array(CallSchema)),
  listCalls: message(
    'read',
    z
      .object({
        funcName: qualifiedNameSchema.optional(),
        namespace: namespaceSchema.optional(), // only its calls
        by: z.string().max(64).optional(), // only the calls this key made
        status: CallStatusSchema.optional(),
        limit: z.number().int().min(1).max(100_000).optional(),
        before: callNumber.optional(),
        order: z.enum(['asc', 'desc']).default('asc'),
      })
      .default({}),
    z.array(CallSchema),
  ),
  listUnfinished: message('read', none, z.array(CallSchema)),
  // Newest first.
  listDeadLetters: message(
    'read',
    z
      .object({
        funcName: qualifiedNameSchema.optional(),
        namespace: namespaceSchema.optional(),
        limit: z.number().int().min(1).max(10_000).optional(),
      })
      .default({}),
    z.array(CallSchema),
  ),
  dismissDeadLetter: message('callWrite', z.object({ callNum: callNumber }), change),
  // Callback deliveries that are due, each claimed for leaseMs (its next try moves that far out), so that
  // two APIs never deliver the same one at once.
  claimDeliveries: message(
    'callWrite',
    z.object({ leaseMs: z.number().int().min(100).max(600_000), limit: z.number().int().min(1).max(1000).default(50) }),
    z.array(CallSchema),
  ),
  // One try: the next one at `nextAt`, or the end (`state`).
  recordDelivery: message(
    'callWrite',
    z
      .object({
        callNum: callNumber,
        delivery: DeliverySchema,
        nextAt: z.string().datetime().optional(),
        state: z.enum(['pending', 'delivered', 'failed']),
      })
      .refine((c) => c.state !== 'pending' || c.nextAt !== undefined, { message: 'a pending delivery needs nextAt', path: ['nextAt'] }),
    change,
  ),
  putSchedule: message('write', ScheduleSchema.omit({ lastRun: true }), schedule),
  listSchedules: message(
    'read',
    z.object({ funcName: qualifiedNameSchema.optional(), namespace: namespaceSchema.optional() }).default({}),
    z.array(schedule),
  ),
  deleteSchedule: message('write', z.object({ funcName: qualifiedNameSchema, id: ScheduleSchema.shape.id }), deleted),
  // Moves lastRun forward only (a later tick replaces an earlier one).
  recordScheduleRun: message(
    'write',
    z.object({ funcName: qualifiedNameSchema, id: ScheduleSchema.shape.id, tick: z.string().max(64), callNum: callNumber }),
    schedule.nullable(),
  ),
  putTrigger: message('write', TriggerSchema.omit({ lease: true, stats: true }), TriggerSchema),
  listTriggers: message(
    'read',
    z.object({ funcName: qualifiedNameSchema.optional(), namespace: namespaceSchema.optional() }).default({}),
    z.array(TriggerSchema),
  ),
  deleteTrigger: message('write', z.object({ funcName: qualifiedNameSchema, id: TriggerIdSchema }), deleted),
  pauseTrigger: message(
    'write',
    z.object({ funcName: qualifiedNameSchema, id: TriggerIdSchema, paused: z.boolean() }),
    TriggerSchema.nullable(),
  ),
  // Takes or renews the lease of a trigger for `holder` (refused while another holder's lease runs: `held`
  // false), recording the holder's stats; `release` gives it up.
  leaseTrigger: message(
    'write',
    z.object({
      funcName: qualifiedNameSchema,
      id: TriggerIdSchema,
      holder: z.string().min(1).max(128),
      leaseMs: z.number().int().min(100).max(600_000),
      stats: TriggerStatsSchema.optional(),
      release: z.boolean().optional(),
    }),
    z.object({ trigger: TriggerSchema.nullable(), held: z.boolean() }),
  ),
  // Several APIs on one store (db/api-lease.ts): each API renews its lease about every second; `lost`: it
  // lapsed and its calls went to another API meanwhile; `held` false: another process holds that id's
  // lease. `release`: it stops, its calls may go at once.
  leaseApi: message(
    'write',
    z.object({
      id: ApiIdSchema,
      token: z
        .string()
        .regex(/^[a-f0-9]{8,64}$/)
        .optional(), // the process asking: another's running lease of the id is refused
      leaseMs: z.number().int().min(100).max(600_000),
      release: z.boolean().optional(),
    }),
    z.object({ held: z.boolean(), lost: z.boolean() }),
  ),
  // At once: the unfinished calls of APIs whose lease lapsed (or that have none) become `adopter`'s, if its
  // own lease runs; `from`: the lapsed leases taken over.
  adoptCalls: message('write', z.object({ adopter: ApiIdSchema }), z.object({ calls: z.array(CallSchema), from: z.array(z.string()) })),
  // Tenancy (db/tenancy.ts): namespaces with their quotas, keys (salted slow hashes only), secrets.
  createNamespace: message('write', z.object({ name: namespaceSchema, quotas: QuotasSchema.default({}) }), NamespaceSchema),
  getNamespace: message('read', z.object({ name: namespaceSchema }), NamespaceSchema.nullable()),
  listNamespaces: message('read', none, z.array(NamespaceSchema)),
  // With its keys and secrets, and everything the store keeps under its name: calls (results, logs, dead
  // letters, callback deliveries), idempotency keys, and any schedule, function or runtime left. `keys`:
  // the ids of the keys that went with it.
  deleteNamespace: message(
    'write',
    z.object({ name: namespaceSchema }),
    z.object({ deleted: z.boolean(), keys: z.array(z.string()), calls: z.number().optional(), idempotencyKeys: z.number().optional() }),
  ),
  setQuotas: message('write', z.object({ name: namespaceSchema, quotas: QuotasSchema }), NamespaceSchema),
  putKey: message('write', KeyRecordSchema, KeyRecordSchema), // a new key, or a rotated or revoked one
  getKey: message('read', z.object({ id: KeyRecordSchema.shape.id }), KeyRecordSchema.nullable()),
  listKeys: message('read', z.object({ namespace: namespaceSchema }), z.array(KeyRecordSchema)),
  // The value (UTF-8 or binary) is the frame after the request.
  putSecret: message('write', z.object({ namespace: namespaceSchema, name: secretNameSchema }), SecretInfoSchema),
  listSecrets: message('read', z.object({ namespace: namespaceSchema }), z.array(SecretInfoSchema)),
  deleteSecret: message('write', z.object({ namespace: namespaceSchema, name: secretNameSchema }), deleted),
  // For the nodes only: the values, decrypted, as blob frames in the order of `secrets` in the answer.
  readSecrets: message(
    'read',
    z.object({ namespace: namespaceSchema, names: z.array(secretNameSchema).max(32) }),
    z.object({ secrets: z.array(SecretInfoSchema), missing: z.array(z.string()) }),
  ),
  // Backups (db/backup.ts, zfaas backup): backupOpen takes a snapshot of the whole store (every record as of
  // that instant) and answers a session id (closed after idleMs without a request); each backupNext answers
  // the next entries of it as records in its blob frames (their layout is there), `done` with the last;
  // backupClose ends a session early. Reads: a snapshot, and their session table is not the store.
  backupOpen: message('read', none, z.object({ id: z.string(), startedAt: z.string(), idleMs: z.number(), chunkBytes: z.number() })),
  backupNext: message('read', z.object({ id: BackupIdSchema }), z.object({ done: z.boolean(), entries: z.number(), bytes: z.number() })),
  backupClose: message('read', z.object({ id: BackupIdSchema }), z.object({ closed: z.boolean() })),
};

type Messages = typeof DB_MESSAGES;
export type DbMsgType = keyof Messages;
export type DbRequest = { [K in DbMsgType]: { msgType: K; content: z.output<Messages[K]['content']> } }[DbMsgType];
export type DbContent<K extends DbMsgType> = NonNullable<z.input<Messages[K]['content']>>;
// What each request answers with (in `data`).
export type DbResults = { [K in DbMsgType]: z.output<Messages[K]['reply']> };
// The message types of one kind (e.g. the call writes the DB service plans into a group).
export type DbMsgOfKind<K extends Kind> = { [T in DbMsgType]: Messages[T]['kind'] extends K ? T : never }[DbMsgType];
export const DB_MSG_TYPES = Object.keys(DB_MESSAGES) as DbMsgType[];
export const dbKind = (t: DbMsgType): Kind => DB_MESSAGES[t].kind;

// A request as it arrives: its type first, then its content by that type's schema.
export const DbRequestSchema: z.ZodType<DbRequest, z.ZodTypeDef, unknown> = z
  .object({ msgType: z.enum(DB_MSG_TYPES as [DbMsgType, ...DbMsgType[]]), content: z.unknown() })
  .passthrough()
  .transform((r, ctx) => {
    const parsed = DB_MESSAGES[r.msgType].content.safeParse(r.content);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: ['content', ...issue.path] });
      return z.NEVER;
    }
    return { msgType: r.msgType, content: parsed.data } as DbRequest;
  });

// What went with a namespace (or was found left under its name when it was made again).
export interface Purged {
  calls: number;
  idempotencyKeys: number;
}

export type CreatedCall = z.output<typeof CreatedCallSchema>;

export const DbReplySchema = z.union([
  z.object({ id: z.number().optional(), ok: z.literal(true), data: z.unknown() }),
  z.object({ id: z.number().optional(), ok: z.literal(false), error: z.string(), code: z.string().optional() }),
]);
export type DbReply = z.infer<typeof DbReplySchema>;

export const DbEnvelopeSchema = z.object({ id: z.number().int().optional() }).passthrough();
