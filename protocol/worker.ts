// The instance <-> miniworker protocol (broker-worker): the instance binds a ROUTER on an ipc socket, each
// miniworker connects a DEALER with its own routing id, says `ready`, gets one command, answers, and is
// ready again. Frames: [JSON].
//
// A miniworker owns the containers it created (their attach streams live in its process). The instance
// keeps the model of every container (instance/containers.ts) and decides which one serves a call; the
// job says so in `use`:
//   none                 a fresh container for this call only (policy `none`)
//   {id}                 a warm container this miniworker holds, already loaded with the function
//   {id, load}           a stem cell this miniworker holds: load the function (its tree is in place) first
//   {id, create, load}   create the container, load the function, then run the call; keep it afterwards
import { z } from 'zod';
import { CallOutcomeSchema, FunctionMetaSchema, PolicySchema, RuntimeSchema } from '../common/model.js';

export const LimitsSchema = z.object({
  memoryMiB: z.number().int().min(16),
  cpus: z.number().positive(),
  pids: z.number().int().min(8),
  network: z.boolean(),
});

// How to create a long-lived container: with a loader (JSON lines over attach) or, for runtimes that only
// have a `run` command, an idle process next to which each call is a `docker exec`.
export const ContainerSpecSchema = z.object({
  id: z.string().min(1).max(200),
  image: z.string().min(1),
  mode: z.enum(['loader', 'exec']),
  loader: z.string().optional(), // the loader command (mode loader)
  run: z.string(), // the runtime's run command (mode exec)
  workdir: z.string(),
  bind: z.string(), // HOST:CONTAINER:ro, the one host path the container sees
  env: z.array(z.string()),
  labels: z.record(z.string(), z.string()),
  limits: LimitsSchema,
});
export type ContainerSpec = z.infer<typeof ContainerSpecSchema>;

export const LoadSchema = z.object({
  dir: z.string(),
  handler: z.string().nullable(),
  env: z.record(z.string(), z.string()),
});
export type Load = z.infer<typeof LoadSchema>;

export const UseSchema = z.object({
  id: z.string(),
  create: ContainerSpecSchema.optional(),
  load: LoadSchema.optional(),
  limits: LimitsSchema.optional(), // a stem cell taking a function gets the function's limits first
});
export type Use = z.infer<typeof UseSchema>;

export const JobSchema = z.object({
  jobId: z.number().int().min(1),
  callNum: z.number().int().min(1),
  params: z.unknown(),
  fn: FunctionMetaSchema,
  runtime: RuntimeSchema,
  treeDir: z.string(), // host path of the prepared function tree (archive + installed dependencies)
  policy: PolicySchema,
  replica: z.number().int().min(0).max(1).optional(), // redundant calls: which of the two runs
  use: UseSchema.nullable(),
});
export type Job = z.infer<typeof JobSchema>;

// miniworker -> instance
export const FromWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number().int() }),
  z.object({
    type: z.literal('result'),
    jobId: z.number().int(),
    callNum: z.number().int(),
    outcome: CallOutcomeSchema,
    // whether the container that ran it is still usable (a timeout or a crash removes it)
    containerAlive: z.boolean(),
  }),
  z.object({ type: z.literal('started'), id: z.string(), ok: z.boolean(), error: z.string().optional() }),
  z.object({ type: z.literal('removed'), id: z.string() }),
]);
export type FromWorker = z.infer<typeof FromWorkerSchema>;

// instance -> miniworker
export const ToWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job: JobSchema }),
  // start a warm container without a call: a stem cell (no load) or a preloaded function (load)
  z.object({ type: z.literal('prestart'), spec: ContainerSpecSchema, load: LoadSchema.optional() }),
  z.object({ type: z.literal('remove'), id: z.string() }),
  z.object({ type: z.literal('shutdown') }),
]);
export type ToWorker = z.infer<typeof ToWorkerSchema>;
