// The API <-> instance protocol. The API binds a ROUTER; each instance connects a DEALER whose routing id
// is its node id, so every message the API sends has exactly one target (the seed's PUB-SUB is gone).
// Frames: [JSON]. Heartbeats go both ways every HEARTBEAT_MS; a peer silent for HEARTBEAT_LIVENESS
// intervals is dead (Paranoid Pirate, ZeroMQ Guide ch. 4).
//
// A call's life on this link:
//   API -> invoke {call, fn: name@version, def?}   `def` (the function version and its runtime) is sent the
//                                                  first time a node gets that definition, then never again:
//                                                  the node validates it once and keeps it (a node without it
//                                                  reads it from the DB service itself).
//   node -> result {callNum, outcome}              as soon as the call ends, before the node has recorded it:
//                                                  waiters wake at once. The node keeps the call in `running`
//                                                  (heartbeats) until the DB service has its final state; if
//                                                  the node's life ends first (`life` changes, or it is lost),
//                                                  the API records the outcome it was sent.
//   node -> result {callNum, outcome, retryAt}     a failed run of a function with `retries`: recorded first,
//                                                  and the DB put the call back to PENDING until `retryAt`
//                                                  (common/retry.ts); the API dispatches it again then.
// Every message a node sends after its register carries the `life` it registered with. The API takes a
// result (or a giveBack) only from the node that holds the call in its current life; any other sender is
// asked to register again, and its word about a call counts only where the DB service's record says that
// node runs it (api/broker.ts).
// Archives do not travel here: a node reads them from the DB service directly.
import { z } from 'zod';
import { HttpRequestSchema } from './loader.js';
import { CallOutcomeSchema, FunctionMetaSchema, qualifiedNameSchema, PolicySchema, RuntimeSchema } from '../common/model.js';

export const HEARTBEAT_MS = 1_000;
export const HEARTBEAT_LIVENESS = 3;

const callNum = z.number().int().min(1);

export const NodeInfoSchema = z.object({
  id: z.string().min(1).max(128),
  capacity: z.number().int().min(1).max(10_000),
  policy: PolicySchema,
  labels: z.record(z.string(), z.string()).default({}),
  images: z.array(z.string()).default([]),
  version: z.string().default(''),
  // Random per process start: a node that registers with a new life lost whatever its last life held.
  life: z.string().max(64).default(''),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const NodeLoadSchema = z.object({
  running: z.array(callNum).default([]), // calls accepted and not yet recorded in the DB service
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

// instance -> API
export const ToApiSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('register'), node: NodeInfoSchema, load: NodeLoadSchema }),
  z.object({ type: z.literal('heartbeat'), load: NodeLoadSchema, life }),
  z.object({ type: z.literal('result'), callNum, outcome: CallOutcomeSchema, retryAt: z.string().max(64).optional(), life }),
  // Calls it accepted and will not run (it is draining): they never started, and go to another node.
  z.object({ type: z.literal('giveBack'), calls: z.array(callNum).max(100_000), life }),
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
  z.object({ type: z.literal('invoke'), call: InvokeCallSchema, fn: FnRefSchema, def: FnDefSchema.optional() }),
  z.object({ type: z.literal('configure'), ...NodeSettingsSchema.shape }),
  // The call was cancelled (it is already final in the DB service): stop it, kill its container.
  z.object({ type: z.literal('cancel'), callNum }),
  // A function was deployed that wants containers ready before its first call: with policy `function`
  // the node prepares it and starts a container holding it; with `runtime` it keeps stem cells of its
  // runtime. Sent to every node where that is the function's policy (its own setting, else the node's).
  z.object({ type: z.literal('preload'), fn: FunctionMetaSchema, runtime: RuntimeSchema }),
]);
export type ToInstance = z.infer<typeof ToInstanceSchema>;
