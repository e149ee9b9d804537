// The instance <-> miniworker protocol (broker-worker, after the ZeroMQ Guide's Paranoid Pirate): the
// instance binds a ROUTER on an ipc socket, each miniworker connects a DEALER with its own routing id and
// says `ready` once; from then on it takes one command at a time, and its reply to a command is also its
// "ready" for the next.
//
// Miniworkers are the node's hands on Docker: every function container is created, changed and removed
// by the one miniworker that holds it (its dockerode handle and output stream live in that process), from
// the specs in common/container-spec.ts. The instance decides (which container, which miniworker, when to
// remove) and talks to warm loaders directly over their sockets (protocol/loader.ts); it never calls
// Docker for a function container. Container names are chosen by the instance and sent with the command,
// so a container is known from the moment its create is sent, and found and removed after any crash.
//
//   create {plan}            -> created {id, ok, error?}      a held container, started (a loader then dials in)
//   adopt {id, treeDir, ..}  -> adopted {id, ok, error?}      a stem cell takes a function: its tree and limits
//   run {jobId, job}         -> ran {jobId, outcome}          one call in a fresh container (policy none)
//   exec {jobId, id, job}    -> ran {jobId, outcome, alive}   one call as a `docker exec` in a held container
//   deps {jobId, deps}       -> depsDone {jobId, run}         the dependencies step of a function version
//   remove {id, report?}     -> removed {id, exit?}           kill and remove; `report`: say how it ended first
//   sweep {miniworker?,keep?} -> swept {removed}              remove what an earlier life of the node, or a
//                                                            miniworker that died, left behind; `keep`: the
//                                                            name prefix of this life's miniworkers, whose
//                                                            containers stay
//   shutdown                                                  finish what is in flight, remove all, exit
//                            <- exited {id}                  unasked: a held container's process ended
import { z } from 'zod';
import { CallOutcomeSchema, FunctionMetaSchema, RuntimeSchema, secretNameSchema } from '../common/model.js';

const id = z.string().min(1).max(200);
const jobId = z.number().int().min(1);

export const LimitsSchema = z.object({
  memoryMiB: z.number().int().min(16),
  cpus: z.number().positive(),
  pids: z.number().int().min(8),
  network: z.boolean(),
});

// A container to create and keep: a stem cell (no fn) or one holding a function version.
export const PlanSchema = z.object({
  id,
  runtime: RuntimeSchema,
  fn: FunctionMetaSchema.optional(),
  treeDir: z.string().min(1),
  lineDir: z.string().min(1).optional(), // with a loader: the folder holding the node's socket
  bridgeDir: z.string().min(1).optional(), // an image function: the host folder holding zfaas-bridge
});
export type Plan = z.infer<typeof PlanSchema>;

// A secret a call's function reads as a file (protocol/loader.ts, "Secrets"): `stamp` says which version of
// it this is (a container holding that stamp already has the value); the value, base64, only ever travels
// on this in-memory socket and into the container through an exec's stdin.
export const SecretFileSchema = z.object({
  name: secretNameSchema,
  stamp: z.string().min(1).max(100),
  value: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
});
export type SecretFile = z.infer<typeof SecretFileSchema>;

// Which secrets a container's folder holds: name -> stamp.
export type SecretStamps = Map<string, string>;
// Whether a folder holding `held` is what a call with `files` needs: each at its stamp, nothing else.
export const inSync = (files: readonly SecretFile[] | undefined, held: SecretStamps): boolean =>
  (files ?? []).length === held.size && (files ?? []).every((f) => held.get(f.name) === f.stamp);

// One call, for a run in a fresh container or a `docker exec`.
export const RunJobSchema = z.object({
  name: id, // the fresh container's name (run), so that it can be cancelled before it answers
  callNum: z.number().int().min(1),
  params: z.unknown(),
  fn: FunctionMetaSchema,
  runtime: RuntimeSchema,
  treeDir: z.string().min(1),
  replica: z.number().int().min(0).max(1).optional(),
  attempt: z.number().int().min(1).max(1000).optional(),
  deadline: z.number().int(),
  secrets: z.array(SecretFileSchema).max(32).optional(), // every secret the function names, current
});
export type RunJob = z.infer<typeof RunJobSchema>;

export const DepsJobSchema = z.object({
  name: id,
  fn: FunctionMetaSchema,
  runtime: RuntimeSchema,
  srcDir: z.string().min(1),
  outDir: z.string().min(1),
  maxMiB: z.number().int().min(1),
  timeoutMs: z.number().int().min(1),
  network: z.boolean(),
});
export type DepsJob = z.infer<typeof DepsJobSchema>;

export const DepsRunSchema = z.object({
  exitCode: z.number().int().nullable(),
  timedOut: z.boolean(),
  tooLarge: z.boolean(),
  oomKilled: z.boolean(),
  unpackError: z.string().optional(),
  log: z.string(),
});
export type DepsRun = z.infer<typeof DepsRunSchema>;

// How a held container ended, for a call it was running when its loader went silent.
export const ExitReportSchema = z.object({
  exitCode: z.number().int().nullable(),
  oomKilled: z.boolean(),
  stderr: z.string(), // its end
  flooded: z.boolean(), // removed by its miniworker for writing more than MAX_OUTPUT
});
export type ExitReport = z.infer<typeof ExitReportSchema>;

// instance -> miniworker
export const ToWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('create'), plan: PlanSchema }),
  z.object({ type: z.literal('adopt'), id, treeDir: z.string().min(1), slotDir: z.string().min(1), limits: LimitsSchema }),
  z.object({ type: z.literal('run'), jobId, job: RunJobSchema }),
  z.object({ type: z.literal('exec'), jobId, id, job: RunJobSchema }),
  z.object({ type: z.literal('deps'), jobId, deps: DepsJobSchema }),
  z.object({ type: z.literal('remove'), id, report: z.boolean().optional() }),
  z.object({ type: z.literal('sweep'), miniworker: z.string().max(200).optional(), keep: z.string().min(1).max(200).optional() }),
  z.object({ type: z.literal('shutdown') }),
]);
export type ToWorker = z.infer<typeof ToWorkerSchema>;

// miniworker -> instance
export const FromWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number().int() }),
  z.object({ type: z.literal('created'), id, ok: z.boolean(), error: z.string().optional() }),
  z.object({ type: z.literal('adopted'), id, ok: z.boolean(), error: z.string().optional() }),
  // alive: (exec) the container can serve again; a timeout or a crash removes it
  z.object({ type: z.literal('ran'), jobId, outcome: CallOutcomeSchema, alive: z.boolean().optional() }),
  z.object({ type: z.literal('depsDone'), jobId, run: DepsRunSchema }),
  z.object({ type: z.literal('removed'), id, exit: ExitReportSchema.optional() }),
  z.object({ type: z.literal('swept'), removed: z.number().int().min(0) }),
  z.object({ type: z.literal('exited'), id }),
]);
export type FromWorker = z.infer<typeof FromWorkerSchema>;

// Which reply answers which command (`shutdown` has none).
export const replyTo = {
  create: 'created',
  adopt: 'adopted',
  run: 'ran',
  exec: 'ran',
  deps: 'depsDone',
  remove: 'removed',
  sweep: 'swept',
} as const satisfies Record<Exclude<ToWorker['type'], 'shutdown'>, Exclude<FromWorker['type'], 'ready' | 'exited'>>;
