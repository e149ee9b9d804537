// The API <-> instance protocol. The API binds a ROUTER; each instance connects a DEALER whose routing id
// is its node id, so every message the API sends has exactly one target (the seed's PUB-SUB is gone).
// Frames: [JSON]. Heartbeats go both ways every HEARTBEAT_MS; a peer silent for HEARTBEAT_LIVENESS
// intervals is dead (Paranoid Pirate, ZeroMQ Guide ch. 4).
//
// A call's life on this link. The node never writes a call: it tells the API, which records through the
// DB service's call table (db/call-life.ts), the one owner of a call's state.
//   API -> invoke {call, fn: name@version, def?}   `def` (the function version and its runtime) is sent the
//                                                  first time a node gets that definition, then never again:
//                                                  the node validates it once and keeps it (a node without it
//                                                  reads it from the DB service itself).
//   node -> started {callNum, attempt}             a run of it began (once per attempt).
//   node -> outcome {callNum, attempt, outcome, ran}
//                                                  it ended (`ran`: a run of the function ended so; else the
//                                                  node could not run it, or it was cancelled). The node keeps
//                                                  it, and keeps listing the call in `running`, until:
//   node -> head {callNum, attempt, status, headers}
//   node -> chunk {callNum, attempt, seq, data}     a web call asked to `stream` whose function streams its answer
//                                                  (protocol/loader.ts, version 3): its head, then each piece, in
//                                                  order (seq from 0), before its outcome; the API passes them on
//                                                  to the caller who waits on it and records nothing of them.
//   API -> recorded {callNum}                      the call's table has taken (or refused) it: the node
//                                                  forgets it. Until then it sends it again every few seconds
//                                                  and after each register; the table takes it once.
// Every message a node sends after its register carries the `life` it registered with. The API takes word
// of a call only from a node registered in that life (any other is asked to register again); the call's
// table then takes it only from the node and life that run it (or, for a run whose start was not heard,
// from the node that holds it).
// Archives do not travel here: a node reads them from the DB service directly.
import { z } from 'zod';
import { BASE64_RE, HttpRequestSchema, STREAM_CHUNK_LIMIT } from './loader.js';
import { CallOutcomeSchema, FunctionMetaSchema, qualifiedNameSchema, PolicySchema, RuntimeSchema } from '../common/model.js';
import type { MemoryLink } from '../common/memory-link.js';

export const HEARTBEAT_MS = 1_000;
export const HEARTBEAT_LIVENESS = 3;

const callNum = z.number().int().min(1);

// The version of this protocol: a node registers with the one it speaks and the API refuses another
// (`refused`). Changed whenever a message changes meaning: 2 when nodes stopped writing calls and began
// reporting `started`/`outcome` until `recorded`.
export const BROKER_PROTOCOL = 2;

export const NodeInfoSchema = z.object({
  id: z.string().min(1).max(128),
  capacity: z.number().int().min(1).max(10_000),
  policy: PolicySchema,
  labels: z.record(z.string(), z.string()).default({}),
  images: z.array(z.string()).default([]),
  version: z.string().default(''), // the node's software, for the operator's eye
  protocol: z.number().int().min(1).max(1000).default(1), // BROKER_PROTOCOL as the node speaks it (1: before it was sent)
  // Random per process start: a node that registers with a new life lost whatever its last life held.
  life: z.string().max(64).default(''),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const NodeLoadSchema = z.object({
  running: z.array(callNum).default([]), // calls it took and whose outcome is not recorded yet
  warm: z.record(z.string(), z.number().int().min(0)).default({}), // function key -> warm containers
  miniworkers: z.number().int().min(0).default(0),
  capacity: z.number().int().min(1).optional(), // calls it takes at once (running + queued on the node)
  containers: z.record(z.string(), z.number().int().min(0)).default({}), // state -> count
  stems: z.record(z.string(), z.number().int().min(0)).default({}), // runtime -> stem cells ready
  settings: z
    .object({ miniworkers: z.number().int(), stemCells: z.number().int(), idleTtlMs: z.number().int(), maxContainers: z.number().int() })
    .optional(),
  draining: z.boolean().optional(), // stopping: it takes no new calls, finishes those it runs, gives back the rest
});
export type NodeLoad = z.infer<typeof NodeLoadSchema>;

// What can change on a running node (PUT /node/:id): sizes of its miniworker and container pools.
export const NodeSettingsSchema = z
  .object({
    miniworkers: z.number().int().min(1).max(256).optional(),
    stemCells: z.number().int().min(0).max(64).optional(),
    maxContainers: z.number().int().min(1).max(1024).optional(),
    idleTtlS: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
  })
  .strict();
export type NodeSettings = z.infer<typeof NodeSettingsSchema>;

// The sender's life (NodeInfo.life); optional for nodes of an earlier version, which do not send it.
const life = z.string().max(64).optional();
const attempt = z.number().int().min(1).max(1000);

// A run that began by starting a container (fresh: policy none; new: made for the call; stem: a stem cell
// took the function), and how long the start took: the run's time beyond the function's own.
export const ColdStartSchema = z.object({
  fn: qualifiedNameSchema, // the function whose container it was
  kind: z.enum(['fresh', 'new', 'stem']),
  ms: z.number().int().min(0).max(86_400_000),
});
export type ColdStart = z.infer<typeof ColdStartSchema>;

// instance -> API
export const ToApiSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('register'), node: NodeInfoSchema, load: NodeLoadSchema }),
  z.object({ type: z.literal('heartbeat'), load: NodeLoadSchema, life }),
  z.object({ type: z.literal('started'), callNum, attempt, life }),
  z.object({
    type: z.literal('outcome'),
    callNum,
    attempt: attempt.optional(),
    outcome: CallOutcomeSchema,
    ran: z.boolean(),
    start: ColdStartSchema.optional(),
    life,
  }),
  // Calls it accepted and will not run (it is draining, or `full`: linked to several APIs, it had no room
  // for one): they never started, and go to another node.
  // A streamed web answer (protocol/loader.ts, version 3): the head the node checked, then the pieces.
  z.object({
    type: z.literal('head'),
    callNum,
    attempt,
    status: z.number().int().min(100).max(599),
    headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    life,
  }),
  z.object({
    type: z.literal('chunk'),
    callNum,
    attempt,
    seq: z.number().int().min(0),
    data: z
      .string()
      .max(Math.ceil(STREAM_CHUNK_LIMIT / 3) * 4)
      .regex(BASE64_RE), // at most STREAM_CHUNK_LIMIT bytes
    life,
  }),
  z.object({ type: z.literal('giveBack'), calls: z.array(callNum).max(100_000), full: z.boolean().optional(), life }),
  z.object({ type: z.literal('bye'), life }),
]);
export type ToApi = z.infer<typeof ToApiSchema>;

// redundant: the node runs it twice; the first DONE wins and the other run is cancelled.
// http: a call through the function's web path carries the request as it came (protocol/loader.ts).
export const InvokeCallSchema = z.object({
  callNum,
  params: z.unknown(),
  redundant: z.boolean().optional(),
  http: HttpRequestSchema.optional(),
  attempt: z.number().int().min(1).max(1000).optional(), // which run of the call this is (1: the first)
  // A web caller waits on it: a streamed answer goes to the API as it comes (head, chunk). Unset (an API
  // before streams), the node gathers a streamed answer into one response.
  stream: z.boolean().optional(),
});

// Which function version a call is for; the definition itself travels once per node (see `def`).
export const FnRefSchema = z.object({ name: qualifiedNameSchema, version: z.number().int().min(1) });
export type FnRef = z.infer<typeof FnRefSchema>;
export const FnDefSchema = z.object({ fn: FunctionMetaSchema, runtime: RuntimeSchema });
export type FnDef = z.infer<typeof FnDefSchema>;

// API -> instance
export const ToInstanceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), heartbeatMs: z.number().int().min(10) }),
  z.object({ type: z.literal('heartbeat') }),
  z.object({ type: z.literal('reregister') }),
  // The register was refused (another protocol version): the node is not given calls; it says why to its operator.
  z.object({ type: z.literal('refused'), why: z.string().max(1000) }),
  z.object({ type: z.literal('invoke'), call: InvokeCallSchema, fn: FnRefSchema, def: FnDefSchema.optional() }),
  // The call's table has the node's outcome of it (taken, or refused as said before): the node forgets it.
  z.object({ type: z.literal('recorded'), callNum }),
  z.object({ type: z.literal('configure'), ...NodeSettingsSchema.shape }),
  // The call was cancelled (it is already final in the DB service): stop it, kill its container.
  z.object({ type: z.literal('cancel'), callNum }),
  // A function was deployed that wants containers ready before its first call: with policy `function`
  // the node prepares it and starts a container holding it; with `runtime` it keeps stem cells of its
  // runtime. Sent to every node where that is the function's policy (its own setting, else the node's).
  z.object({ type: z.literal('preload'), fn: FunctionMetaSchema, runtime: RuntimeSchema }),
  // The function's floor on this node, its share of `minWarm`: keep at least `floor` containers holding
  // that version (`def`) loaded, idle or not. 0 (no def needed): the function has none here.
  z.object({
    type: z.literal('keepWarm'),
    name: qualifiedNameSchema,
    floor: z.number().int().min(0).max(1024),
    def: z.object({ fn: FunctionMetaSchema, runtime: RuntimeSchema }).optional(),
  }),
  // Build this function version (common/build.ts): run its runtime's dependencies step once, store the
  // built tree in the DB service by digest and record the build's end there (endBuild). Sent to one node.
  z.object({ type: z.literal('build'), fn: FunctionMetaSchema, runtime: RuntimeSchema }),
]);
export type ToInstance = z.infer<typeof ToInstanceSchema>;

// The link between the broker and a node in the same process (common/memory-link.ts) carries these.
export type BrokerMemory = MemoryLink<ToApi, ToInstance>;
