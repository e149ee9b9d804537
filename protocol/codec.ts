// One ZMQ message = one JSON frame, optionally followed by binary frames (archives travel raw, never base64).
import type { ZodType, ZodTypeDef } from 'zod';

export class ProtocolError extends Error {}

export function encode(msg: object, ...blobs: Buffer[]): Buffer[] {
  return [Buffer.from(JSON.stringify(msg)), ...blobs];
}

// The first frame as JSON, or a ProtocolError (never a crash on garbage from the wire).
export function parseJsonFrame(head: Buffer | undefined): unknown {
  if (!head) throw new ProtocolError('empty message');
  try {
    return JSON.parse(head.toString('utf8'));
  } catch {
    throw new ProtocolError('first frame is not JSON');
  }
}

export function validate<T>(schema: ZodType<T, ZodTypeDef, unknown>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new ProtocolError(`invalid message: ${first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unknown'}`);
  }
  return parsed.data;
}

export function decode<T>(schema: ZodType<T, ZodTypeDef, unknown>, frames: Buffer[]): { msg: T; blobs: Buffer[] } {
  const [head, ...blobs] = frames;
  return { msg: validate(schema, parseJsonFrame(head)), blobs };
}
