// The shapes of the API's replies, checked on arrival: a reply that does not match is reported as such
// instead of surfacing later as "undefined" in a table. Object schemas strip unknown keys, so the API
// may add fields without breaking the CLI.
import { z } from 'zod';
import { BUILD_STATES } from '../../common/build.js';
import { CallSchema, FunctionMetaSchema, QuotasSchema, RoleSchema, RuntimeSchema } from '../../common/model.js';

export { CallSchema, FunctionMetaSchema, RuntimeSchema };

export const NamesSchema = z.array(z.string());
export const RuntimesSchema = z.array(RuntimeSchema);
export const FunctionsSchema = z.array(FunctionMetaSchema);
export const CallsSchema = z.array(CallSchema);
// GET /dead-letters: calls that failed every run their function's `retries` allowed, newest first.
export const DeadLettersSchema = z.array(CallSchema);

export const DeployedSchema = FunctionMetaSchema.extend({ files: z.array(z.string()).optional() });
export type Deployed = z.infer<typeof DeployedSchema>;

export const VersionSchema = z.object({
  version: z.number().int().min(1),
  digest: z.string(),
  size: z.number(),
  createdAt: z.string(),
  build: z.enum(BUILD_STATES).optional(),
});
export const FunctionDetailSchema = FunctionMetaSchema.extend({ versions: z.array(VersionSchema).default([]) });
export type FunctionDetail = z.infer<typeof FunctionDetailSchema>;

export const DeletedSchema = z.object({ deleted: z.string() });

export const NodeSchema = z.object({
  id: z.string(),
  state: z.string(),
  capacity: z.number().optional(),
  running: z.number().optional(),
  policy: z.string().optional(),
  labels: z.record(z.string(), z.unknown()).optional(),
  miniworkers: z.number().optional(),
  // function@version -> warm containers holding it
  warm: z.record(z.string(), z.number()).optional(),
  lastSeenMsAgo: z.number().optional(),
  joinedAt: z.string().optional(),
});
export type NodeView = z.infer<typeof NodeSchema>;
export const NodesSchema = z.array(NodeSchema);

// Tenancy (api/handlers/namespaces.ts): who a key is, namespaces with their quotas, keys (never their
// secret part, except `key` once when a key is made or rotated).
export const WhoAmISchema = z.object({ namespace: z.string(), role: z.string(), keyId: z.string().optional() });
export type WhoAmI = z.infer<typeof WhoAmISchema>;

export const NamespaceViewSchema = z.object({
  name: z.string(),
  createdAt: z.string(),
  quotas: QuotasSchema.passthrough().default({}), // quotas a newer API adds pass through unread
});
export type NamespaceView = z.infer<typeof NamespaceViewSchema>;

export const KeyViewSchema = z.object({
  id: z.string(),
  namespace: z.string(),
  role: RoleSchema,
  createdAt: z.string(),
  rotatedAt: z.string().optional(),
  revokedAt: z.string().optional(),
});
export type KeyView = z.infer<typeof KeyViewSchema>;
export const NewKeySchema = KeyViewSchema.extend({ key: z.string().min(1) });
export type NewKey = z.infer<typeof NewKeySchema>;

export const ErrorBodySchema = z.object({ error: z.string() });
