// Idempotency keys on invocations, as Stripe's API has them: a client that sends `Idempotency-Key` (or
// `idempotencyKey` in the body of POST /invokeFunction) may send the same request again, after a timeout
// or a lost answer, and gets the call the first one made instead of a second run. The DB service decides,
// inside its ordered write groups (db/store.ts CallGroup.createCall), so that many requests with one key
// at once still make one call, and the keys outlive an API restart. Here: reading the key, whose it is
// (a key is kept per namespace and per caller, so that a second caller sending the same key and params
// gets a call of its own, never the first caller's result), the hash that tells "the same request" from
// another one, the retention window, and what a replay answers with.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { UsageError } from '../common/errors.js';
import { isFinal, type Call } from '../common/model.js';
import { bareName, namespaceOf } from '../common/namespace.js';
import { IDEMPOTENCY_KEY, IDEMPOTENCY_TTL_S, scopedIdempotencyKey } from '../protocol/db.js';
import { HttpError } from './http.js';
import type { Scope } from './tenancy/scope.js';
import type { Waiters } from './waiters.js';
import { recordedOutcome, type Ended } from './ended.js';

export const KEY_HEADER = 'Idempotency-Key';
const KEY_HEADER_LC = KEY_HEADER.toLowerCase();
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const KEY_RULE = 'must be 1 to 255 printable ASCII characters';

// What createCall is given (protocol/db.ts).
export interface Idempotency {
  key: string;
  hash: string;
  ttlS: number;
}

// The retention window of an API's keys, in seconds, from ZFAAS_IDEMPOTENCY_TTL (default 24 h).
export function idempotencyTtl(value: string | undefined): number {
  if (value === undefined || value === '') return IDEMPOTENCY_TTL_S;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`ZFAAS_IDEMPOTENCY_TTL must be a whole number of seconds (at least 1), not "${value}"`);
  return n;
}

// The key of a request: the header, or for POST /invokeFunction the body field (both: they must agree).
export function idempotencyKey(req: IncomingMessage, bodyKey?: string): string | undefined {
  // Most requests have none: their headers are not copied out to find that out.
  if (req.headers[KEY_HEADER_LC] === undefined) return bodyKey;
  const values = req.headersDistinct[KEY_HEADER_LC];
  if (values && (values.length !== 1 || !IDEMPOTENCY_KEY.test(values[0] ?? '')))
    throw new HttpError(400, `invalid ${KEY_HEADER} header: ${values.length !== 1 ? 'sent more than once' : KEY_RULE}`);
  const header = values?.[0];
  if (header !== undefined && bodyKey !== undefined && header !== bodyKey)
    throw new HttpError(400, `invalid idempotencyKey: the ${KEY_HEADER} header and the idempotencyKey field differ`);
  return header ?? bodyKey;
}

// The body field's rule, for the handlers' zod schemas.
export const keyField = { pattern: IDEMPOTENCY_KEY, message: KEY_RULE };

// What a web call asked beyond its params: a function may read all of it.
export interface WebAsked {
  method: string;
  path: string;
  query: string;
  body: Buffer;
}

// Whose keys a request's are: a namespace's key by its id (a rotated key stays the same caller), the
// operator's token as one caller, and the anonymous callers of a public function's web path as one caller
// per function, apart from every keyed one. (Schedules' ticks are callers of their own: api/schedules.ts.)
export function callerOf(scope: Scope, anonymous: boolean, funcName: string): string {
  if (anonymous) return `web:${bareName(funcName)}`;
  return scope.keyId ? `key:${scope.keyId}` : 'operator';
}

// The request a key stands for: the function (by name, whatever its version), the params as canonical JSON
// (objects' keys sorted), and for a web call its method, path, query and body. The key is stored under the
// function's namespace and the caller, so that it goes when the namespace goes.
export function idempotencyOf(key: string, ttlS: number, caller: string, funcName: string, params: unknown, web?: WebAsked): Idempotency {
  const asked = web && { method: web.method, path: web.path, query: web.query, body: createHash('sha256').update(web.body).digest('hex') };
  const hash = createHash('sha256')
    .update(canonicalJson([funcName, params ?? {}, asked ?? null]))
    .digest('hex');
  return { key: scopedIdempotencyKey(namespaceOf(funcName), caller, key), hash, ttlS };
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

// A replayed call's end: from its record when it is final, else when it ends (null after `ms`).
export function replayOutcome(waiters: Waiters, call: Call, ms: number): Promise<Ended | null> {
  return isFinal(call.status) ? Promise.resolve({ call, outcome: recordedOutcome(call) }) : waiters.wait(call.callNum, ms);
}
