// Backups of the DB service (db/backup.ts, cli/backup.ts) on real LevelDB folders in temp dirs, through a
// real DbServer over its ZMQ socket: a backup taken while 2,000 calls are being written restores into a
// store that is one instant of the first (a prefix of the calls, each with its indexes); a quiet store
// restores key for key, archives of several MiB byte for byte; the file is encrypted and its owner's alone,
// and opens only with its key; files that are not whole backups are refused and leave no store behind;
// sessions are bounded, and one left alone is closed after its idle time.
import { finishCall, startCall } from '../test/helpers/db-service.js';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Level } from 'level';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeFailure, EXIT } from '../cli/client/errors.js';
import { runBackup as backupWith, runRestore as restoreWith, type BackupRun, type RestoreRun } from '../cli/backup.js';
import { opener, sealer } from '../cli/backup-cipher.js';
import { isFinal, type Call, type CallOutcome } from '../common/model.js';
import { freePort, sleep, tempDir } from '../test/helpers/platform.js';
import fc from 'fast-check';
import { recordFrames, RecordCounter, type BackupOptions } from './backup.js';
import { DbClient, DbError } from './client.js';
import { DbServer } from './server.js';
import { usePostgres } from '../test/helpers/stores.js';

const pgDatabase = usePostgres();

// A DB service on `dir` with these backup limits, reached over its socket.
interface Service {
  bind: string;
  dir: string;
  db: DbClient;
  stop(): Promise<void>;
}
async function service(dir: string, backup?: BackupOptions): Promise<Service> {
  const bind = `tcp://127.0.0.1:${await freePort()}`;
  const server = new DbServer({ bind, dataDir: dir, log: pino({ level: 'silent' }), backup });
  await server.start();
  const db = new DbClient(bind, 30_000);
  return {
    bind,
    dir,
    db,
    stop: async () => {
      db.close();
      await server.stop();
    },
  };
}

let tmp: string;
let keyFile: string; // the backup key, as `zfaas up` keeps one
const KEY = randomBytes(32).toString('hex');
const runBackup = (o: BackupRun): ReturnType<typeof backupWith> => backupWith({ keyFile, ...o });
const runRestore = (o: RestoreRun): ReturnType<typeof restoreWith> => restoreWith({ keyFile, ...o });
const running: Service[] = [];
const start = async (dir: string, backup?: BackupOptions): Promise<Service> => {
  const s = await service(dir, backup);
  running.push(s);
  return s;
};
const stopAll = async (): Promise<void> => {
  for (const s of running.splice(0)) await s.stop();
};

beforeEach(async () => {
  tmp = await tempDir('zfaas-backup-');
  keyFile = join(tmp, 'backup.key');
  await writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
});
afterEach(async () => {
  await stopAll();
  await rm(tmp, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

async function deploy(db: DbClient, functionName: string, archive: Buffer, retries = 0): Promise<number> {
  await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
  await db.request('putArchive', { digest: sha(archive) }, [archive]);
  const fn = await db.request('addFunction', {
    functionName,
    runtimeName: 'py',
    digest: sha(archive),
    size: archive.length,
    format: 'tar.gz',
    settings: { retries, retryBackoff: 100 },
  });
  return fn.version;
}

const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom', logs: 'it failed', durationMs: 4 };
const done = (k: number): CallOutcome => ({ status: 'DONE', result: JSON.stringify({ k }), logs: '', durationMs: 2 });

// One call, written as the API and a node would: created (every 5th with an idempotency key, every 7th with
// a callback), then started and finished, except every 10th left PENDING and every 10th left RUNNING;
// every 3rd fails both its runs (the function has 1 retry) and is a dead letter.
async function oneCall(db: DbClient, version: number, k: number): Promise<number> {
  const c = await db.request('createCall', {
    funcName: 'f',
    version,
    params: { k, pad: 'p'.repeat(200) },
    ...(k % 5 === 0 ? { idempotency: { key: `key-${k}`, hash: sha(`k${k}`) } } : {}),
    ...(k % 7 === 0 ? { callback: { url: `http://127.0.0.1:9/cb/${k}` } } : {}),
  });
  const callNum = c.callNum;
  if (k % 10 === 9) return callNum;
  await startCall(db, { callNum, node: 'n1' });
  if (k % 10 === 8) return callNum;
  if (k % 3 === 0) {
    await finishCall(db, { callNum, node: 'n1', outcome: failed, ran: true });
    await startCall(db, { callNum, node: 'n2' });
    await finishCall(db, { callNum, node: 'n2', outcome: failed, ran: true });
  } else await finishCall(db, { callNum, node: 'n1', outcome: done(k), ran: true });
  return callNum;
}

// Every entry of a LevelDB folder, raw.
// The entries that are records (not indexes, not the store's own counters), as key and value in hex.
const logical = (es: Array<[Buffer, Buffer]>): string[] =>
  es.filter(([k]) => !/^!(open|dead|outbox|meta)!/.test(k.toString('latin1'))).map(([k, v]) => `${k.toString('latin1')}=${sha(v)}`);

async function rawEntries(dir: string): Promise<Array<[Buffer, Buffer]>> {
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open({ createIfMissing: false });
  try {
    return await db.iterator().all();
  } finally {
    await db.close();
  }
}

const calls = async (db: DbClient): Promise<Call[]> => db.request('listCalls', { limit: 100_000 });

describe('a backup taken while calls are written', () => {
  it('restores one instant of the store: a prefix of the calls, each with its indexes, and the counter where it was', async () => {
    // Small chunks: the backup takes ~100 requests, between which the writers go on.
    const src = await start(join(tmp, 'src'), { chunkBytes: 4 * 1024 });
    const version = await deploy(src.db, 'f', Buffer.from('an archive'), 1);
    await src.db.request('putSchedule', {
      id: 'a1',
      funcName: 'f',
      cron: '* * * * *',
      timezone: 'UTC',
      params: {},
      missed: 'skip',
      createdAt: new Date().toISOString(),
    });

    const TOTAL = 2000;
    const WRITERS = 8;
    let created = 0;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < TOTAL / WRITERS; i++) {
        await oneCall(src.db, version, w * (TOTAL / WRITERS) + i);
        created++;
      }
    });
    while (created < 300) await sleep(5);
    const file = join(tmp, 'live.backup');
    const createdBefore = created;
    const summary = await runBackup({ db: src.bind, out: file });
    const createdAfterBackup = created;
    expect(createdAfterBackup).toBeGreaterThan(createdBefore); // calls were made while it ran
    await Promise.all(writers);
    console.log(
      `backup while writing: ${summary.entries} entries, ${summary.bytes} bytes, file ${summary.fileBytes} bytes, ${summary.ms} ms; ` +
        `${createdBefore} calls made when it began, ${createdAfterBackup} when it ended (of ${TOTAL})`,
    );
    expect((await stat(file)).size).toBe(summary.fileBytes);

    const dir = join(tmp, 'restored');
    const restored = await runRestore({ data: dir, file });
    expect(restored.entries).toBe(summary.entries);
    const dst = await start(dir);
    const got = await calls(dst.db);

    // A prefix: calls 1..K, all of them, no more; and the writes went on after the snapshot.
    const K = got.length;
    expect(K).toBeGreaterThanOrEqual(300);
    expect(K).toBeLessThan(TOTAL);
    expect(got.map((c) => c.callNum)).toEqual(Array.from({ length: K }, (_, i) => i + 1));
    expect((await calls(src.db)).length).toBe(TOTAL);

    // Every call reads back, as listed.
    for (const c of got) expect(await dst.db.request('getCall', { callNum: c.callNum })).toEqual(c);

    // The indexes agree with the calls: unfinished, dead letters, callbacks due.
    const ids = (cs: Call[]): number[] => cs.map((c) => c.callNum).sort((a, b) => a - b);
    expect(ids(await dst.db.request('listUnfinished', {}))).toEqual(ids(got.filter((c) => !isFinal(c.status))));
    expect(ids(await dst.db.request('listDeadLetters', { limit: 10_000 }))).toEqual(ids(got.filter((c) => c.deadLetter === 'listed')));
    expect(got.some((c) => c.deadLetter === 'listed')).toBe(true);
    const due = await dst.db.request('claimDeliveries', { leaseMs: 60_000, limit: 1000 });
    expect(ids(due)).toEqual(ids(got.filter((c) => c.callback?.state === 'pending')));

    // Idempotency keys: the same request answers the call it made.
    const keyed = got.filter((c) => (c.params as { k: number }).k % 5 === 0).slice(0, 20);
    expect(keyed.length).toBeGreaterThan(0);
    for (const c of keyed) {
      const k = (c.params as { k: number }).k;
      const again = await dst.db.request('createCall', {
        funcName: 'f',
        version,
        params: c.params,
        idempotency: { key: `key-${k}`, hash: sha(`k${k}`) },
      });
      expect(again).toMatchObject({ callNum: c.callNum, replayed: true });
    }

    // The call counter is where the snapshot left it; the function, runtime and schedule are there.
    expect((await dst.db.request('createCall', { funcName: 'f', version, params: {} })).callNum).toBe(K + 1);
    expect(await dst.db.request('getFunction', { name: 'f' })).toEqual(await src.db.request('getFunction', { name: 'f' }));
    expect(await dst.db.request('listRuntimes', {})).toEqual(await src.db.request('listRuntimes', {}));
    expect((await dst.db.request('listSchedules', {})).map((s) => s.id)).toEqual(['a1']);
  });
});

describe('a backup of a quiet store', () => {
  it('restores every key and value as they were, archives of several MiB byte for byte', async () => {
    const src = await start(join(tmp, 'src'));
    const archives = [randomBytes(1024 * 1024), randomBytes(6 * 1024 * 1024), randomBytes(11 * 1024 * 1024)];
    for (const a of archives) await src.db.request('putArchive', { digest: sha(a) }, [a]);
    const version = await deploy(src.db, 'f', archives[0]!, 1);
    await src.db.request('putSchedule', {
      id: 'b2',
      funcName: 'f',
      cron: '0 * * * *',
      timezone: 'Europe/Paris',
      params: { x: 1 },
      missed: 'once',
      createdAt: new Date().toISOString(),
    });
    for (let k = 0; k < 60; k++) await oneCall(src.db, version, k);

    const file = join(tmp, 'quiet.backup');
    const b = await runBackup({ db: src.bind, out: file });
    // Encrypted, and its owner's alone: no stretch of an archive is in it as it was, and only the owner reads it.
    const bytes = await readFile(file);
    for (const a of archives) expect(bytes.includes(a.subarray(4096, 4096 + 64))).toBe(false);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const dir = join(tmp, 'restored');
    const r = await runRestore({ data: dir, file });
    expect(r).toMatchObject({ entries: b.entries, bytes: b.bytes, snapshotAt: b.snapshotAt });
    expect((await stat(dir)).mode & 0o777).toBe(0o700); // the folder restore made, as the DB service keeps its own

    const dst = await start(dir);
    for (const a of archives) {
      const got = await dst.db.requestWithBlobs('getArchive', { digest: sha(a) });
      expect(got.data).toEqual({ digest: sha(a), size: a.length });
      expect(got.blobs[0]!.equals(a)).toBe(true);
    }
    await stopAll();

    // Record for record as it was, and the indexes rebuilt from the calls: every sublevel is there.
    const before = await rawEntries(join(tmp, 'src'));
    const after = await rawEntries(dir);
    expect(logical(after)).toEqual(logical(before));
    expect(logical(after)).toHaveLength(b.entries);
    const indexes = (es: Array<[Buffer, Buffer]>) => es.filter(([k]) => /^!(open|dead|outbox)!/.test(k.toString('latin1')));
    expect(indexes(after)).toEqual(indexes(before));
    const prefixes = new Set(after.map(([k]) => k.toString('latin1').split('!')[1]));
    for (const p of ['rt', 'ar', 'fn', 'fv', 'call', 'idem', 'sched', 'dead', 'outbox']) expect(prefixes).toContain(p);
  });

  it('goes to stdout and comes back from stdin', async () => {
    const src = await start(join(tmp, 'src'));
    await deploy(src.db, 'f', Buffer.from('x'));
    const parts: Buffer[] = [];
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    out.on('data', (b: Buffer) => parts.push(b));
    const b = await runBackup({ db: src.bind, out: '-', stdout: out });
    const file = Buffer.concat(parts);
    expect(file.length).toBe(b.fileBytes);
    const r = await runRestore({ data: join(tmp, 'r'), file: '-', stdin: Readable.from([file]) });
    expect(r.entries).toBe(b.entries);
  });
});

describe('what restore refuses', () => {
  let good: Buffer;
  beforeEach(async () => {
    const src = await start(join(tmp, 'src'));
    const version = await deploy(src.db, 'f', randomBytes(200_000));
    for (let k = 0; k < 30; k++) await oneCall(src.db, version, k);
    await runBackup({ db: src.bind, out: join(tmp, 'good.backup') });
    good = await readFile(join(tmp, 'good.backup'));
    await stopAll();
  });

  // Restores `bytes` into a new folder: the one-line failure and exit code, and whether a store is left.
  async function refused(bytes: Buffer): Promise<{ message: string; exitCode: number; left: boolean }> {
    const file = join(tmp, `bad-${randomBytes(4).toString('hex')}`);
    await writeFile(file, bytes);
    const dir = join(tmp, `out-${randomBytes(4).toString('hex')}`);
    const e = await runRestore({ data: dir, file }).then(
      () => new Error('restore took it'),
      (x: unknown) => x,
    );
    const f = describeFailure(e);
    expect(f.message).not.toContain('\n');
    const left = await stat(join(dir, 'CURRENT')).then(
      () => true,
      () => false,
    );
    return { ...f, left };
  }

  // The file's sealed content (gzip of header, records, trailer), and a file sealed around such content.
  const unsealed = async (b: Buffer): Promise<Buffer> => {
    const out: Buffer[] = [];
    for await (const x of opener(KEY, 'good')(Readable.from([b]))) out.push(x);
    return Buffer.concat(out);
  };
  const sealed = async (content: Buffer): Promise<Buffer> => {
    const out: Buffer[] = [];
    for await (const x of sealer(KEY)(Readable.from([content]))) out.push(x);
    return Buffer.concat(out);
  };
  const records = async (b: Buffer): Promise<{ header: string; body: Buffer }> => {
    const raw = gunzipSync(await unsealed(b));
    const nl = raw.indexOf(10);
    return { header: raw.subarray(0, nl + 1).toString(), body: raw.subarray(nl + 1) };
  };

  it('a file that is not a backup', async () => {
    for (const bytes of [
      Buffer.from('hello, I am a text file\n'),
      Buffer.alloc(0),
      await sealed(gzipSync(Buffer.from('{"format":"something-else","version":2}\n'))),
      await sealed(gzipSync(randomBytes(100_000))),
      await sealed(randomBytes(100_000)),
    ]) {
      const r = await refused(bytes);
      expect(r).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
      expect(r.message).toMatch(/is not a zfaas backup/);
    }
  });

  it('a file made with another key, saying so, and one with no key to open it', async () => {
    const other = join(tmp, 'other.key');
    await writeFile(other, randomBytes(32).toString('hex'));
    const file = join(tmp, 'good.backup');
    const e = await runRestore({ data: join(tmp, 'out'), file, keyFile: other }).catch((x: unknown) => describeFailure(x));
    expect(e).toMatchObject({ exitCode: EXIT.FAILURE, message: expect.stringMatching(/was encrypted with another backup key/) });
    const none = await runRestore({ data: join(tmp, 'out'), file, keyFile: join(tmp, 'missing.key') }).catch((x: unknown) =>
      describeFailure(x),
    );
    expect(none).toMatchObject({
      exitCode: EXIT.USAGE,
      message: expect.stringMatching(/no backup key at .*missing\.key: backups are encrypted/),
    });
    await writeFile(join(tmp, 'short.key'), 'too-short');
    const short = await runBackup({ db: 'tcp://127.0.0.1:9', out: join(tmp, 'x'), keyFile: join(tmp, 'short.key') }).catch((x: unknown) =>
      describeFailure(x),
    );
    expect(short).toMatchObject({ exitCode: EXIT.USAGE, message: expect.stringMatching(/is 9 characters long/) });
    await expect(stat(join(tmp, 'out'))).rejects.toThrow(); // nothing made
  });

  it('an unencrypted backup (from before backups were encrypted) only when asked', async () => {
    const raw = gunzipSync(await unsealed(good));
    const v1 = gzipSync(Buffer.from(raw.toString('latin1').replace('"version":3', '"version":1'), 'latin1'));
    const r = await refused(v1);
    expect(r).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
    expect(r.message).toMatch(/is not encrypted .*add --unencrypted/);
    await writeFile(join(tmp, 'v1.backup'), v1);
    const ok = await runRestore({ data: join(tmp, 'from-v1'), file: join(tmp, 'v1.backup'), unencrypted: true });
    expect(ok.entries).toBeGreaterThan(30);
    // A version 2 body without the encryption around it is not one.
    const bare = await refused(gzipSync(raw));
    expect(bare.message).toMatch(/is not encrypted/);
  });

  it('a backup of raw LevelDB keys (from before records were logical) only into a LevelDB folder, as it was', async () => {
    // Such a file, made as older versions made it: every raw entry of the store's folder.
    const entries = await rawEntries(join(tmp, 'src'));
    const body = Buffer.concat(
      entries.map(([k, v]) => {
        const head = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
        return Buffer.concat([head(k.length), k, head(v.length), v]);
      }),
    );
    const header = (await records(good)).header.replace('"version":3', '"version":2'); // as they were numbered
    const trailer = JSON.stringify({ entries: entries.length, bytes: body.length, sha256: sha(body) });
    const end = Buffer.from([255, 255, 255, 255]);
    const file = join(tmp, 'raw.backup');
    await writeFile(file, await sealed(gzipSync(Buffer.concat([Buffer.from(header), body, end, Buffer.from(`${trailer}\n`)]))));

    const into = join(tmp, 'from-raw');
    expect((await runRestore({ data: into, file })).entries).toBe(entries.length);
    // Every entry as it was (and the call counter, which restore writes down).
    expect((await rawEntries(into)).filter(([k]) => k.toString() !== '!meta!lastCall')).toEqual(entries);
    const s = await start(into);
    expect(await calls(s.db)).toHaveLength(30);

    const r = await runRestore({ store: await pgDatabase(), file }).then(
      () => new Error('restore took it'),
      (x: unknown) => x,
    );
    expect(describeFailure(r).message).toMatch(/from before backups were logical .*restore it with --data DIR/);
  });

  it('a truncated file', async () => {
    for (const cut of [20, Math.floor(good.length / 2), good.length - 30]) {
      const r = await refused(good.subarray(0, cut));
      expect(r).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
      expect(r.message).toMatch(/is truncated|cut short/);
    }
    // Whole and sealed, the records cut short before the trailer.
    const { header, body } = await records(good);
    const r = await refused(await sealed(gzipSync(Buffer.concat([Buffer.from(header), body.subarray(0, Math.floor(body.length / 2))]))));
    expect(r).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
    expect(r.message).toMatch(/is truncated/);
  });

  it('a corrupted file', async () => {
    // A byte of the file changed: its part does not authenticate.
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)]! ^= 0xff;
    const a = await refused(flipped);
    expect(a).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
    expect(a.message).toMatch(/has been changed or damaged: its part \d+ does not authenticate/);

    // Sealed with the right key around records with one byte of a value changed: the checksum finds it.
    const { header, body } = await records(good);
    const changed = Buffer.from(body);
    changed[100]! ^= 0x01;
    const b = await refused(await sealed(gzipSync(Buffer.concat([Buffer.from(header), changed]))));
    expect(b).toMatchObject({ exitCode: EXIT.FAILURE, left: false });
    expect(b.message).toMatch(/is corrupted: the records do not match their checksum/);

    // Something after the trailer.
    const c = await refused(await sealed(gzipSync(Buffer.concat([Buffer.from(header), body, Buffer.from('more')]))));
    expect(c.message).toMatch(/is corrupted: it goes on after its trailer/);
  });

  it('a folder that holds a store, unless --force; a bad file never touches it', async () => {
    const file = join(tmp, 'good.backup');
    const dir = join(tmp, 'existing');
    const other = await start(dir);
    await other.db.request('putRuntime', { name: 'other', image: 'img', path: '/ws', dependencies: '', run: 'true' });

    // In use by a running service: refused even with --force.
    const inUse = await runRestore({ data: dir, file, force: true }).catch((e: unknown) => describeFailure(e));
    expect(inUse).toMatchObject({ exitCode: EXIT.USAGE, message: expect.stringMatching(/is in use/) });
    await stopAll();

    const noForce = await runRestore({ data: dir, file }).catch((e: unknown) => describeFailure(e));
    expect(noForce).toMatchObject({ exitCode: EXIT.USAGE, message: expect.stringMatching(/holds a LevelDB store already/) });

    // With --force, a file that is not a backup leaves the store as it was.
    await writeFile(join(tmp, 'junk'), await sealed(gzipSync(Buffer.from('junk\n'))));
    await expect(runRestore({ data: dir, file: join(tmp, 'junk'), force: true })).rejects.toThrow(/is not a zfaas backup/);
    let s = await start(dir);
    expect((await s.db.request('listRuntimes', {})).map((r) => r.name)).toEqual(['other']);
    await stopAll();

    // With --force and a good file: the backup's keys, and only those.
    await runRestore({ data: dir, file, force: true });
    s = await start(dir);
    expect((await s.db.request('listRuntimes', {})).map((r) => r.name)).toEqual(['py']);
    expect((await calls(s.db)).length).toBe(30);

    // A folder with other files in it.
    await writeFile(join(tmp, 'notes.txt'), 'x');
    const notEmpty = await runRestore({ data: tmp, file }).catch((e: unknown) => describeFailure(e));
    expect(notEmpty).toMatchObject({ exitCode: EXIT.USAGE, message: expect.stringMatching(/neither empty nor a LevelDB store/) });
  });
});

describe('backup sessions', () => {
  const code = async (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => 'OK',
      (e: unknown) => (e instanceof DbError ? e.code : String(e)),
    );

  it('one left alone is closed after its idle time, and its slot is free again', async () => {
    const s = await start(join(tmp, 'src'), { idleMs: 300, maxSessions: 2, chunkBytes: 1024 });
    const version = await deploy(s.db, 'f', Buffer.from('x'));
    for (let k = 0; k < 20; k++) await oneCall(s.db, version, k);

    const a = await s.db.request('backupOpen', {});
    expect(a.idleMs).toBe(300);
    const first = await s.db.requestWithBlobs('backupNext', { id: a.id });
    expect(first.data.done).toBe(false);
    // Asked again within its idle time: still there.
    await sleep(200);
    expect((await s.db.requestWithBlobs('backupNext', { id: a.id })).data.entries).toBeGreaterThan(0);
    await s.db.request('backupOpen', {}); // the second, never asked for a chunk
    expect(await code(s.db.request('backupOpen', {}))).toBe('CONFLICT'); // at most 2

    await sleep(700);
    expect(await code(s.db.request('backupNext', { id: a.id }))).toBe('NOT_FOUND');
    // Both were closed: two new ones fit.
    await s.db.request('backupOpen', {});
    await s.db.request('backupOpen', {});
  });

  it('is ended by backupClose, and by its last chunk', async () => {
    const s = await start(join(tmp, 'src'), { maxSessions: 1 });
    const a = await s.db.request('backupOpen', {});
    expect(await s.db.request('backupClose', { id: a.id })).toEqual({ closed: true });
    expect(await s.db.request('backupClose', { id: a.id })).toEqual({ closed: false });
    expect(await code(s.db.request('backupNext', { id: a.id }))).toBe('NOT_FOUND');

    const b = await s.db.request('backupOpen', {}); // the one slot is free again
    const last = await s.db.requestWithBlobs('backupNext', { id: b.id });
    // A new store holds only the default namespace: one chunk, the last.
    expect(last.data).toMatchObject({ done: true, entries: 1 });
    expect(await code(s.db.request('backupNext', { id: b.id }))).toBe('NOT_FOUND');
    await s.db.request('backupOpen', {});
  });

  it('an unreachable DB service is exit 69, and the file is not written', async () => {
    const out = join(tmp, 'never.backup');
    const e = await runBackup({ db: `tcp://127.0.0.1:${await freePort()}`, out, timeoutMs: 3000 }).catch((x: unknown) => x);
    expect(describeFailure(e).exitCode).toBe(EXIT.UNREACHABLE);
    await expect(stat(out)).rejects.toThrow();
  });
});

describe('records', () => {
  // The plain layout, one entry after another.
  const plain = (entries: Array<[Buffer, Buffer]>): Buffer =>
    Buffer.concat(
      entries.flatMap(([k, v]) => {
        const h = Buffer.alloc(4);
        h.writeUInt32BE(k.length);
        const m = Buffer.alloc(4);
        m.writeUInt32BE(v.length);
        return [h, k, m, v];
      }),
    );

  it('frames hold the records in order, large values as frames of their own; the counter counts them however cut', () => {
    const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
    const entry = fc.tuple(
      bytes(40),
      fc.oneof(
        bytes(300),
        fc.integer({ min: 64 * 1024, max: 70_000 }).map((n) => Buffer.alloc(n, n & 0xff)),
      ),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 8 }), (entries, cuts) => {
        const frames = recordFrames(entries);
        const all = Buffer.concat(frames);
        expect(all.equals(plain(entries))).toBe(true);
        for (const [, v] of entries) if (v.length >= 64 * 1024) expect(frames.some((f) => f === v)).toBe(true); // not copied
        // Cut anywhere: still that many records, and whole at the end only.
        const at = [...new Set(cuts.map((c) => (all.length ? c % all.length : 0)))].sort((a, b) => a - b);
        const counter = new RecordCounter();
        let from = 0;
        for (const c of [...at, all.length]) {
          counter.push(all.subarray(from, c));
          from = c;
        }
        expect(counter.count).toBe(entries.length);
        expect(counter.whole).toBe(true);
        if (all.length > 0) {
          const short = new RecordCounter();
          short.push(all.subarray(0, all.length - 1));
          expect(short.whole && short.count === entries.length).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });
});
