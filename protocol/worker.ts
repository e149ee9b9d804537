// The instance <-> miniworker protocol (broker-worker): the instance binds a ROUTER on an ipc socket, each
// miniworker connects a DEALER with its own routing id, says `ready`, gets one `job`, answers `result`,
// and is ready again. Frames: [JSON].
import { z } from 'zod';
import { CallOutcomeSchema, FunctionMetaSchema, PolicySchema, RuntimeSchema } from '../common/model.js';

export const JobSchema = z.object({
  jobId: z.number().int().min(1),
  callNum: z.number().int().min(1),
  params: z.unknown(),
  fn: FunctionMetaSchema,
  runtime: RuntimeSchema,
  treeDir: z.string(), // host path of the prepared function tree (archive + installed dependencies)
  policy: PolicySchema,
});
export type Job = z.infer<typeof JobSchema>;

// miniworker -> instance
export const FromWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), pid: z.number().int(), warmKey: z.string().nullable().default(null) }),
  z.object({ type: z.literal('result'), jobId: z.number().int(), callNum: z.number().int(), outcome: CallOutcomeSchema }),
]);
export type FromWorker = z.infer<typeof FromWorkerSchema>;

// instance -> miniworker
export const ToWorkerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('job'), job: JobSchema }),
  z.object({ type: z.literal('shutdown') }),
]);
export type ToWorker = z.infer<typeof ToWorkerSchema>;
