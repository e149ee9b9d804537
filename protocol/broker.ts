// The API <-> instance protocol. The API binds a ROUTER; each instance connects a DEALER whose routing id
// is its node id, so every message the API sends has exactly one target (the seed's PUB-SUB is gone).
// Frames: [JSON, ...blobs]. Heartbeats go both ways every HEARTBEAT_MS; a peer silent for
// HEARTBEAT_LIVENESS intervals is dead (Paranoid Pirate, ZeroMQ Guide ch. 4).
import { z } from 'zod';
import { CallOutcomeSchema, FunctionMetaSchema, PolicySchema, RuntimeSchema } from '../common/model.js';

export const HEARTBEAT_MS = 1_000;
export const HEARTBEAT_LIVENESS = 3;

const digest = z.string().regex(/^[a-f0-9]{64}$/);
const callNum = z.number().int().min(1);

export const NodeInfoSchema = z.object({
  id: z.string().min(1).max(128),
  capacity: z.number().int().min(1).max(10_000),
  policy: PolicySchema,
  labels: z.record(z.string(), z.string()).default({}),
  images: z.array(z.string()).default([]),
  version: z.string().default(''),
});
export type NodeInfo = z.infer<typeof NodeInfoSchema>;

export const NodeLoadSchema = z.object({
  running: z.array(callNum).default([]), // calls accepted and not yet reported
  warm: z.record(z.string(), z.number().int().min(0)).default({}), // function key -> warm containers
  miniworkers: z.number().int().min(0).default(0),
  capacity: z.number().int().min(1).optional(), // calls it takes at once (running + queued on the node)
  containers: z.record(z.string(), z.number().int().min(0)).default({}), // state -> count
  stems: z.record(z.string(), z.number().int().min(0)).default({}), // runtime -> stem cells ready
  settings: z
    .object({ miniworkers: z.number().int(), stemCells: z.number().int(), idleTtlMs: z.number().int(), maxContainers: z.number().int() })
    .optional(),
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

// instance -> API
export const ToApiSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('register'), node: NodeInfoSchema, load: NodeLoadSchema }),
  z.object({ type: z.literal('heartbeat'), load: NodeLoadSchema }),
  z.object({ type: z.literal('result'), callNum, outcome: CallOutcomeSchema, recorded: z.boolean() }),
  z.object({ type: z.literal('fetchArchive'), digest }),
  z.object({ type: z.literal('bye') }),
]);
export type ToApi = z.infer<typeof ToApiSchema>;

// redundant: the node runs it on two miniworkers; the first DONE wins and the other run is cancelled.
export const InvokeCallSchema = z.object({ callNum, funcName: z.string(), params: z.unknown(), redundant: z.boolean().optional() });

// API -> instance
export const ToInstanceSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), heartbeatMs: z.number().int().min(10) }),
  z.object({ type: z.literal('heartbeat') }),
  z.object({ type: z.literal('reregister') }),
  z.object({ type: z.literal('invoke'), call: InvokeCallSchema, fn: FunctionMetaSchema, runtime: RuntimeSchema }),
  z.object({ type: z.literal('archive'), digest, error: z.string().optional() }), // the archive is the next frame
  z.object({ type: z.literal('configure'), ...NodeSettingsSchema.shape }),
  // a function with policy `function` was deployed: nodes prepare it and start a warm container
  z.object({ type: z.literal('preload'), fn: FunctionMetaSchema, runtime: RuntimeSchema }),
]);
export type ToInstance = z.infer<typeof ToInstanceSchema>;
