// Backups of the DB service's store, the service's side (`zfaas backup` is the client: cli/backup.ts).
//
// backupOpen takes a snapshot of the store (StoreBackend.snapshot: a LevelDB iterator, or a PostgreSQL
// transaction of repeatable read), which yields every record of the store as of that instant by kind
// (db/backup-records.ts: runtimes, archives, functions, calls, idempotency keys, schedules, namespaces, keys,
// sealed secrets), however long it takes to read and whatever is written meanwhile.
// backupNext reads the next records (awaited, a bounded number per read, never a sync loop) into
// one chunk of about chunkBytes, sent as blob frames of records (one per read, and a large value as it is:
// no large copy at once). A session ends with its last chunk, with backupClose, or after idleMs without a request: an
// abandoned backup must not pin its snapshot (which keeps LevelDB from dropping what was overwritten
// since) forever. At most maxSessions run at once.
//
// Records, in the blob frames of a chunk and in the body of a backup file: for each entry, the key's length
// (uint32, big-endian), the key, the value's length (uint32, big-endian), the value (encodeRecord).
import { randomBytes } from 'node:crypto';
import { errText } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { ConflictError, NotFoundError, type StoreBackend } from './store-api.js';
import { encodeRecord } from './backup-records.js';

export const BACKUP_IDLE_MS = 60_000;
export const BACKUP_MAX_SESSIONS = 4;
export const BACKUP_CHUNK_BYTES = 4 * 1024 * 1024;

// Records and bytes per read of the snapshot (a quarter of a chunk at most, so that a chunk overshoots
// chunkBytes by little): a read stops at whichever comes first, and yields at least one record.
const READ_ENTRIES = 1000;
const READ_BYTES = 1024 * 1024;

export interface BackupOptions {
  idleMs?: number; // a session is closed after this long without a request
  maxSessions?: number; // backups at once; one more is refused (CONFLICT)
  chunkBytes?: number; // a chunk's records: this many bytes or more (one entry may be larger on its own)
}

export interface BackupOpened {
  id: string;
  startedAt: string;
  idleMs: number;
  chunkBytes: number;
}

export interface BackupChunk {
  done: boolean; // the last chunk: the session is closed
  entries: number;
  bytes: number;
  frames: Buffer[]; // the records (see recordFrames)
}

interface Session {
  id: string;
  startedAt: string;
  iterator: Awaited<ReturnType<StoreBackend['snapshot']>>;
  timer?: NodeJS.Timeout;
  reading: boolean;
  closed: boolean;
  entries: number;
  bytes: number;
}

// The length of one record of this key and value.
export const recordBytes = (key: Buffer, value: Buffer): number => 8 + key.length + value.length;

// A value this large is not copied into a frame: it is a frame of its own, sent as LevelDB gave it.
const OWN_FRAME = 64 * 1024;

// The records of these entries as frames: small ones copied together, a large value as it is (so a record
// may span frames; the frames of a chunk, in order, are whole records).
export function recordFrames(entries: Array<[Buffer, Buffer]>): Buffer[] {
  const frames: Buffer[] = [];
  let from = 0;
  while (from < entries.length) {
    // Up to and including the next large value's heads and key.
    let size = 0;
    let to = from;
    let large: Buffer | undefined;
    for (; to < entries.length && !large; to++) {
      const [key, value] = entries[to]!;
      if (value.length >= OWN_FRAME) {
        large = value;
        size += 8 + key.length;
      } else size += recordBytes(key, value);
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = from; i < to; i++) {
      const [key, value] = entries[i]!;
      at = out.writeUInt32BE(key.length, at);
      at += key.copy(out, at);
      at = out.writeUInt32BE(value.length, at);
      if (value !== large) at += value.copy(out, at);
    }
    frames.push(out);
    if (large) frames.push(large);
    from = to;
  }
  return frames;
}

// Counts the records in a sequence of frames, which may split a record anywhere.
export class RecordCounter {
  count = 0;
  private phase: 'keyLength' | 'key' | 'valueLength' | 'value' = 'keyLength';
  private readonly head = Buffer.alloc(4);
  private have = 0; // bytes of a length head
  private left = 0; // bytes of a key or value still to come

  push(buf: Buffer): void {
    let at = 0;
    for (;;) {
      if (this.phase === 'key' || this.phase === 'value') {
        const k = Math.min(this.left, buf.length - at);
        this.left -= k;
        at += k;
        if (this.left > 0) return;
        if (this.phase === 'value') this.count++;
        this.phase = this.phase === 'key' ? 'valueLength' : 'keyLength';
        continue;
      }
      if (at >= buf.length) return;
      const k = Math.min(4 - this.have, buf.length - at);
      buf.copy(this.head, this.have, at, at + k);
      this.have += k;
      at += k;
      if (this.have < 4) return;
      this.have = 0;
      this.left = this.head.readUInt32BE(0);
      this.phase = this.phase === 'keyLength' ? 'key' : 'value';
    }
  }

  // Between two records (not inside one).
  get whole(): boolean {
    return this.phase === 'keyLength' && this.have === 0;
  }
}

export class BackupSessions {
  private readonly sessions = new Map<string, Session>();
  private opening = 0; // snapshots being taken
  private readonly idleMs: number;
  private readonly maxSessions: number;
  private readonly chunkBytes: number;

  constructor(
    private readonly store: StoreBackend,
    private readonly log: Logger,
    opts: BackupOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? BACKUP_IDLE_MS;
    this.maxSessions = opts.maxSessions ?? BACKUP_MAX_SESSIONS;
    this.chunkBytes = opts.chunkBytes ?? BACKUP_CHUNK_BYTES;
  }

  // A new session: its snapshot is taken now.
  async open(): Promise<BackupOpened> {
    if (this.sessions.size + this.opening >= this.maxSessions)
      throw new ConflictError(`${this.sessions.size} backups are running already (at most ${this.maxSessions}): try again later`);
    this.opening++;
    const readBytes = Math.max(1, Math.min(READ_BYTES, Math.floor(this.chunkBytes / 4)));
    const iterator = await this.store.snapshot(readBytes).finally(() => this.opening--);
    const s: Session = {
      id: randomBytes(16).toString('hex'),
      startedAt: new Date().toISOString(),
      iterator,
      reading: false,
      closed: false,
      entries: 0,
      bytes: 0,
    };
    this.sessions.set(s.id, s);
    this.arm(s);
    this.log.info({ backup: s.id }, 'backup started');
    return { id: s.id, startedAt: s.startedAt, idleMs: this.idleMs, chunkBytes: this.chunkBytes };
  }

  // The next chunk of session `id`: records of chunkBytes or more, fewer at the end (`done`, and the
  // session is closed). One chunk at a time per session.
  async next(id: string): Promise<BackupChunk> {
    const s = this.get(id);
    if (s.reading) throw new ConflictError(`a chunk of backup ${id} is being read already`);
    s.reading = true;
    clearTimeout(s.timer);
    try {
      const frames: Buffer[] = [];
      let bytes = 0;
      let entries = 0;
      let done = false;
      while (bytes < this.chunkBytes) {
        const batch = (await s.iterator.next(READ_ENTRIES)).map(encodeRecord);
        if (s.closed) throw new NotFoundError(`backup ${id} was closed`);
        if (batch.length === 0) {
          done = true;
          break;
        }
        for (const frame of recordFrames(batch)) {
          frames.push(frame);
          bytes += frame.length;
        }
        entries += batch.length;
      }
      s.entries += entries;
      s.bytes += bytes;
      if (done) {
        this.log.info({ backup: id, entries: s.entries, bytes: s.bytes }, 'backup finished');
        await this.end(s);
      }
      return { done, entries, bytes, frames };
    } catch (e) {
      if (!s.closed) this.log.warn({ backup: id, err: errText(e) }, 'backup failed');
      await this.end(s); // a failed read ends the session: the client cannot know where it stopped
      throw e;
    } finally {
      s.reading = false;
      if (!s.closed) this.arm(s);
    }
  }

  // Ends session `id` early (the client gave up); false if there is no such session (any more).
  async close(id: string): Promise<{ closed: boolean }> {
    const s = this.sessions.get(id);
    if (!s) return { closed: false };
    this.log.info({ backup: id, entries: s.entries }, 'backup aborted by its client');
    await this.end(s);
    return { closed: true };
  }

  // Every session (the service stops).
  async closeAll(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => this.end(s)));
  }

  private get(id: string): Session {
    const s = this.sessions.get(id);
    if (!s) throw new NotFoundError(`backup ${id} not found: it finished, was aborted, or was closed after ${this.idleMs} ms idle`);
    return s;
  }

  // The idle timer, from the last request on (it never keeps the process alive).
  private arm(s: Session): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      this.log.warn({ backup: s.id, entries: s.entries, idleMs: this.idleMs }, 'backup closed: no request for too long');
      void this.end(s);
    }, this.idleMs);
    s.timer.unref();
  }

  // Forgets the session at once (its slot is free) and closes its iterator (after a read in progress).
  private async end(s: Session): Promise<void> {
    clearTimeout(s.timer);
    s.closed = true;
    this.sessions.delete(s.id);
    try {
      await s.iterator.close();
    } catch (e) {
      this.log.warn({ backup: s.id, err: errText(e) }, 'backup iterator did not close');
    }
  }
}
