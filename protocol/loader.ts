// The loader protocol, version 1: how a node talks to the loader that keeps a function warm inside its
// container (runtimes/node/loader.js, runtimes/python/loader.py). The loaders check what they are sent
// by hand (they run inside the container, with no dependencies); the node validates every reply with
// these schemas, because whatever comes out of a container is untrusted input.
//
// Transport: JSON lines (one message a line, UTF-8, "\n"). The node listens on a unix socket in a folder
// bind-mounted read-only into the container (ZFAAS_LINE names it inside); the loader dials in and says
// hello. Without ZFAAS_LINE a loader speaks the same lines on stdin/stdout (its self-test, benchmarks).
//
//   loader -> node   {"op":"hello","v":1,"pid":N}                        once, first
//   node -> loader   {"op":"load","dir","handler","env"}                 -> {"op":"loaded","ok":true}
//                                                                           | {"op":"loaded","ok":false,"error"}
//   node -> loader   {"op":"call","id":N,"params","env"}                 -> {"op":"result","id":N,"ok":true,"result","logs"}
//                                                                           | {"op":"result","id":N,"ok":false,"error","logs"}
//   node -> loader   {"op":"ping"}                                       -> {"op":"pong"}
//   anything it cannot read                                              -> {"op":"error","error","id"?}
//
// One request at a time: the node never sends the next before the reply. A call's `env` holds what is
// per call (ZFAAS_CALL, ZFAAS_REPLICA, ZFAAS_DEADLINE): set for that call only, so warm and cold runs
// see the same variables. A result longer than RESULT_LIMIT characters is cut and says `truncated`; a
// call that leaves processes running in the container says how many in `stray` (the node then discards
// the container). A reply that does not parse, is longer than MAX_LINE, or answers something that was
// not asked, ends the call in ERROR and the container is discarded.
import { z } from 'zod';

export const LOADER_PROTOCOL = 1;
export const RESULT_LIMIT = 6 * 1024 * 1024; // characters of a result the loaders keep
export const LOG_LIMIT = 64 * 1024; // characters of a call's logs the loaders keep
// JSON escaping can make a line up to six times longer than what it carries; past this it is broken.
export const MAX_LINE = 48 * 1024 * 1024;
export const LINE_ENV = 'ZFAAS_LINE'; // where the loader finds the node's socket inside the container
export const LINE_DIR = '/run/zfaas'; // the folder mounted read-only into the container
export const LINE_FILE = 'line.sock';

const envSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string());

export const LoadRequestSchema = z.object({ op: z.literal('load'), dir: z.string(), handler: z.string().nullable(), env: envSchema });
export type LoadRequest = z.infer<typeof LoadRequestSchema>;
export const CallRequestSchema = z.object({ op: z.literal('call'), id: z.number().int().min(1), params: z.unknown(), env: envSchema });
export type CallRequest = z.infer<typeof CallRequestSchema>;
export type LoaderRequest = LoadRequest | CallRequest | { op: 'ping' };

export const HelloSchema = z.object({ op: z.literal('hello'), v: z.number().int(), pid: z.number().int().optional() });

export const LoadedSchema = z.object({
  op: z.literal('loaded'),
  ok: z.boolean(),
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
});
export const ResultSchema = z.object({
  op: z.literal('result'),
  id: z.number().int(),
  ok: z.boolean(),
  result: z.string().max(RESULT_LIMIT).optional(),
  error: z
    .string()
    .max(64 * 1024)
    .optional(),
  logs: z
    .string()
    .max(LOG_LIMIT + 256)
    .optional(),
  truncated: z.boolean().optional(),
  stray: z.number().int().min(0).optional(),
});
export type LoaderResult = z.infer<typeof ResultSchema>;
export const PongSchema = z.object({ op: z.literal('pong') });
export const LoaderErrorSchema = z.object({ op: z.literal('error'), error: z.string().max(64 * 1024), id: z.number().int().optional() });

export const LoaderReplySchema = z.discriminatedUnion('op', [HelloSchema, LoadedSchema, ResultSchema, PongSchema, LoaderErrorSchema]);
export type LoaderReply = z.infer<typeof LoaderReplySchema>;

// What each request is answered by: a reply of another kind (or another call's id) is out of order.
export const expectedReply = { load: 'loaded', call: 'result', ping: 'pong' } as const satisfies Record<
  LoaderRequest['op'],
  LoaderReply['op']
>;
