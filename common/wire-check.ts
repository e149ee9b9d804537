// What this process hands itself unparsed (the broker and its in-process node, the call path's writes to
// the in-process DB service) must be what the wire would have carried: a message that a socket's schema
// would change (a key it drops, a default it fills in, a transform) would make the in-process path and the
// socket path disagree. Production trusts the typed code and does not look; with ZFAAS_CHECK_IN_PROCESS=1
// (the test suite sets it) every such message is parsed by its wire schema and compared, as JSON, with
// what was handed over, and a difference throws, naming the first path that differs.
import { isDeepStrictEqual } from 'node:util';
import type { ZodType, ZodTypeDef } from 'zod';

export const IN_PROCESS_CHECK_ENV = 'ZFAAS_CHECK_IN_PROCESS';

export class WireMismatch extends Error {}

// Read once, at start: the call path asks for every call it hands over.
const CHECKING = process.env[IN_PROCESS_CHECK_ENV] === '1';
export const checkingInProcess = (): boolean => CHECKING;

// Throws unless `value`, sent as JSON and parsed by `schema`, comes out as it went in.
export function assertWireForm<T>(schema: ZodType<T, ZodTypeDef, unknown>, value: unknown, what: string): void {
  const sent: unknown = JSON.parse(JSON.stringify(value) ?? 'null');
  const parsed = schema.safeParse(sent);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new WireMismatch(`${what} does not pass its wire schema: ${i ? `${i.path.join('.') || '(root)'}: ${i.message}` : 'invalid'}`);
  }
  const read: unknown = JSON.parse(JSON.stringify(parsed.data) ?? 'null');
  if (!isDeepStrictEqual(read, sent)) throw new WireMismatch(`${what} is changed by its wire schema at ${firstDifference(sent, read)}`);
}

function firstDifference(a: unknown, b: unknown, path = '(root)'): string {
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    for (const k of new Set([...Object.keys(ra), ...Object.keys(rb)]))
      if (!isDeepStrictEqual(ra[k], rb[k])) return firstDifference(ra[k], rb[k], path === '(root)' ? k : `${path}.${k}`);
  }
  return `${path} (${JSON.stringify(a)?.slice(0, 80)} became ${JSON.stringify(b)?.slice(0, 80)})`;
}
