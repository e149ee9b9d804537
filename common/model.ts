// The objects every part shares: Runtime, FunctionMeta, Call. The seed's fields stay; we only add.
import { z } from 'zod';
import { NAMESPACE_RE, NS_SEP } from './namespace.js';
import { FaultSchema } from './faults.js';
import { BuildSchema } from './build.js';
import { HttpRequestSchema, HttpResponseSchema } from '../protocol/loader.js';
import { ImageSpecSchema } from './image-function.js';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const nameSchema = z
  .string()
  .regex(NAME_RE, 'must be 1-128 characters: letters, digits, ".", "_" or "-", starting with a letter or digit');
// A name inside the services: NAME in the default namespace, NAMESPACE~NAME in another
// (common/namespace.ts). What people send is a bare name (nameSchema); the API qualifies it.
export const QUALIFIED_NAME_RE = new RegExp(`^(?:${NAMESPACE_RE.source.slice(1, -1)}${NS_SEP})?${NAME_RE.source.slice(1)}`);
export const qualifiedNameSchema = z
  .string()
  .regex(QUALIFIED_NAME_RE, 'must be NAME or NAMESPACE~NAME (NAME: letters, digits, ".", "_" or "-")');
// Images may carry a registry, path and tag; keep the charset tight so it never reaches a shell.
export const imageSchema = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[a-z0-9][a-z0-9._\-/:@]*$/, 'is not a valid Docker image reference');
export const absPathSchema = z
  .string()
  .regex(/^\/[A-Za-z0-9._\-/]*$/, 'must be an absolute path')
  .refine((p) => !p.split('/').includes('..'), 'must not contain ".."');

// The Docker (OCI) runtime its containers run under, such as runsc (gVisor) or kata-runtime, for
// code that must not share the host's kernel; unset: the engine's default (runc).
export const isolationSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must name a Docker runtime the nodes have, such as runsc or kata-runtime');

export const RuntimeSchema = z.object({
  name: qualifiedNameSchema, // a runtime private to a namespace has a qualified name; a shared one a bare name
  image: imageSchema,
  path: absPathSchema,
  dependencies: z.string().max(4096).default(''),
  run: z.string().min(1).max(4096),
  // A long-lived loader command speaking JSON lines (built-in runtimes); without it every call runs `run`.
  loader: z.string().max(4096).optional(),
  // Run `dependencies` only when one of these files in the function's root has something in it
  // (a requirements.txt with a package line, a package.json with dependencies); empty: always run it.
  dependenciesIf: z
    .array(z.string().regex(/^[A-Za-z0-9._-]+$/))
    .max(16)
    .optional(),
  isolation: isolationSchema.optional(),
});
export type Runtime = z.infer<typeof RuntimeSchema>;

// The body of POST /registerRuntime: name defaults to the image (the seed names runtimes by image).
export const RuntimeInputSchema = z
  .object({
    name: nameSchema.optional(),
    image: imageSchema,
    path: absPathSchema.default('/ws'),
    dependencies: z.string().max(4096).default(''),
    run: z.string().min(1).max(4096),
    loader: z.string().max(4096).optional(),
    dependenciesIf: z
      .array(z.string().regex(/^[A-Za-z0-9._-]+$/))
      .max(16)
      .optional(),
    isolation: isolationSchema.optional(),
  })
  .strict();
export type RuntimeInput = z.infer<typeof RuntimeInputSchema>;

export const POLICIES = ['none', 'runtime', 'function'] as const;
export const PolicySchema = z.enum(POLICIES);
export type Policy = z.infer<typeof PolicySchema>;

// The settings' bounds, one place: the schema checks stored settings against them and the readers of
// what people send (common/units.ts, the registerFunction handler) word their refusals with them.
export const SETTING_LIMITS = {
  timeout: { min: 1, max: 900, default: 30 }, // seconds
  memory: { min: 16, max: 8192, default: 256 }, // MiB
  cpus: { min: 0.05, max: 64, default: 1 },
  pids: { min: 8, max: 4096, default: 128 },
  concurrency: { min: 1, max: 10_000 },
  maxContainers: { min: 1, max: 1024 }, // a function's containers on one node
  containerConcurrency: { min: 1, max: 1000, default: 1 }, // calls one container of a function runs at once
  minWarm: { min: 0, max: 1024 }, // a function's containers kept loaded across the cluster
  rateLimit: { min: 1, max: 100_000, default: 50 }, // web requests per second of a public function
  retries: { min: 0, max: 10, default: 0 }, // runs after a first that ended in ERROR or TIMEOUT
  retryBackoff: { min: 100, max: 3_600_000, default: 1000 }, // ms before the first retry; doubles each time
} as const;
export const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const ENV_VALUE_MAX = 32768;
const L = SETTING_LIMITS;

export const FunctionSettingsSchema = z.object({
  timeout: z.number().int().min(L.timeout.min).max(L.timeout.max).default(L.timeout.default), // seconds
  memory: z.number().int().min(L.memory.min).max(L.memory.max).default(L.memory.default), // MiB
  cpus: z.number().min(L.cpus.min).max(L.cpus.max).default(L.cpus.default),
  pids: z.number().int().min(L.pids.min).max(L.pids.max).default(L.pids.default),
  policy: PolicySchema.optional(), // unset: the node's policy
  network: z.boolean().default(false),
  retry: z.boolean().default(true), // may a call be run again when its node died before reporting?
  // Opt-in: a call whose run ended in ERROR or TIMEOUT runs again up to `retries` times, the first after
  // `retryBackoff` ms, each next one after twice as long; one that fails them all is a dead letter.
  retries: z.number().int().min(L.retries.min).max(L.retries.max).default(L.retries.default),
  retryBackoff: z.number().int().min(L.retryBackoff.min).max(L.retryBackoff.max).default(L.retryBackoff.default),
  // At most this many calls of the function run at once across the cluster (unset: no limit beyond the
  // nodes' capacity); more wait in the API's queue without holding up other functions' calls.
  concurrency: z.number().int().min(L.concurrency.min).max(L.concurrency.max).optional(),
  // At most this many containers of the function on one node (unset: the node's own limit); its further
  // calls on that node wait for one of them instead of starting another.
  maxContainers: z.number().int().min(L.maxContainers.min).max(L.maxContainers.max).optional(),
  // At most this many of its calls run at once in one of its containers (Knative's containerConcurrency;
  // unset: 1, one at a time). Only where the runtime's loader can (node and python, protocol 3).
  containerConcurrency: z.number().int().min(L.containerConcurrency.min).max(L.containerConcurrency.max).optional(),
  // At least this many containers holding the function's current version are kept loaded across the
  // nodes, idle or not (provisioned concurrency): its calls up to that many at once meet no cold start.
  // Unset or 0: containers come with calls and go after the node's idle time (scale to zero).
  minWarm: z.number().int().min(L.minWarm.min).max(L.minWarm.max).optional(),
  handler: z
    .string()
    .max(256)
    .regex(/^[A-Za-z0-9_./-]+\.[A-Za-z_][A-Za-z0-9_]*$/, 'must be FILE.EXPORT')
    .refine((h) => !h.startsWith('/') && !h.split('/').includes('..'), 'must name a file inside the function (no leading "/", no "..")')
    .optional(),
  env: z.record(z.string().regex(ENV_KEY_RE), z.string().max(ENV_VALUE_MAX)).default({}),
  // The calling convention (protocol/loader.ts): unset is `auto`, the loader tells it from the handler.
  format: z.enum(['auto', 'json', 'lambda', 'lambda-v1', 'openwhisk', 'openfaas', 'gcf']).optional(),
  // Its web path (/function/NAME/...) answers without the API token; every other route still needs it.
  public: z.boolean().default(false),
  // Secrets of its namespace it reads, each a file /var/zfaas/secrets/NAME in its container.
  secrets: z
    .array(z.lazy(() => secretNameSchema))
    .max(32)
    .default([]),
  // Web requests per second a public function takes (more get 429 with Retry-After); unset: the default.
  rateLimit: z.number().int().min(L.rateLimit.min).max(L.rateLimit.max).optional(),
});
export type FunctionSettings = z.infer<typeof FunctionSettingsSchema>;

export const FunctionMetaSchema = z.object({
  functionName: qualifiedNameSchema,
  runtimeName: qualifiedNameSchema,
  version: z.number().int().min(1),
  digest: z.string().regex(/^[a-f0-9]{64}$/),
  size: z.number().int().min(0),
  format: z.enum(['tar.gz', 'tar', 'zip']),
  originalname: z.string().optional(),
  createdAt: z.string(),
  settings: FunctionSettingsSchema,
  build: BuildSchema.optional(), // its dependencies step, run at deploy (common/build.ts); unset: none to run
  image: ImageSpecSchema.optional(), // a container-image function: its image serves its calls (common/image-function.ts)
});
export type FunctionMeta = z.infer<typeof FunctionMetaSchema>;

export const CALL_STATUSES = ['PENDING', 'RUNNING', 'DONE', 'ERROR', 'TIMEOUT'] as const;
export const CallStatusSchema = z.enum(CALL_STATUSES);
export type CallStatus = z.infer<typeof CallStatusSchema>;
export const FINAL_STATUSES: readonly CallStatus[] = ['DONE', 'ERROR', 'TIMEOUT'];
export const isFinal = (s: CallStatus): boolean => FINAL_STATUSES.includes(s);

// A call made through the function's web path, as its record keeps it: the request's line, bounded. The
// request itself (headers, body) is the loader protocol's HttpRequest, which the record does not keep.
const { method, path, query } = HttpRequestSchema.shape;
export const WebRequestSchema = z.object({ method: method.max(16), path: path.max(2048), query: query.max(4096) });
export type WebRequest = z.infer<typeof WebRequestSchema>;

// The web response a function chose (the loader protocol's HttpResponse). The body (base64) travels to the
// API that answers the caller; the call record keeps only the status, the headers and the size.
export const WebResponseSchema = HttpResponseSchema.extend({
  body: HttpResponseSchema.shape.body.optional(),
  bytes: z.number().int().min(0).optional(),
  streamed: z.boolean().optional(), // sent to the caller as the function wrote it (its body here: the first KiB)
});
export type WebResponse = z.infer<typeof WebResponseSchema>;

// The schedule (cron trigger) and the tick a call was started for (api/schedules.ts).
export const ScheduleRefSchema = z.object({ id: z.string().regex(/^[a-f0-9]{1,64}$/), tick: z.string().max(64) });
export type ScheduleRef = z.infer<typeof ScheduleRefSchema>;

// A run of a call that failed and was followed by another (the call's own fields hold the last run).
export const AttemptSchema = z.object({
  attempt: z.number().int().min(1),
  status: z.enum(['ERROR', 'TIMEOUT']),
  error: z.string().optional(),
  fault: FaultSchema.optional(),
  logs: z.string().optional(),
  node: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string(),
  durationMs: z.number().optional(),
});
export type Attempt = z.infer<typeof AttemptSchema>;

// One try at POSTing a call's final record to its callback URL: the receiver's HTTP status, or why none came.
export const DeliverySchema = z.object({
  at: z.string(),
  status: z.number().int().optional(),
  error: z.string().optional(),
});
export type Delivery = z.infer<typeof DeliverySchema>;

// Where a call's final record goes (api/callbacks): `waiting` for the call to end, then `pending` until a
// 2xx answer (`delivered`) or until its tries ran out (`failed`); each try is kept.
export const CallbackSchema = z.object({
  url: z.string().max(2048),
  state: z.enum(['waiting', 'pending', 'delivered', 'failed']),
  deliveries: z.array(DeliverySchema).default([]),
  nextAt: z.string().optional(), // while pending: the next try (or when a claimed try's lease runs out)
});
export type Callback = z.infer<typeof CallbackSchema>;

export const CallSchema = z.object({
  callNum: z.number().int().min(1),
  funcName: qualifiedNameSchema,
  version: z.number().int().min(1).optional(),
  params: z.unknown(),
  status: CallStatusSchema,
  result: z.string(),
  error: z.string().optional(),
  logs: z.string().optional(),
  node: z.string().optional(),
  life: z.string().max(64).optional(), // while RUNNING: the life of the node process its run is on
  attempts: z.number().int().min(0).default(0),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  durationMs: z.number().optional(),
  request: WebRequestSchema.optional(),
  response: WebResponseSchema.optional(),
  cancelled: z.boolean().optional(), // ended by DELETE /call/N (status ERROR)
  fault: FaultSchema.optional(), // why it failed, as a kind (common/faults.ts); ERROR and TIMEOUT only
  schedule: ScheduleRefSchema.optional(), // started by a schedule, for this tick
  history: z.array(AttemptSchema).optional(), // earlier runs that failed and were retried
  retryAt: z.string().optional(), // PENDING after a failed run: when it runs again
  // A dead letter: it failed every run its function's `retries` allowed. `listed` in GET /dead-letters
  // until replayed (as `replayedAs`) or dismissed.
  deadLetter: z.enum(['listed', 'replayed', 'dismissed']).optional(),
  by: z.string().max(64).optional(), // the id of the key that made it (an invoker reads only its own calls)
  api: z.string().max(128).optional(), // the API process that dispatches it (several APIs on one store)
  replayOf: z.number().int().min(1).optional(), // made by replaying that dead letter
  replayedAs: z.number().int().min(1).optional(),
  callback: CallbackSchema.optional(),
});
export type Call = z.infer<typeof CallSchema>;

// What a node reports when a call ends.
export const CallOutcomeSchema = z.object({
  status: z.enum(['DONE', 'ERROR', 'TIMEOUT']),
  result: z.string(),
  error: z.string().optional(),
  logs: z.string().optional(),
  durationMs: z.number().optional(),
  response: WebResponseSchema.optional(), // a web call's answer, as the function chose it
  cancelled: z.boolean().optional(),
  fault: FaultSchema.optional(), // a failure's kind (common/faults.ts)
  // Which run of the call it ended (ZFAAS_ATTEMPT): the record counts at least that many attempts, even when
  // the node's word that the run began was lost. Never stored as a field of its own.
  attempt: z.number().int().min(1).max(1000).optional(),
});
export type CallOutcome = z.infer<typeof CallOutcomeSchema>;

// Tenancy (api/tenancy): namespaces, their keys and quotas, and the secrets of each.
export const ROLES = ['invoker', 'developer', 'admin'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

// What one namespace may use; unset: no limit beyond the platform's own.
export const QuotasSchema = z
  .object({
    running: z.number().int().min(1).max(100_000).optional(), // calls running (or starting) at once
    perMinute: z.number().int().min(1).max(10_000_000).optional(), // calls made per minute (429 beyond)
    functions: z.number().int().min(0).max(100_000).optional(), // functions deployed
    archiveBytes: z.number().int().min(0).optional(), // bytes of every stored version's archive, summed
    memory: z.number().int().min(SETTING_LIMITS.memory.min).max(SETTING_LIMITS.memory.max).optional(), // MiB a function may ask for
    cpus: z.number().min(SETTING_LIMITS.cpus.min).max(SETTING_LIMITS.cpus.max).optional(), // CPUs a function may ask for
    pids: z.number().int().min(SETTING_LIMITS.pids.min).max(SETTING_LIMITS.pids.max).optional(), // processes a function may ask for
    schedules: z.number().int().min(0).max(100_000).optional(), // schedules of its functions, together
    // Seconds a schedule's ticks are apart at the closest (unset: 60 for keys; the operator is not held to it).
    scheduleInterval: z.number().int().min(1).max(31_536_000).optional(),
    // The runtimes its functions may use, by the names the namespace uses (a shared one's, or its own).
    runtimes: z.array(nameSchema).max(256).optional(),
    // The Docker runtimes its functions' containers must run under: a runtime without `isolation` runs
    // under the engine's default, runc (list "runc" to allow it).
    isolation: z.array(isolationSchema).min(1, 'names at least one Docker runtime').max(16).optional(),
  })
  .strict();
export type Quotas = z.infer<typeof QuotasSchema>;

export const NamespaceSchema = z.object({
  name: z.string().regex(NAMESPACE_RE),
  createdAt: z.string(),
  quotas: QuotasSchema.default({}),
});
export type Namespace = z.infer<typeof NamespaceSchema>;

// A key as stored: never the key itself, only its salt and slow hash (api/tenancy/keys.ts).
export const KEY_ID_RE = /^[a-f0-9]{16}$/;
export const KeyRecordSchema = z.object({
  id: z.string().regex(KEY_ID_RE),
  namespace: z.string().regex(NAMESPACE_RE),
  role: RoleSchema,
  salt: z.string().regex(/^[a-f0-9]{32}$/),
  hash: z.string().regex(/^[a-f0-9]{64}$/),
  createdAt: z.string(),
  rotatedAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type KeyRecord = z.infer<typeof KeyRecordSchema>;
// A key as shown: what it is, never what opens it.
export type KeyInfo = Omit<KeyRecord, 'salt' | 'hash'>;

export const SECRET_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const secretNameSchema = z
  .string()
  .regex(SECRET_NAME_RE, 'must be 1-64 characters: letters, digits, ".", "_" or "-", starting with a letter or digit');
export const SECRET_VALUE_MAX = 64 * 1024;
// A secret as listed: never its value.
export const SecretInfoSchema = z.object({
  name: secretNameSchema,
  version: z.number().int().min(1),
  bytes: z.number().int().min(0),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type SecretInfo = z.infer<typeof SecretInfoSchema>;
