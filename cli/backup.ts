// zfaas backup and zfaas restore: a consistent copy of the DB service's whole store, taken while it runs and
// serves writes, and a new LevelDB folder made from it that `zfaas db --data DIR` serves as it was.
//
// backup asks the DB service for a snapshot (backupOpen: one LevelDB iterator, so every key as of one
// instant; see db/backup.ts) and reads it chunk by chunk (backupNext, about 4 MiB of records each) into
// the file. restore writes the records into a new LevelDB in batches; it is not offered into a running
// service: a LevelDB folder has one writer, the service that holds its lock, and a store merged into a
// live one would not be any instant's state.
//
// The file (version 2) is encrypted (backup-cipher.ts: AES-256-GCM, every part authenticated, under the
// operator's backup key, backup-key.ts) and written 0600. What it seals is gzip-compressed as a whole:
//   header   one JSON line: {"format":"zfaas-backup","version":2,"createdAt":ISO,"snapshotAt":ISO,"source":ADDR}
//   records  per entry: key length (uint32 BE), key, value length (uint32 BE), value; the raw keys and
//            values of the root database (every sublevel, its prefix in the key), in key order
//   end      the uint32 0xFFFFFFFF where a key length would be
//   trailer  one JSON line: {"entries":N,"bytes":B,"sha256":HEX}, B and HEX of the records' bytes
// and nothing after it. restore opens the file with the key (refusing another key's file, and a file
// changed, cut short or spliced), then checks the header, the records' structure, the trailer's count,
// size and checksum, and refuses anything else. A version 1 file (the same, gzip only, from before backups
// were encrypted) is restored only when asked with --unencrypted.
//
// Only light modules are loaded here (main.ts registers these commands with the others); the DB client,
// zeromq and level are imported when a command runs.
import { Option, type Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { z } from 'zod';
import type { StoreBackend } from '../db/store-api.js';
import type { Store as LevelStore } from '../db/store.js';
import type { PgStore as PgStoreType } from '../db/pg-store.js';
import { CliError, describeFailure, EXIT, printable, UsageError, errText } from './client/errors.js';
import { opener, sealer, SEALED_VERSION, Unopenable } from './backup-cipher.js';
import { backupKey, BackupKeyProblem } from './backup-key.js';

export const BACKUP_FORMAT = 'zfaas-backup';
// 3: logical records (db/backup-records.ts), which an older zfaas refuses by this number rather than
// misreads; 2: encrypted, raw LevelDB entries; 1: gzip only, raw, from before backups were encrypted.
export const BACKUP_VERSION = 3;
const RAW_VERSION = SEALED_VERSION;
const UNSEALED_VERSION = 1;
const END = 0xffffffff;
const MAX_LINE = 64 * 1024; // header and trailer
const MAX_KEY = 64 * 1024 * 1024; // a length beyond these is corruption, not a record
const MAX_VALUE = 1024 * 1024 * 1024;
const BATCH_BYTES = 4 * 1024 * 1024; // restore writes batches of about this much, or BATCH_ENTRIES
const BATCH_ENTRIES = 10_000;

const HeaderSchema = z.object({
  format: z.literal(BACKUP_FORMAT),
  version: z.number().int(),
  createdAt: z.string(),
  snapshotAt: z.string(),
  source: z.string().optional(),
});
export type BackupHeader = z.infer<typeof HeaderSchema>;
const TrailerSchema = z.object({
  entries: z.number().int().min(0),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
});

export interface BackupSummary {
  entries: number;
  bytes: number; // of records, uncompressed
  fileBytes: number; // as written (compressed)
  snapshotAt: string;
  ms: number;
}

export interface RestoreSummary {
  entries: number;
  bytes: number;
  snapshotAt: string;
  createdAt: string;
  ms: number;
}

export interface BackupRun {
  db: string; // the DB service's address
  out: string; // a file, or '-' for `stdout`
  keyFile?: string; // the backup key's file (backup-key.ts says where it is found otherwise)
  curveSecret?: string;
  curveServerKey?: string;
  timeoutMs?: number; // per request
  stdout?: Writable;
}

export interface RestoreRun {
  data?: string; // the new LevelDB folder (or `store`)
  store?: string; // a postgres:// URL of an empty zfaas database (a logical backup only)
  file: string; // a backup file, or '-' for `stdin`
  force?: boolean; // replace the store DIR holds
  keyFile?: string; // as for BackupRun
  unencrypted?: boolean; // a version 1 file (gzip only) is restored too
  stdin?: Readable;
}

// The file is not a zfaas backup, or not all of one: exit 1.
class BadBackup extends CliError {}

async function keyMaterial(keyFile: string | undefined): Promise<string> {
  try {
    return (await backupKey({ file: keyFile, make: false })).material;
  } catch (e) {
    if (e instanceof BackupKeyProblem) throw new UsageError(e.message);
    throw e;
  }
}

const size = (n: number): string => (n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);

async function curveOf(o: BackupRun): Promise<{ secretKey: string; serverKey: string } | undefined> {
  if (!o.curveSecret && !o.curveServerKey) return undefined;
  if (!o.curveSecret || !o.curveServerKey) throw new UsageError('CURVE needs both --curve-secret-key and --curve-server-key');
  const { curvePublicKey, parseKeyList } = await import('../common/curve.js');
  try {
    curvePublicKey(o.curveSecret);
    if (parseKeyList(o.curveServerKey).length !== 1) throw new Error('--curve-server-key is one public key');
  } catch (e) {
    throw new UsageError(`bad CURVE key: ${errText(e)}`);
  }
  return { secretKey: o.curveSecret, serverKey: o.curveServerKey };
}

// zfaas backup: the whole store as of one instant, into o.out (a partial file never takes its name).
export async function runBackup(o: BackupRun): Promise<BackupSummary> {
  const curve = await curveOf(o);
  const material = await keyMaterial(o.keyFile);
  const [{ DbClient, DbError }, { RecordCounter }] = await Promise.all([import('../db/client.js'), import('../db/backup.js')]);
  const t0 = Date.now();
  const db = new DbClient(o.db, o.timeoutMs ?? 60_000, curve);
  const hash = createHash('sha256');
  let entries = 0;
  let bytes = 0;
  let snapshotAt = '';
  let fileBytes = 0;

  async function* produce(): AsyncGenerator<Buffer> {
    const opened = await db.request('backupOpen', {});
    snapshotAt = opened.startedAt;
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: new Date().toISOString(),
      snapshotAt,
      source: o.db,
    };
    yield Buffer.from(`${JSON.stringify(header)}\n`);
    let done = false;
    try {
      while (!done) {
        const r = await db.requestWithBlobs('backupNext', { id: opened.id });
        const counter = new RecordCounter();
        for (const frame of r.blobs) counter.push(frame);
        const got = r.blobs.reduce((n, b) => n + b.length, 0);
        if (got !== r.data.bytes || !counter.whole || counter.count !== r.data.entries)
          throw new Error(
            `the DB service sent a malformed chunk (${got} bytes, ${counter.count} entries; ${r.data.bytes} and ${r.data.entries} announced)`,
          );
        entries += r.data.entries;
        bytes += got;
        done = r.data.done;
        for (const frame of r.blobs) {
          hash.update(frame);
          yield frame;
        }
      }
    } finally {
      // Given up (the file cannot be written, a request failed): free the service's snapshot now.
      // Safe to lose: the service closes a session left idle itself.
      if (!done) await db.request('backupClose', { id: opened.id }).catch(() => undefined);
    }
    const end = Buffer.alloc(4);
    end.writeUInt32BE(END, 0);
    yield end;
    yield Buffer.from(`${JSON.stringify({ entries, bytes, sha256: hash.digest('hex') })}\n`);
  }

  const counted = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of source) {
      fileBytes += b.length;
      yield b;
    }
  };

  const partial = o.out === '-' ? undefined : `${resolve(o.out)}.partial-${process.pid}`;
  try {
    // gzip at its default level: call records (JSON) shrink a lot; archives, compressed already, do not.
    // Then sealed: compression before encryption, as it only works that way round. Only the owner reads it.
    // Nothing to remove is what we want.
    if (partial) await unlink(partial).catch(() => undefined);
    const sink = partial ? createWriteStream(partial, { mode: 0o600, flags: 'wx' }) : (o.stdout ?? process.stdout);
    await pipeline(produce, createGzip(), sealer(material), counted, sink);
    if (partial) {
      const fh = await open(partial, 'r');
      await fh.sync().finally(() => fh.close()); // on disk before it takes its name
      await rename(partial, resolve(o.out));
    }
  } catch (e) {
    // Nothing to remove is what we want; the error that brought us here is the one to report.
    if (partial) await unlink(partial).catch(() => undefined);
    if (e instanceof DbError) {
      if (e.code === 'UNAVAILABLE')
        throw new CliError(
          `${e.message.replace(/^db service/, 'the DB service')}: is "zfaas db" running there${curve ? ', and does it let this CURVE key in' : ' (without CURVE keys)'}? (zfaas up's is ipc://DATA/run/db.sock)`,
          EXIT.UNREACHABLE,
        );
      throw new CliError(`backup failed: ${e.message}`);
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR')
      throw new UsageError(`cannot write ${o.out}: ${errText(e)}`);
    throw new CliError(`backup failed: ${errText(e)}`);
  } finally {
    db.close();
  }
  return { entries, bytes, fileBytes, snapshotAt, ms: Date.now() - t0 };
}

// Reads exact byte counts and lines from a stream of chunks.
class ByteReader {
  private readonly chunks: Buffer[] = [];
  private head = 0; // chunks before this one are used up
  private offset = 0; // into chunks[head]
  private buffered = 0;
  private ended = false;
  total = 0;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.buffered += r.value.length;
        this.total += r.value.length;
      }
    }
    return this.buffered >= n;
  }

  private advance(k: number): void {
    this.offset += k;
    this.buffered -= k;
    if (this.offset === this.chunks[this.head]?.length) {
      this.head++;
      this.offset = 0;
      if (this.head > 1024) {
        this.chunks.splice(0, this.head);
        this.head = 0;
      }
    }
  }

  // The next n bytes, or null if the stream ends first.
  async take(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[this.head]!;
      const k = Math.min(c.length - this.offset, n - at);
      c.copy(out, at, this.offset, this.offset + k);
      at += k;
      this.advance(k);
    }
    return out;
  }

  async u32(): Promise<number | null> {
    const b = await this.take(4);
    return b ? b.readUInt32BE(0) : null;
  }

  // The next line (without its \n); null if the stream ends first; 'long' beyond max bytes.
  async line(max: number): Promise<string | null | 'long'> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (!(await this.fill(1))) return null;
      const c = this.chunks[this.head]!;
      const nl = c.indexOf(10, this.offset);
      const end = nl === -1 ? c.length : nl;
      const piece = c.subarray(this.offset, end);
      len += piece.length;
      if (len > max) return 'long';
      parts.push(piece);
      this.advance(end - this.offset + (nl === -1 ? 0 : 1));
      if (nl !== -1) return Buffer.concat(parts).toString('utf8');
    }
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }
}

// What DIR holds before a restore: nothing (or no folder at all), a LevelDB store, or something else.
const LEVELDB_FILE = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst|dbtmp))$/;
async function folderState(dir: string): Promise<'missing' | 'empty' | 'store'> {
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new UsageError(`${dir} is not a folder`);
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    if (e instanceof UsageError) throw e;
    throw new UsageError(`cannot read ${dir}: ${errText(e)}`);
  }
  if (names.length === 0) return 'empty';
  if (names.includes('CURRENT') && names.every((n) => LEVELDB_FILE.test(n))) return 'store';
  throw new UsageError(`${dir} is neither empty nor a LevelDB store: restore into a new folder`);
}

const levelLocked = (e: unknown): boolean => {
  const err = e as { code?: unknown; cause?: { code?: unknown } };
  return err.code === 'LEVEL_LOCKED' || err.cause?.code === 'LEVEL_LOCKED';
};

// Where a restore writes: a LevelDB folder, or a PostgreSQL database. Records of a logical backup go
// through the store's restore() (db/backup-records.ts), each backend rebuilding its own indexes; the raw
// LevelDB entries of a backup from before backups were logical go into a LevelDB folder as they are.
interface Target {
  store: StoreBackend;
  level?: LevelStore;
  where: string;
  clear(): Promise<void>; // --force: what the store held goes
  discard(wrote: boolean): Promise<void>; // a failed restore: what it wrote goes
}

async function levelTarget(dir: string, force: boolean | undefined): Promise<Target> {
  const state = await folderState(dir);
  if (state === 'store' && !force)
    throw new UsageError(`${dir} holds a LevelDB store already: restore into a new folder, or add --force to replace it`);
  // A folder restore makes is the owner's alone, as the DB service keeps its own.
  if (state === 'missing') await mkdir(dir, { recursive: true, mode: 0o700 });
  const { Store } = await import('../db/store.js');
  const store = new Store(dir);
  try {
    await store.open();
  } catch (e) {
    if (state === 'missing') await rm(dir, { recursive: true, force: true });
    if (levelLocked(e)) throw new UsageError(`${dir} is in use (is "zfaas db" running on it?): stop that service first`);
    throw new CliError(`cannot open a LevelDB store at ${dir}: ${errText(e)}`);
  }
  return {
    store,
    level: store,
    where: dir,
    clear: () => (state === 'store' ? store.root().clear() : Promise.resolve()),
    discard: async (wrote) => {
      try {
        if (state === 'store' && wrote) await store.root().clear();
        await store.close();
        if (state === 'missing') await rm(dir, { recursive: true, force: true });
        else if (state === 'empty') for (const n of await readdir(dir)) if (LEVELDB_FILE.test(n)) await rm(`${dir}/${n}`, { force: true });
      } catch {
        // the error that got us here is the one to report
      }
    },
  };
}

async function pgTarget(url: string, force: boolean | undefined): Promise<Target> {
  const [{ PgStore }, { createLogger }, { shownStore }] = await Promise.all([
    import('../db/pg-store.js'),
    import('../common/log.js'),
    import('../db/open-store.js'),
  ]);
  let store: PgStoreType;
  try {
    store = await PgStore.open(url, createLogger('restore'));
  } catch (e) {
    throw new CliError(errText(e));
  }
  const empty = await store.isEmpty();
  if (!empty && !force) {
    await store.close();
    throw new UsageError(
      `the database at ${shownStore(url)} holds a zfaas store already: restore into an empty database, or add --force to replace it (stop its DB services first)`,
    );
  }
  return {
    store,
    where: shownStore(url),
    clear: () => (empty ? Promise.resolve() : store.wipe()),
    // What a failed restore wrote goes (each batch was its own transaction): the store is left empty.
    discard: async (wrote) => {
      try {
        if (wrote) await store.wipe();
        await store.close();
      } catch {
        // the error that got us here is the one to report
      }
    },
  };
}

// zfaas restore: the backup into a new LevelDB at o.data, or an empty PostgreSQL database at o.store. On
// any failure nothing is left that `zfaas db` could mistake for the store: a folder restore made is
// removed, a store replaced (--force) is left empty.
export async function runRestore(o: RestoreRun): Promise<RestoreSummary> {
  const t0 = Date.now();
  if (!o.data === !o.store) throw new UsageError('restore into either --data DIR (LevelDB) or --store postgres://... (PostgreSQL)');
  const name = o.file === '-' ? 'stdin' : o.file;
  const dir = o.data ? resolve(o.data) : undefined;
  if (dir)
    await folderState(dir).then((state) => {
      if (state === 'store' && !o.force)
        throw new UsageError(`${dir} holds a LevelDB store already: restore into a new folder, or add --force to replace it`);
    });
  let input: Readable;
  if (o.file === '-') input = o.stdin ?? process.stdin;
  else {
    try {
      if (!(await stat(o.file)).isFile()) throw new UsageError(`${o.file} is not a file`);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`cannot read ${o.file}: ${errText(e)}`);
    }
    input = createReadStream(o.file, { highWaterMark: 1024 * 1024 });
  }

  // What the file is, from its first bytes, before anything is made: a sealed backup needs its key.
  const source = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let first: IteratorResult<Buffer>;
  try {
    first = await source.next();
  } catch (e) {
    throw restoreError(e, name, 0);
  }
  const kind =
    first.done || first.value.length === 0 ? 'empty' : first.value[0] === 0x7b ? 'sealed' : first.value[0] === 0x1f ? 'gzip' : 'other';
  const stop = (e: CliError): CliError => {
    input.destroy();
    return e;
  };
  if (kind === 'empty') throw stop(new BadBackup(`${name} is not a zfaas backup: it is empty`));
  if (kind === 'other') throw stop(new BadBackup(`${name} is not a zfaas backup`));
  if (kind === 'gzip' && !o.unencrypted)
    throw stop(
      new BadBackup(
        `${name} is not encrypted (a backup from before backups were encrypted, or not a zfaas backup): add --unencrypted to restore it as it is`,
      ),
    );
  const material = kind === 'sealed' ? await keyMaterial(o.keyFile).catch((e: CliError) => Promise.reject(stop(e))) : undefined;
  const whole = async function* (): AsyncGenerator<Buffer> {
    if (!first.done) yield first.value;
    for (let r = await source.next(); !r.done; r = await source.next()) yield r.value;
  };

  let target: Target;
  try {
    target = dir ? await levelTarget(dir, o.force) : await pgTarget(o.store!, o.force);
  } catch (e) {
    input.destroy();
    throw e;
  }
  const [{ decodeRecord, isLogicalKey }, { SCHEMA }] = await Promise.all([import('../db/backup-records.js'), import('../db/migrate.js')]);

  let header: BackupHeader | undefined;
  let wrote = false; // the store was changed (the header was read)
  let compressed = 0;
  let entries = 0;
  let bytes = 0;
  let logical = false;
  const consume = async (source: AsyncIterable<Buffer>): Promise<void> => {
    const r = new ByteReader(source[Symbol.asyncIterator]());
    const first = await r.line(MAX_LINE);
    if (first === null && r.total === 0) throw new BadBackup(`${name} is not a zfaas backup: it is empty once decompressed`);
    let head: unknown;
    try {
      head = typeof first === 'string' ? JSON.parse(first) : undefined;
    } catch {
      head = undefined;
    }
    const parsedHead = HeaderSchema.safeParse(head);
    if (!parsedHead.success) throw new BadBackup(`${name} is not a zfaas backup (no "${BACKUP_FORMAT}" header)`);
    header = parsedHead.data;
    const expected = material === undefined ? [UNSEALED_VERSION] : [RAW_VERSION, BACKUP_VERSION];
    if (!expected.includes(header.version))
      throw new BadBackup(
        `${name} holds a zfaas backup of version ${header.version} where version ${expected.join(' or ')} belongs: it is not one this zfaas reads`,
      );
    wrote = true;
    await target.clear(); // --force: the old store's keys go, the backup's come
    const hash = createHash('sha256');
    const truncated = (): BadBackup => new BadBackup(`${name} is truncated: it ends after ${entries} entries, before its trailer`);
    let batch: Array<[Buffer, Buffer]> = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      const raw = batch.filter(([key]) => !isLogicalKey(key));
      if (raw.length > 0 && !target.level)
        throw new BadBackup(
          `${name} is a backup from before backups were logical (raw LevelDB keys): restore it with --data DIR, serve it with zfaas db, and take a new backup to move it to PostgreSQL`,
        );
      if (raw.length > 0) await target.level!.restoreRaw(raw);
      const records = batch.filter(([key]) => isLogicalKey(key));
      if (records.length > 0) logical = true;
      try {
        await target.store.restore(records.map(([key, value]) => decodeRecord(key, value)));
      } catch (e) {
        if (e instanceof z.ZodError || e instanceof SyntaxError)
          throw new BadBackup(`${name} is corrupted: a record does not read (${errText(e)})`);
        throw e;
      }
      batch = [];
      batchBytes = 0;
    };
    for (;;) {
      const keyHead = await r.take(4);
      if (!keyHead) throw truncated();
      const keyLen = keyHead.readUInt32BE(0);
      if (keyLen === END) break;
      if (keyLen > MAX_KEY) throw new BadBackup(`${name} is corrupted: entry ${entries + 1} has a key of ${keyLen} bytes`);
      const key = await r.take(keyLen);
      const valueHead = key && (await r.take(4));
      if (!key || !valueHead) throw truncated();
      const valueLen = valueHead.readUInt32BE(0);
      if (valueLen > MAX_VALUE) throw new BadBackup(`${name} is corrupted: entry ${entries + 1} has a value of ${valueLen} bytes`);
      const value = await r.take(valueLen);
      if (!value) throw truncated();
      hash.update(keyHead).update(key).update(valueHead).update(value);
      entries++;
      bytes += 8 + keyLen + valueLen;
      batch.push([key, value]);
      batchBytes += 8 + keyLen + valueLen;
      // Written as they come, before the checksum is known: a bad file fails at the end, and what it
      // wrote goes with discard().
      if (batchBytes >= BATCH_BYTES || batch.length >= BATCH_ENTRIES) await flush();
    }
    const last = await r.line(MAX_LINE);
    if (last === null) throw truncated();
    let tail: unknown;
    try {
      tail = typeof last === 'string' ? JSON.parse(last) : undefined;
    } catch {
      tail = undefined;
    }
    const trailer = TrailerSchema.safeParse(tail);
    if (!trailer.success) throw new BadBackup(`${name} is corrupted: its trailer is unreadable`);
    if (!(await r.atEnd())) throw new BadBackup(`${name} is corrupted: it goes on after its trailer`);
    const t = trailer.data;
    if (t.entries !== entries || t.bytes !== bytes)
      throw new BadBackup(`${name} is corrupted: ${entries} entries of ${bytes} bytes, its trailer says ${t.entries} of ${t.bytes}`);
    if (t.sha256 !== hash.digest('hex')) throw new BadBackup(`${name} is corrupted: the records do not match their checksum`);
    await flush();
    // A logical backup's LevelDB store gets its layout version (it holds the default namespace already);
    // the last write is synced, so LevelDB has every write of this restore on disk.
    if (logical && target.level) await target.level.setSchema(SCHEMA);
    await target.store.restored();
  };
  const countIn = async function* (source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const b of source) {
      compressed += b.length;
      yield b;
    }
  };

  try {
    if (material === undefined) await pipeline(whole, countIn, createGunzip(), consume);
    else await pipeline(whole, countIn, opener(material, name), createGunzip(), consume);
  } catch (e) {
    input.destroy();
    await target.discard(wrote);
    throw restoreError(e, name, compressed);
  }
  await target.store.close();
  return { entries, bytes, snapshotAt: header?.snapshotAt ?? '', createdAt: header?.createdAt ?? '', ms: Date.now() - t0 };
}

function restoreError(e: unknown, name: string, compressed: number): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof Unopenable) return new BadBackup(e.message);
  const code = (e as { code?: unknown }).code;
  // zlib: a bad gzip header, a stream cut short, or damaged data (a bad block or CRC).
  if (code === 'Z_DATA_ERROR' && /header/i.test(errText(e)))
    return new BadBackup(`${name} is not a zfaas backup (not gzip-compressed: ${errText(e)})`);
  if (code === 'Z_BUF_ERROR')
    return compressed === 0
      ? new BadBackup(`${name} is not a zfaas backup: it is empty`)
      : new BadBackup(`${name} is truncated (${errText(e)} after ${compressed} bytes)`);
  if (typeof code === 'string' && code.startsWith('Z_')) return new BadBackup(`${name} is corrupted (${errText(e)})`);
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') return new UsageError(`cannot read ${name}: ${errText(e)}`);
  return new CliError(`restore failed: ${errText(e)}`);
}

// Runs a command: its failure is one line on stderr and an exit code (client/errors.ts).
async function act(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const f = describeFailure(e);
    console.error(`zfaas: ${printable(f.message)}`);
    process.exitCode = f.exitCode;
  }
}

const backupKeyOpt = (): Option =>
  new Option(
    '--backup-key-file <file>',
    'file holding the key backups are encrypted with (or the key itself in ZFAAS_BACKUP_KEY); default: the one zfaas up keeps',
  ).env('ZFAAS_BACKUP_KEY_FILE');

export function registerBackupCommands(p: Command): void {
  p.command('backup')
    .description("copy the DB service's whole store, as of one instant, into a file while it runs")
    .addOption(new Option('--db <addr>', 'DB service address').default('tcp://127.0.0.1:5560').env('ZFAAS_DB'))
    .requiredOption('--out <file>', "the backup file ('-': stdout)")
    .addOption(new Option('--curve-secret-key <z85>', 'CURVE secret key of a key pair the DB service allows').env('ZFAAS_CURVE_SECRET'))
    .addOption(new Option('--curve-server-key <z85>', 'CURVE public key of the DB service').env('ZFAAS_CURVE_SERVER_KEY'))
    .addOption(backupKeyOpt())
    .addHelpText(
      'after',
      [
        '',
        'The DB service keeps serving (writes too) meanwhile; the file holds every key as it was when the backup',
        'started. It is gzip-compressed, with a count and a SHA-256 of its records that `zfaas restore` checks,',
        'and encrypted with AES-256-GCM under the backup key (ZFAAS_BACKUP_KEY, else --backup-key-file, else the',
        'one zfaas up keeps: ~/.config/zfaas/backup.key); only its owner may read it (0600). Keep the key apart',
        'from the backups: restore needs it, and nothing else opens the file.',
        'With CURVE keys, use a key pair the DB service lets in: its own (it always allows its public key) or',
        "an instance's, and the DB service's public key as --curve-server-key.",
        '',
        'Examples:',
        '  zfaas backup --db ipc://$PWD/data/run/db.sock --out zfaas-$(date +%F).backup   # zfaas up --data ./data',
        '  zfaas backup --db tcp://127.0.0.1:5560 --backup-key-file /etc/zfaas/backup.key --out zfaas.backup',
        '  zfaas backup --out - | ssh backup-host "cat > zfaas.backup"',
        '  zfaas backup --db tcp://db-host:5560 --curve-secret-key "$SECRET" --curve-server-key "$DB_PUBLIC" --out zfaas.backup',
      ].join('\n'),
    )
    .action((o: { db: string; out: string; curveSecretKey?: string; curveServerKey?: string; backupKeyFile?: string }) =>
      act(async () => {
        const s = await runBackup({
          db: o.db,
          out: o.out,
          curveSecret: o.curveSecretKey,
          curveServerKey: o.curveServerKey,
          keyFile: o.backupKeyFile,
        });
        const where = o.out === '-' ? 'stdout' : o.out;
        console.error(
          `zfaas: backup of ${o.db} as of ${s.snapshotAt}: ${s.entries} entries (${size(s.bytes)}) in ${(s.ms / 1000).toFixed(1)} s, ${size(s.fileBytes)} written to ${where}`,
        );
      }),
    );

  p.command('restore')
    .description('make a new DB service store (a LevelDB folder, or an empty PostgreSQL database) from a backup file')
    .argument('<file>', "the backup file ('-': stdin)")
    .option('--data <dir>', 'the new LevelDB folder (missing or empty)')
    .option('--store <url>', 'or: a postgres:// URL of an empty database, for zfaas db --store URL')
    .option('--force', 'replace the store DIR (or the database) holds (its data is deleted; a failed restore leaves it empty)')
    .addOption(backupKeyOpt())
    .option('--unencrypted', 'also restore a backup from before backups were encrypted (gzip only, version 1)')
    .addHelpText(
      'after',
      [
        '',
        'Then `zfaas db --data DIR` (or `zfaas up --data D` for DIR = D/db) serves exactly what was backed up;',
        'with --store URL, `zfaas db --store URL`. A backup taken from either store restores into either.',
        'Restoring into a running DB service is not offered: a LevelDB store has one writer, the service that',
        'holds its lock, and merging into live data would give a state no instant ever had. Restore into a new',
        'folder, then stop the service and start it on that folder.',
        'The file is opened with the backup key it was made with; one made with another key, changed, cut short or',
        'spliced is refused before any of it is used.',
        '',
        'Examples:',
        '  zfaas restore --data ./data-restored/db zfaas.backup && zfaas db --data ./data-restored/db',
        '  ssh backup-host "cat zfaas.backup" | zfaas restore --data ./data/db -',
      ].join('\n'),
    )
    .action((file: string, o: { data?: string; store?: string; force?: boolean; backupKeyFile?: string; unencrypted?: boolean }) =>
      act(async () => {
        const s = await runRestore({
          data: o.data,
          store: o.store,
          file,
          force: o.force,
          keyFile: o.backupKeyFile,
          unencrypted: o.unencrypted,
        });
        console.log(
          `restored ${s.entries} entries (${size(s.bytes)}) of the backup as of ${s.snapshotAt} from ${file === '-' ? 'stdin' : basename(file)} into ${o.data ? resolve(o.data) : 'the PostgreSQL database'} in ${(s.ms / 1000).toFixed(1)} s`,
        );
      }),
    );
}
