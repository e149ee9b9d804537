// The tar and .tar.gz walker: feeds the archive to tar's strict Parser in small slices (gunzipping
// with a bound on the inflated size) and hands each entry over as an Item, refusing special files
// and oversized or NUL-bearing extended headers on the way.
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { Parser, ReadEntry } from 'tar';
import { TAR_BLOCK, hasUstarMagic, isZeroBlock } from './format.js';
import { corrupt, formatBytes, specialEntry, tooLarge } from './messages.js';
import { ArchiveError, KiB, MiB, type ArchiveLimits, type Item, type Visitor } from './types.js';

/** pax / GNU long-name headers bigger than this are refused (names are at most 1 KiB anyway). */
const MAX_META_BYTES = 64 * KiB;
/** Slice size when feeding the tar parser / gunzip, so a bomb is noticed within a few MiB. */
const FEED_CHUNK = 16 * KiB;

function tarItem(entry: ReadEntry): Item {
  const name = entry.path;
  const exec = ((entry.mode ?? 0) & 0o111) !== 0;
  switch (entry.type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
      return { name, kind: 'file', exec, declaredSize: entry.size, body: entry };
    case 'Directory':
    case 'GNUDumpDir':
      return { name, kind: 'dir', exec: false, declaredSize: 0 };
    case 'SymbolicLink':
      return { name, kind: 'symlink', target: entry.linkpath ?? '', exec: false, declaredSize: 0 };
    case 'Link':
      return { name, kind: 'hardlink', target: entry.linkpath ?? '', exec: false, declaredSize: 0 };
    case 'CharacterDevice':
      throw specialEntry(name, 'a character device');
    case 'BlockDevice':
      throw specialEntry(name, 'a block device');
    case 'FIFO':
      throw specialEntry(name, 'a FIFO');
    default:
      throw specialEntry(name, `of unsupported tar type ${entry.type}`);
  }
}

function* slices(buf: Buffer, size: number): Generator<Buffer> {
  for (let offset = 0; offset < buf.length; offset += size) yield buf.subarray(offset, offset + size);
}

/**
 * How far the inner tar stream of a .tar.gz may inflate: the file bytes plus generous room for
 * headers and padding (512-byte header + pax header + padding per entry).
 */
function gzipStreamLimit(limits: ArchiveLimits): number {
  return limits.maxTotalBytes + (limits.maxEntries + 1) * 2 * KiB + MiB;
}

/** The bytes of the tar stream: the buffer itself, or what it inflates to (bounded). */
async function* tarStream(buf: Buffer, gzipped: boolean, limits: ArchiveLimits): AsyncGenerator<Buffer> {
  if (!gzipped) {
    yield* slices(buf, 4 * FEED_CHUNK);
    return;
  }
  const limit = gzipStreamLimit(limits);
  const source = Readable.from(slices(buf, FEED_CHUNK));
  const gunzip = zlib.createGunzip();
  source.pipe(gunzip);
  let inflated = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      inflated += chunk.length;
      if (inflated > limit) throw tooLarge(limits);
      yield chunk;
    }
  } catch (err) {
    throw corrupt(err);
  } finally {
    source.unpipe(gunzip);
    source.destroy();
    gunzip.destroy();
  }
}

function waitForEvent(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
  return new Promise((resolve) => emitter.once(event, () => resolve()));
}

/**
 * Walks a tar stream with tar's Parser in strict mode (every warning is an error), handing each
 * entry to `visit` in order. Errors from the parser or the gzip layer become ArchiveErrors; errors
 * thrown by `visit` pass through unchanged.
 */
export async function walkTar(buf: Buffer, gzipped: boolean, limits: ArchiveLimits, visit: Visitor): Promise<void> {
  const parser = new Parser({ strict: true, brotli: false, zstd: false, maxMetaEntrySize: MAX_META_BYTES });
  let failure: Error | undefined;
  let signalFailure: () => void = () => undefined;
  const failed = new Promise<void>((resolve) => {
    signalFailure = resolve;
  });
  let current: ReadEntry | undefined;
  let sawEndMarker = false;
  let sawEof = false;
  const fail = (err: unknown): void => {
    if (failure) return;
    failure = err instanceof Error ? err : new Error(String(err));
    current?.destroy(); // unblocks a visitor waiting for body data that will never come
    signalFailure();
  };

  parser.on('error', (err: unknown) => fail(corrupt(err)));
  parser.on('warn', (_code: string, message: string) => fail(corrupt(message)));
  // Extended headers (pax records, GNU long names) as read: tar cuts a name at a NUL byte, so a NUL
  // inside one would make the name extracted differ from the name the archive shows.
  parser.on('meta', (meta: string) => {
    if (meta.replace(/\0+$/, '').includes('\0'))
      fail(new ArchiveError('archive has a NUL byte inside a name or link in an extended header'));
  });
  parser.on('nullBlock', () => {
    sawEndMarker = true;
  });
  parser.on('eof', () => {
    sawEndMarker = true;
    sawEof = true;
  });
  // Entries tar does not hand out: unknown types, and extended headers over maxMetaEntrySize.
  parser.on('ignoredEntry', (entry: ReadEntry) => {
    fail(
      entry.meta
        ? new ArchiveError(`archive has an extended header larger than ${formatBytes(MAX_META_BYTES)}`)
        : specialEntry(entry.path, `of unsupported tar type ${entry.type}`),
    );
  });
  let chain: Promise<void> = Promise.resolve();
  parser.on('entry', (entry: ReadEntry) => {
    current = entry;
    chain = chain
      .then(async () => {
        try {
          if (!failure) await visit(tarItem(entry));
        } finally {
          entry.resume(); // drain whatever the visitor did not read, so the parser moves on
        }
      })
      .catch(fail);
  });
  const ended = waitForEvent(parser, 'end');

  let head: Buffer | undefined = Buffer.alloc(0); // the first block, until it has been looked at
  try {
    for await (let chunk of tarStream(buf, gzipped, limits)) {
      if (failure || sawEof) break; // whatever follows the end-of-archive marker is never inflated
      if (head) {
        head = Buffer.concat([head, chunk]);
        if (head.length < TAR_BLOCK) continue;
        if (isZeroBlock(head)) throw new ArchiveError('archive holds no files');
        if (!hasUstarMagic(head)) {
          throw new ArchiveError('the .tar.gz does not contain a tar archive (no ustar header after gunzip)');
        }
        chunk = head;
        head = undefined;
      }
      let flowing: boolean;
      try {
        flowing = parser.write(chunk);
      } catch (err) {
        throw corrupt(err);
      }
      if (!flowing && !failure) await Promise.race([waitForEvent(parser, 'drain'), failed]);
    }
    if (!failure && head) {
      throw new ArchiveError(
        head.length === 0
          ? 'archive is truncated or corrupt: the gzip stream is empty'
          : 'archive is truncated or corrupt: shorter than one tar block',
      );
    }
  } catch (err) {
    fail(err);
  }
  if (!failure) {
    try {
      parser.end();
    } catch (err) {
      fail(corrupt(err));
    }
  }
  await Promise.race([ended, failed]);
  await chain;
  if (!failure && !sawEndMarker) fail(new ArchiveError('archive is truncated or corrupt: the tar end-of-archive marker is missing'));
  if (failure) throw failure;
}
