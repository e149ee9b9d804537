// The zip walker: reads entries one at a time through yauzl (lazily, sizes validated), maps unix
// modes to files, directories and symlinks, refuses encryption and unknown compression, and checks
// each file's CRC-32 as it inflates.
import type { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import yauzl from 'yauzl';
import type { Entry as ZipEntry, ZipFile } from 'yauzl';
import { corrupt, specialEntry, tooManyEntries } from './messages.js';
import { MAX_NAME_BYTES, show } from './names.js';
import { ArchiveError, type ArchiveLimits, type Item, type Visitor } from './types.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

const YAUZL_NAME_ERRORS: [RegExp, string][] = [
  [/^absolute path: ([\s\S]*)$/, 'is an absolute path'],
  [/^invalid relative path: ([\s\S]*)$/, 'escapes the archive root'],
  [/^invalid characters in fileName: ([\s\S]*)$/, 'has a backslash in its name'],
];

/** yauzl's own name validation (decodeStrings) fires first; give its refusals our wording. */
function zipError(err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const message = err instanceof Error ? err.message : String(err);
  for (const [re, what] of YAUZL_NAME_ERRORS) {
    const m = re.exec(message);
    if (m) return new ArchiveError(`entry ${show(m[1] ?? '')} ${what}`);
  }
  return corrupt(err);
}

function openZip(buf: Buffer): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buf, { lazyEntries: true, validateEntrySizes: true, decodeStrings: true, strictFileNames: false }, (err, zip) =>
      err ? reject(zipError(err)) : resolve(zip),
    );
  });
}

function nextZipEntry(zip: ZipFile): Promise<ZipEntry | null> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (entry: ZipEntry): void => {
      cleanup();
      resolve(entry);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(null);
    };
    const onError = (err: unknown): void => {
      cleanup();
      reject(zipError(err));
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openZipStream(zip: ZipFile, entry: ZipEntry): Promise<Readable> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => (err ? reject(zipDataError(entry, err)) : resolve(stream)));
  });
}

function zipDataError(entry: ZipEntry, err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (message.startsWith('too many bytes in the stream')) {
    return new ArchiveError(`entry ${show(entry.fileName)} inflates to more than the ${entry.uncompressedSize} bytes its header declares`);
  }
  return corrupt(`entry ${show(entry.fileName)}: ${message}`);
}

const crc32: ((data: Buffer, value?: number) => number) | undefined = typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;

/** An entry's content; inflates lazily and stops as soon as the consumer stops. */
async function* zipBody(zip: ZipFile, entry: ZipEntry): AsyncGenerator<Buffer> {
  const stream = await openZipStream(zip, entry);
  let crc = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (crc32) crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (err) {
    throw zipDataError(entry, err);
  } finally {
    stream.destroy();
  }
  if (crc32 && crc !== entry.crc32) {
    throw new ArchiveError(`archive is truncated or corrupt: entry ${show(entry.fileName)} fails its CRC-32 check`);
  }
}

async function readSmall(zip: ZipFile, entry: ZipEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of zipBody(zip, entry)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function zipItem(zip: ZipFile, entry: ZipEntry): Promise<Item> {
  const name = entry.fileName;
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff; // unix mode, when the creator stored one
  const type = mode & S_IFMT;
  if (entry.isEncrypted()) throw new ArchiveError(`entry ${show(name)} is encrypted; encrypted zip entries are not supported`);
  if (name.endsWith('/') || type === S_IFDIR) return { name, kind: 'dir', exec: false, declaredSize: 0 };
  if (type !== 0 && type !== S_IFREG && type !== S_IFLNK) {
    const what = { 0o020000: 'a character device', 0o060000: 'a block device', 0o010000: 'a FIFO', 0o140000: 'a socket' }[type];
    throw specialEntry(name, what ?? `of unsupported type 0o${type.toString(8)}`);
  }
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    throw new ArchiveError(
      `entry ${show(name)} uses unsupported compression method ${entry.compressionMethod}; only stored and deflated entries are supported`,
    );
  }
  if (type === S_IFLNK) {
    if (entry.uncompressedSize > MAX_NAME_BYTES) {
      throw new ArchiveError(`symlink ${show(name)} has a target longer than ${MAX_NAME_BYTES} bytes`);
    }
    const target = (await readSmall(zip, entry)).toString('utf8');
    return { name, kind: 'symlink', target, exec: false, declaredSize: 0 };
  }
  return { name, kind: 'file', exec: (mode & 0o111) !== 0, declaredSize: entry.uncompressedSize, body: zipBody(zip, entry) };
}

export async function walkZip(buf: Buffer, limits: ArchiveLimits, visit: Visitor): Promise<void> {
  const zip = await openZip(buf);
  zip.on('error', () => undefined); // errors are picked up by nextZipEntry; never let one go unhandled
  try {
    if (zip.entryCount > limits.maxEntries) throw tooManyEntries(limits);
    for (;;) {
      const entry = await nextZipEntry(zip);
      if (!entry) break;
      await visit(await zipItem(zip, entry));
    }
  } finally {
    zip.close();
  }
}
