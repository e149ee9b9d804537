// The one place that checks and unpacks uploaded function archives (.tar.gz, .tar, .zip).
//
// Uploads are untrusted. Every archive is walked once to validate it completely (names, entry types,
// link targets, sizes, entry count) before anything is written; extraction then walks it a second
// time, re-applying the same checks, and writes only plain directories and files. Hardlinks and
// symlinks are created last, once every file is in place, so nothing is ever written through a link.
import { constants as fsConstants } from 'node:fs';
import type { Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { Parser, ReadEntry, create as tarCreate } from 'tar';
import yauzl from 'yauzl';
import type { Entry as ZipEntry, ZipFile } from 'yauzl';

export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

/** A problem with the uploaded archive itself; the message is meant for the user (HTTP 400). */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

export interface ArchiveLimits {
  /** Unpacked bytes of all regular files together, counted from what actually inflates. */
  maxTotalBytes: number;
  /** Entries of any kind (files, directories, links). */
  maxEntries: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

export const DEFAULT_LIMITS: ArchiveLimits = Object.freeze({ maxTotalBytes: 100 * MiB, maxEntries: 10_000 });

export interface ArchiveSummary {
  format: ArchiveFormat;
  /** Entries of any kind, including directories and links. */
  entries: number;
  /** Unpacked bytes of the regular files. */
  totalBytes: number;
  /** Normalized relative paths of the regular files (hardlinks included), at most MAX_LISTED_FILES. */
  files: string[];
}

const MAX_NAME_BYTES = 1024;
const MAX_LISTED_FILES = 1000;
/** pax / GNU long-name headers bigger than this are refused (names are at most 1 KiB anyway). */
const MAX_META_BYTES = 64 * KiB;
const MAX_SYMLINK_HOPS = 40;
/** Path components one symlink resolution may walk through (bounds the CPU a crafted archive can cost). */
const MAX_RESOLVE_STEPS = 4096;
/** ... and all of them together. */
const MAX_RESOLVE_STEPS_TOTAL = 1_000_000;
/** Slice size when feeding the tar parser / gunzip, so a bomb is noticed within a few MiB. */
const FEED_CHUNK = 16 * KiB;
const TAR_BLOCK = 512;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

// ---------------------------------------------------------------------------------------------
// Format detection

export function detectFormat(buf: Buffer): ArchiveFormat | null {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'tar.gz';
  if (buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b) {
    if (buf[2] === 0x03 && buf[3] === 0x04) return 'zip';
    if (buf[2] === 0x05 && buf[3] === 0x06) return 'zip'; // empty zip: just the end-of-central-directory record
  }
  if (hasUstarMagic(buf)) return 'tar';
  return null;
}

function hasUstarMagic(block: Buffer): boolean {
  return block.length >= 262 && block.toString('latin1', 257, 262) === 'ustar';
}

function isZeroBlock(buf: Buffer): boolean {
  if (buf.length < TAR_BLOCK) return false;
  for (let i = 0; i < TAR_BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

function formatOrThrow(buf: Buffer): ArchiveFormat {
  if (buf.length === 0) throw new ArchiveError('archive is empty (0 bytes)');
  const format = detectFormat(buf);
  if (format) return format;
  // An empty tar is nothing but zero blocks: it has no "ustar" magic to detect.
  if (isZeroBlock(buf)) throw new ArchiveError('archive holds no files');
  throw new ArchiveError('not a .tar.gz, .tar or .zip archive (unknown magic bytes)');
}

// ---------------------------------------------------------------------------------------------
// Messages

function formatBytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

function isControlChar(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f);
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isControlChar(s.charCodeAt(i))) return true;
  return false;
}

/** Characters that hide or reorder what a name shows (bidirectional overrides, zero-width). */
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
const MAX_COMPONENT_BYTES = 255; // NAME_MAX: a longer component cannot be created, so it is refused here

/** A name as it may appear in a message: escaped if it holds control characters, cut if very long. */
function show(name: string): string {
  const cut = name.length > 200 ? `${name.slice(0, 200)}...` : name;
  return hasControlChar(cut) || INVISIBLE.test(cut)
    ? JSON.stringify(cut).replace(INVISIBLE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : cut;
}
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'g');

/** Names and link targets must be what they look like: valid UTF-8, nothing invisible. */
function checkChars(raw: string, what: string, field: 'name' | 'target'): void {
  if (hasControlChar(raw)) throw new ArchiveError(`${what} has a control character in its ${field}`);
  // Tar names are decoded as UTF-8: invalid bytes (an overlong "..", a Latin-1 name) became U+FFFD.
  if (raw.includes('\ufffd')) throw new ArchiveError(`${what}'s ${field} is not valid UTF-8`);
  if (INVISIBLE.test(raw)) throw new ArchiveError(`${what} has an invisible or bidirectional control character in its ${field}`);
}

function tooLarge(limits: ArchiveLimits): ArchiveError {
  return new ArchiveError(`archive is larger than ${formatBytes(limits.maxTotalBytes)} unpacked`);
}

function tooManyEntries(limits: ArchiveLimits): ArchiveError {
  return new ArchiveError(`archive has more than ${limits.maxEntries} entries`);
}

function corrupt(err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const message = raw.replace(/^TAR_[A-Z_]+: /, '');
  return new ArchiveError(`archive is truncated or corrupt: ${message}`);
}

function specialEntry(name: string, what: string): ArchiveError {
  return new ArchiveError(`entry ${show(name)} is ${what}; only regular files, directories and symlinks are allowed`);
}

// ---------------------------------------------------------------------------------------------
// Names and links

/** Checks an entry name and returns it normalized ("./a//b/" -> "a/b", "./" -> ""). */
function normalizeName(raw: string, what: string): string {
  if (Buffer.byteLength(raw, 'utf8') > MAX_NAME_BYTES) {
    throw new ArchiveError(`${what} name is longer than ${MAX_NAME_BYTES} bytes: ${show(raw.slice(0, 64))}`);
  }
  checkChars(raw, `${what} ${show(raw)}`, 'name');
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[A-Za-z]:/.test(raw)) {
    throw new ArchiveError(`${what} ${show(raw)} is an absolute path`);
  }
  const parts = raw.split(/[/\\]/);
  if (parts.includes('..')) throw new ArchiveError(`${what} ${show(raw)} escapes the archive root`);
  if (raw.includes('\\')) throw new ArchiveError(`${what} ${show(raw)} has a backslash in its name`);
  if (parts.some((p) => Buffer.byteLength(p, 'utf8') > MAX_COMPONENT_BYTES)) {
    throw new ArchiveError(`${what} ${show(raw)} has a name component longer than ${MAX_COMPONENT_BYTES} bytes`);
  }
  return parts.filter((p) => p !== '' && p !== '.').join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

type Kind = 'file' | 'dir' | 'symlink' | 'hardlink';

/** One archive entry as the walkers hand it over, before the checks. */
interface Item {
  /** The name as stored in the archive (used in messages). */
  name: string;
  kind: Kind;
  /** Symlink: the raw target. Hardlink: the raw name of the linked entry. */
  target?: string;
  /** Any exec bit set in the archive's mode. */
  exec: boolean;
  /** Size the headers claim (only a hint for failing fast; real bytes are counted). */
  declaredSize: number;
  /** Regular files: the content. */
  body?: AsyncIterable<Buffer>;
}

/** A node of the archive's virtual tree. Directories that only exist as parents are "implicit". */
interface TreeNode {
  kind: Kind;
  /** The archive name of the entry; for an implicit directory, of the first entry below it. */
  name: string;
  implicit: boolean;
  /** Symlinks: the raw target. */
  target?: string;
  children?: Map<string, TreeNode>;
}

type Resolution = 'inside' | 'escapes' | 'loop';

/**
 * The running tally and the archive's virtual tree. Every check that does not need the bytes of a
 * file lives here, so the inspection pass and the extraction pass apply exactly the same rules.
 * All checks cost time linear in the names' lengths (with a global budget for following symlinks),
 * so a crafted archive cannot buy much CPU.
 */
class Checker {
  entries = 0;
  totalBytes = 0;
  fileCount = 0;
  readonly files: string[] = [];
  private readonly root: TreeNode = { kind: 'dir', name: '', implicit: false, children: new Map() };
  private readonly symlinks: { rel: string; node: TreeNode }[] = [];
  private resolveBudget = MAX_RESOLVE_STEPS_TOTAL;

  constructor(private readonly limits: ArchiveLimits) {}

  /** Counts and checks one entry; returns its normalized path ("" for the root directory). */
  add(item: Item): string {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) throw tooManyEntries(this.limits);
    const rel = normalizeName(item.name, 'entry');
    if (rel === '') {
      if (item.kind === 'dir') return rel;
      throw new ArchiveError(`entry ${show(item.name)} has an empty name`);
    }
    const parts = rel.split('/');
    const last = parts.pop() ?? '';
    // Walk (and create) the parents: nothing may live under a symlink or a file, so extraction
    // never has to go through a link.
    let dir = this.root;
    for (const part of parts) {
      const children = dir.children ?? new Map<string, TreeNode>();
      let child = children.get(part);
      if (!child) {
        child = { kind: 'dir', name: item.name, implicit: true, children: new Map() };
        children.set(part, child);
      } else if (child.kind === 'symlink') {
        throw new ArchiveError(`entry ${show(item.name)} is inside symlink ${show(child.name)}`);
      } else if (child.kind !== 'dir') {
        throw new ArchiveError(`entry ${show(item.name)} is inside ${show(child.name)}, which is not a directory`);
      }
      dir = child;
    }
    const siblings = dir.children ?? new Map<string, TreeNode>();
    const existing = siblings.get(last);
    if (existing) {
      if (existing.kind === 'dir' && item.kind === 'dir') {
        if (existing.implicit) Object.assign(existing, { implicit: false, name: item.name });
        return rel;
      }
      if (existing.implicit) {
        // Entries below it came first: same conflict as above, found from the other side.
        throw new ArchiveError(
          item.kind === 'symlink'
            ? `entry ${show(existing.name)} is inside symlink ${show(item.name)}`
            : `entry ${show(existing.name)} is inside ${show(item.name)}, which is not a directory`,
        );
      }
      throw new ArchiveError(`entry ${show(item.name)} appears more than once in the archive`);
    }
    const node: TreeNode = { kind: item.kind, name: item.name, implicit: false };
    if (item.kind === 'dir') node.children = new Map();
    if (item.kind === 'symlink') {
      node.target = checkSymlinkTarget(item.name, item.target ?? '');
      // Fail fast on a plain escape; finish() re-checks following the archive's other symlinks.
      if (lexicallyEscapes(parts.length, node.target)) {
        throw new ArchiveError(`symlink ${show(item.name)} -> ${show(node.target)} escapes the archive root`);
      }
      this.symlinks.push({ rel, node });
    }
    if (item.kind === 'hardlink') this.checkHardlinkTarget(item.name, item.target ?? '');
    siblings.set(last, node);
    if (item.kind === 'file' || item.kind === 'hardlink') {
      this.fileCount += 1;
      if (this.files.length < MAX_LISTED_FILES) this.files.push(rel);
    }
    return rel;
  }

  /** Fail fast on sizes the headers admit to; the real count in addBytes() is what counts. */
  reserve(declared: number): void {
    if (this.totalBytes + declared > this.limits.maxTotalBytes) throw tooLarge(this.limits);
  }

  addBytes(n: number): void {
    this.totalBytes += n;
    if (this.totalBytes > this.limits.maxTotalBytes) throw tooLarge(this.limits);
  }

  /** Whole-tree checks, once every entry is known. */
  finish(format: ArchiveFormat): ArchiveSummary {
    for (const { rel, node } of this.symlinks) {
      const target = node.target ?? '';
      const where = this.resolveSymlink(rel, target);
      if (where === 'escapes') {
        throw new ArchiveError(`symlink ${show(node.name)} -> ${show(target)} escapes the archive root`);
      }
      if (where === 'loop') {
        throw new ArchiveError(`symlink ${show(node.name)} -> ${show(target)} loops or goes through too many symlinks`);
      }
    }
    if (this.fileCount === 0) throw new ArchiveError('archive holds no files');
    return { format, entries: this.entries, totalBytes: this.totalBytes, files: [...this.files] };
  }

  private lookup(rel: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.root;
    for (const part of rel.split('/')) node = node?.children?.get(part);
    return node;
  }

  /** A hardlink must name a regular file that came earlier in the archive. */
  private checkHardlinkTarget(name: string, rawTarget: string): void {
    let target: string;
    try {
      target = normalizeName(rawTarget, 'target');
    } catch {
      throw new ArchiveError(`hardlink ${show(name)} -> ${show(rawTarget)} points outside the archive`);
    }
    const node = target === '' ? undefined : this.lookup(target);
    if (!node || (node.kind !== 'file' && node.kind !== 'hardlink')) {
      throw new ArchiveError(`hardlink ${show(name)} -> ${show(rawTarget)} does not point to a regular file earlier in the archive`);
    }
  }

  /**
   * Follows a symlink the way the kernel would once everything is extracted: from the link's own
   * directory, component by component, substituting the archive's other symlinks as they come up,
   * so that "a -> ." plus "b -> a/.." is seen to leave the root.
   */
  private resolveSymlink(rel: string, target: string): Resolution {
    // The directories from the root down to the link's parent (they exist: add() walked them).
    const stack: (TreeNode | undefined)[] = [this.root];
    const parents = rel.split('/');
    parents.pop();
    for (const part of parents) stack.push(stack[stack.length - 1]?.children?.get(part));
    // Components still to walk, as a stack of targets (one more per symlink followed).
    const frames: { parts: string[]; next: number }[] = [{ parts: target.split('/'), next: 0 }];
    let hops = 0;
    let steps = 0;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      const part = frame?.parts[frame.next];
      if (!frame || part === undefined) {
        frames.pop();
        continue;
      }
      frame.next += 1;
      steps += 1;
      this.resolveBudget -= 1;
      if (this.resolveBudget < 0) throw new ArchiveError('archive has too many symlinks to check');
      if (steps > MAX_RESOLVE_STEPS) return 'loop';
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (stack.length === 1) return 'escapes';
        stack.pop();
        continue;
      }
      const child = stack[stack.length - 1]?.children?.get(part);
      if (child?.kind === 'symlink') {
        hops += 1;
        if (hops > MAX_SYMLINK_HOPS) return 'loop';
        frames.push({ parts: (child.target ?? '').split('/'), next: 0 });
        continue;
      }
      stack.push(child); // undefined below a name the archive does not have: a dangling link, harmless
    }
    return 'inside';
  }
}

/** Whether a target climbs above the root by ".." alone, from a link `depth` directories down. */
function lexicallyEscapes(depth: number, target: string): boolean {
  let level = depth;
  for (const part of target.split('/')) {
    if (part === '..') level -= 1;
    else if (part !== '' && part !== '.') level += 1;
    if (level < 0) return true;
  }
  return false;
}

/** The checks a symlink target needs on its own; escape checks need the whole tree (Checker). */
function checkSymlinkTarget(name: string, target: string): string {
  if (target === '') throw new ArchiveError(`symlink ${show(name)} has an empty target`);
  if (Buffer.byteLength(target, 'utf8') > MAX_NAME_BYTES) {
    throw new ArchiveError(`symlink ${show(name)} has a target longer than ${MAX_NAME_BYTES} bytes`);
  }
  checkChars(target, `symlink ${show(name)} -> ${show(target)}`, 'target');
  if (target.startsWith('/') || target.startsWith('\\') || /^[A-Za-z]:/.test(target)) {
    throw new ArchiveError(`symlink ${show(name)} -> ${show(target)} points to an absolute path`);
  }
  if (target.includes('\\')) throw new ArchiveError(`symlink ${show(name)} -> ${show(target)} has a backslash in its target`);
  return target;
}

// ---------------------------------------------------------------------------------------------
// tar / tar.gz

type Visitor = (item: Item) => Promise<void>;

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
async function walkTar(buf: Buffer, gzipped: boolean, limits: ArchiveLimits, visit: Visitor): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// zip

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

async function walkZip(buf: Buffer, limits: ArchiveLimits, visit: Visitor): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// The public functions

function checkLimits(limits: ArchiveLimits): void {
  for (const key of ['maxTotalBytes', 'maxEntries'] as const) {
    const v = limits[key];
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`ArchiveLimits.${key} must be a non-negative integer, got ${v}`);
  }
}

function walk(buf: Buffer, format: ArchiveFormat, limits: ArchiveLimits, visit: Visitor): Promise<void> {
  return format === 'zip' ? walkZip(buf, limits, visit) : walkTar(buf, format === 'tar.gz', limits, visit);
}

/** Validates the whole archive without writing anything. Throws ArchiveError on any problem. */
export async function inspectArchive(buf: Buffer, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<ArchiveSummary> {
  checkLimits(limits);
  const format = formatOrThrow(buf);
  const checker = new Checker(limits);
  await walk(buf, format, limits, async (item) => {
    checker.add(item);
    if (item.body) {
      checker.reserve(item.declaredSize);
      for await (const chunk of item.body) checker.addBytes(chunk.length);
    }
  });
  return checker.finish(format);
}

function inside(root: string, rel: string): string {
  const abs = rel === '' ? root : path.join(root, ...rel.split('/'));
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  if (abs !== root && !abs.startsWith(prefix)) throw new Error(`internal error: ${rel} resolves outside ${root}`);
  return abs;
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

async function writeFully(fh: import('node:fs/promises').FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Validates the archive (inspectArchive), then extracts it into destDir, which is created if missing
 * and must be empty if it exists. Directories get 0755, files 0644 (0755 if the archive set any exec
 * bit); ownership, timestamps and other modes from the archive are ignored. If writing fails half
 * way, destDir is emptied again (and removed if this call created it).
 */
export async function extractArchive(buf: Buffer, destDir: string, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<ArchiveSummary> {
  const root = path.resolve(destDir);
  let present: string[] | undefined;
  try {
    present = await readdir(root);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (present && present.length > 0) throw new Error(`extractArchive: destination ${root} is not empty`);

  const summary = await inspectArchive(buf, limits);
  const format = summary.format;

  // mkdir returns the topmost directory it had to create (undefined if root already existed).
  const created = await mkdir(root, { recursive: true, mode: 0o755 });
  try {
    const checker = new Checker(limits);
    const dirs = new Set<string>(['']);
    const hardlinks: { rel: string; target: string }[] = [];
    const symlinks: { rel: string; target: string }[] = [];

    const ensureDir = async (rel: string): Promise<void> => {
      if (dirs.has(rel)) return;
      await ensureDir(parentOf(rel));
      const abs = inside(root, rel);
      try {
        await mkdir(abs, { mode: 0o755 });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        if (!(await lstat(abs)).isDirectory()) throw new Error(`extractArchive: ${abs} exists and is not a directory`);
      }
      await chmod(abs, 0o755);
      dirs.add(rel);
    };

    await walk(buf, format, limits, async (item) => {
      const rel = checker.add(item);
      switch (item.kind) {
        case 'dir':
          await ensureDir(rel);
          return;
        case 'symlink':
          symlinks.push({ rel, target: item.target ?? '' });
          return;
        case 'hardlink':
          hardlinks.push({ rel, target: normalizeName(item.target ?? '', 'target') });
          return;
        case 'file': {
          await ensureDir(parentOf(rel));
          const mode = item.exec ? 0o755 : 0o644;
          // O_EXCL + O_NOFOLLOW: never reuse or follow anything already there.
          const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
          const fh = await open(inside(root, rel), flags, mode);
          try {
            checker.reserve(item.declaredSize);
            if (item.body) {
              for await (const chunk of item.body) {
                checker.addBytes(chunk.length);
                await writeFully(fh, chunk);
              }
            }
            await fh.chmod(mode); // the umask does not get a say
          } finally {
            await fh.close();
          }
          return;
        }
      }
    });
    const done = checker.finish(format);

    // Links last: by now every regular file and directory is in place.
    for (const { rel, target } of hardlinks) {
      await ensureDir(parentOf(rel));
      await link(inside(root, target), inside(root, rel));
    }
    for (const { rel, target } of symlinks) {
      await ensureDir(parentOf(rel));
      await symlink(target, inside(root, rel));
    }
    return done;
  } catch (err) {
    await undoExtraction(root, created);
    throw err;
  }
}

/** Best effort: removes what a failed extraction wrote (and the directories it created). */
async function undoExtraction(root: string, created: string | undefined): Promise<void> {
  try {
    if (created) {
      await rm(created, { recursive: true, force: true });
      return;
    }
    for (const name of await readdir(root)) await rm(path.join(root, name), { recursive: true, force: true });
  } catch {
    // the original error is the one worth reporting
  }
}

// ---------------------------------------------------------------------------------------------
// packDirectory

interface IgnoreRule {
  negate: boolean;
  dirOnly: boolean;
  /** No slash in the pattern: matched against the last path component at any depth. */
  basename: boolean;
  re: RegExp;
}

function globToRegExp(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') {
      if (glob.charAt(i + 1) === '*') {
        if (glob.charAt(i + 2) === '/') {
          out += '(?:.*/)?';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
      } else {
        let cls = glob.slice(i + 1, close).replace(/\\/g, '\\\\');
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        out += `[${cls}]`;
        i = close;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      i += 1;
      out += glob.charAt(i).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return out;
}

function parseIgnoreLine(line: string): IgnoreRule | null {
  let s = line.trim();
  if (s === '' || s.startsWith('#')) return null;
  const negate = s.startsWith('!');
  if (negate) s = s.slice(1);
  const dirOnly = s.endsWith('/');
  s = s.replace(/\/+$/, '');
  const anchored = s.startsWith('/') || s.includes('/');
  s = s.replace(/^\/+/, '');
  if (s === '') return null;
  return { negate, dirOnly, basename: !anchored, re: new RegExp(`^${globToRegExp(s)}$`) };
}

/** A .gitignore-style matcher: last matching rule wins, and an ignored directory hides all below it. */
function ignoreMatcher(patterns: readonly string[]): (rel: string, isDir: boolean) => boolean {
  const rules = patterns.map(parseIgnoreLine).filter((r): r is IgnoreRule => r !== null);
  const matches = (rel: string, isDir: boolean): boolean => {
    let ignored = false;
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    for (const rule of rules) {
      if (rule.dirOnly && !isDir) continue;
      if (rule.re.test(rule.basename ? base : rel)) ignored = !rule.negate;
    }
    return ignored;
  };
  return (rel, isDir) => {
    const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
    for (let i = 1; i <= parts.length; i++) {
      if (matches(parts.slice(0, i).join('/'), i < parts.length || isDir)) return true;
    }
    return false;
  };
}

const ALWAYS_IGNORE = ['.git', '**/node_modules/.cache'];

function isDirStat(s: Stats | ReadEntry): boolean {
  return s instanceof ReadEntry ? s.type === 'Directory' : s.isDirectory();
}

/**
 * Packs dir's contents into a .tar.gz with the entries at the archive root ("index.js", not
 * "dir/index.js"). `ignore` takes .gitignore-style lines ("name", "dir/", "*.ext", "**\/x", "/x",
 * "!keep"); .git and node_modules/.cache are always left out. Owners are not recorded (portable).
 */
export async function packDirectory(dir: string, opts: { ignore?: string[] } = {}): Promise<Buffer> {
  const root = path.resolve(dir);
  if (!(await stat(root)).isDirectory()) throw new Error(`packDirectory: ${dir} is not a directory`);
  const always = ignoreMatcher(ALWAYS_IGNORE);
  const user = ignoreMatcher(opts.ignore ?? []);
  const ignored = (rel: string, isDir: boolean): boolean => always(rel, isDir) || user(rel, isDir);

  const top: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (!ignored(name, (await lstat(path.join(root, name))).isDirectory())) top.push(name);
  }
  if (top.length === 0) throw new Error(`packDirectory: nothing to pack in ${dir} (empty, or everything is ignored)`);

  const pack = tarCreate(
    {
      gzip: true,
      cwd: root,
      portable: true,
      filter: (p: string, s: Stats | ReadEntry) => !ignored(p.split(path.sep).join('/'), isDirStat(s)),
    },
    top,
  );
  return pack.concat();
}
