// Reads a file or a stream the user pointed the CLI at, up to a limit: `--file /dev/zero` or a runaway
// pipe is refused as soon as it passes what the API would take, instead of filling this process's memory.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { UsageError, errText } from './errors.js';

export async function readBounded(source: string | Readable, limitBytes: number, what: string): Promise<string> {
  return (await readBoundedBytes(source, limitBytes, what)).toString('utf8');
}

// The bytes as they are (a binary body); `most` says whose limit it is.
export async function readBoundedBytes(
  source: string | Readable,
  limitBytes: number,
  what: string,
  most = 'the most the API takes',
): Promise<Buffer> {
  const stream = typeof source === 'string' ? createReadStream(source) : source;
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of stream) {
      const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
      size += b.length;
      if (size > limitBytes) throw new UsageError(`${what} is larger than ${limitBytes / (1024 * 1024)} MiB, ${most}`);
      chunks.push(b);
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
  } finally {
    if (typeof source === 'string') stream.destroy();
  }
  return Buffer.concat(chunks);
}
