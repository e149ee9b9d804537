// The guarantees the API relies on that the other db tests do not already run on both stores: namespaces
// with their quotas, keys and sealed secrets, and a namespace's purge, on LevelDB and PostgreSQL alike;
// then, on PostgreSQL, what sharing a database between DB services must not break (one call per
// idempotency key, one move of a call per intent, each schedule tick recorded once, each callback
// delivery claimed by one service at a time); a backup from either store restoring into the other; and a
// PostgreSQL that cannot be reached at start, which is a clear error, not a wait. Real DB services over
// ZMQ, real LevelDB folders, a real throwaway PostgreSQL cluster (test/helpers/postgres.ts).
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DbUnderTest, finishCall, startCall } from '../test/helpers/db-service.js';
import { newPgDatabase, stores, type StoreKind } from '../test/helpers/stores.js';
import { freePort, tempDir } from '../test/helpers/platform.js';
import { runBackup, runRestore } from '../cli/backup.js';
import { DbError, type DbClient } from './client.js';
import { DbServer } from './server.js';
import type { Call, CallOutcome } from '../common/model.js';

const log = pino({ level: 'silent' });
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const done = (result: string): CallOutcome => ({ status: 'DONE', result, logs: '', durationMs: 2 });
const code = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'OK',
    (e: unknown) => (e instanceof DbError ? e.code : String(e)),
  );

const open: DbUnderTest[] = [];
const dbOn = async (store: string | undefined): Promise<DbUnderTest> => {
  const t = await DbUnderTest.open('zfaas-db-conf-', store);
  open.push(t);
  return t;
};
afterEach(async () => {
  for (const t of open.splice(0)) await t.remove();
});

async function deploy(db: DbClient, functionName: string, archive = Buffer.from('archive')): Promise<number> {
  await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
  await db.request('putArchive', { digest: sha(archive) }, [archive]);
  const fn = await db.request('addFunction', {
    functionName,
    runtimeName: 'py',
    digest: sha(archive),
    size: archive.length,
    format: 'tar.gz',
    settings: { retries: 1, retryBackoff: 100 },
  });
  return fn.version;
}

const keyRecord = (id: string, namespace: string) => ({
  id,
  namespace,
  role: 'invoker' as const,
  salt: randomBytes(16).toString('hex'),
  hash: sha(id),
  createdAt: new Date().toISOString(),
});

let kind: StoreKind;
describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });
  let t: DbUnderTest;
  beforeEach(async () => {
    t = await dbOn(await kind.store());
  });

  it("ends a version's build once (the first end wins), and drops its built tree with the last version holding it", async () => {
    const db = t.remote;
    const source = Buffer.from('source');
    const tree = Buffer.from('built tree');
    await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: 'pip install', run: 'true' });
    await db.request('putArchive', { digest: sha(source) }, [source]);
    const add = () =>
      db.request('addFunction', {
        functionName: 'built',
        runtimeName: 'py',
        digest: sha(source),
        size: source.length,
        format: 'tar.gz',
        settings: {},
        build: { state: 'building', startedAt: '2026-12-01T00:00:00.000Z' },
      });
    const v1 = await add();
    expect(v1.build?.state).toBe('building');
    await db.request('putArchive', { digest: sha(tree) }, [tree]);
    const at = { name: 'built', version: 1, createdAt: v1.createdAt };
    const finishedAt = '2026-12-01T00:00:04.000Z';
    const ready = await db.request('endBuild', {
      ...at,
      end: { state: 'ready', startedAt: 'x', finishedAt, digest: sha(tree), size: tree.length },
    });
    expect(ready.changed).toBe(true);
    expect(ready.fn?.build).toEqual({
      state: 'ready',
      startedAt: '2026-12-01T00:00:00.000Z',
      finishedAt,
      digest: sha(tree),
      size: tree.length,
    });
    const late = await db.request('endBuild', { ...at, end: { state: 'failed', startedAt: 'x', finishedAt, error: 'exit 3' } });
    expect(late).toMatchObject({ changed: false, why: 'the build has ended already (ready)' });
    expect((await db.request('getFunction', { name: 'built', version: 1 }))?.build?.state).toBe('ready');
    // Another deployment under the same name and version is not that build's.
    expect(
      (await db.request('endBuild', { ...at, createdAt: 'another', end: { state: 'ready', startedAt: 'x', finishedAt } })).changed,
    ).toBe(false);
    // The built tree stays while a version holds it, and goes with the last one.
    await add();
    expect((await db.request('deleteVersion', { name: 'built', version: 1 })).deleted).toBe(true);
    expect(await db.request('getArchive', { digest: sha(tree) })).toBeNull();
    expect(await db.request('getArchive', { digest: sha(source) })).not.toBeNull();
  });

  it('keeps namespaces with their quotas, keys (a revoked one stays revoked) and sealed secrets that open only with their key', async () => {
    const db = t.remote;
    expect((await db.request('listNamespaces', {})).map((n) => n.name)).toEqual(['default']);
    await db.request('createNamespace', { name: 'team-a', quotas: { running: 2 } });
    expect(await code(db.request('createNamespace', { name: 'team-a' }))).toBe('CONFLICT');
    expect((await db.request('setQuotas', { name: 'team-a', quotas: { perMinute: 60 } })).quotas).toEqual({ perMinute: 60 });
    expect(await code(db.request('setQuotas', { name: 'nobody', quotas: {} }))).toBe('NOT_FOUND');

    const key = keyRecord('0123456789abcdef', 'team-a');
    await db.request('putKey', key);
    expect(await db.request('getKey', { id: key.id })).toEqual(key);
    expect(await code(db.request('putKey', { ...key, namespace: 'default' }))).toBe('CONFLICT');
    await db.request('putKey', { ...key, revokedAt: new Date().toISOString() });
    expect(await code(db.request('putKey', key))).toBe('CONFLICT'); // revoked for good
    expect((await db.request('listKeys', { namespace: 'team-a' })).map((x) => x.id)).toEqual([key.id]);

    // Without a master key, secrets are refused; with one, a value comes back as it was, sealed at rest.
    expect(await code(db.request('putSecret', { namespace: 'team-a', name: 'token' }, [Buffer.from('s3cret')]))).toBe('UNAVAILABLE');
    await t.stop();
    const sealing = Buffer.alloc(32, 7);
    t.server = new DbServer({ bind: t.bind, dataDir: t.dir, store: t.store, log, secretsKey: sealing });
    await t.server.start();
    const { DbClient } = await import('./client.js');
    t.remote = new DbClient(t.bind, 30_000);
    t.local = new DbClient(t.server);
    const db2 = t.remote;
    expect(await db2.request('putSecret', { namespace: 'team-a', name: 'token' }, [Buffer.from('s3cret')])).toMatchObject({
      name: 'token',
      version: 1,
      bytes: 6,
    });
    expect((await db2.request('putSecret', { namespace: 'team-a', name: 'token' }, [Buffer.from('s3cret2')])).version).toBe(2);
    const read = await db2.requestWithBlobs('readSecrets', { namespace: 'team-a', names: ['token', 'none'] });
    expect(read.data.missing).toEqual(['none']);
    expect(read.blobs.map((b) => b.toString())).toEqual(['s3cret2']);
    expect((await db2.request('listSecrets', { namespace: 'team-a' })).map((s) => s.name)).toEqual(['token']);
    // Another namespace does not see it.
    await db2.request('createNamespace', { name: 'team-b' });
    expect((await db2.requestWithBlobs('readSecrets', { namespace: 'team-b', names: ['token'] })).data.missing).toEqual(['token']);

    // The namespace goes with its keys and secrets, and with its calls and idempotency keys.
    const version = await deploy(db2, 'team-a~f');
    const c = await db2.request('createCall', {
      funcName: 'team-a~f',
      version,
      params: {},
      idempotency: { key: 'team-a~operator~k1', hash: sha('r') },
    });
    await db2.request('deleteFunction', { name: 'team-a~f' });
    const gone = await db2.request('deleteNamespace', { name: 'team-a' });
    expect(gone).toMatchObject({ deleted: true, keys: [key.id], calls: 1, idempotencyKeys: 1 });
    expect(await db2.request('getCall', { callNum: c.callNum })).toBeNull();
    expect(await db2.request('getKey', { id: key.id })).toBeNull();
    // Made again under the same name, it starts from nothing; call numbers are never reused.
    await db2.request('createNamespace', { name: 'team-a' });
    expect(await db2.request('listSecrets', { namespace: 'team-a' })).toEqual([]);
    expect(await db2.request('listKeys', { namespace: 'team-a' })).toEqual([]);
    const again = await db2.request('createCall', { funcName: 'f', version: 1, params: {} });
    expect(again.callNum).toBe(c.callNum + 1);
    expect(await code(db2.request('deleteNamespace', { name: 'default' }))).toBe('CONFLICT');
  });
});

// Two DB services on one PostgreSQL database, as several would run for a control plane without a single
// point of failure: each request goes to either, at once.
describe('two DB services sharing one PostgreSQL database', () => {
  let a: DbUnderTest;
  let b: DbUnderTest;
  beforeEach(async () => {
    const url = await newPgDatabase();
    a = await dbOn(url);
    b = await dbOn(url);
  });
  const either = (i: number): DbClient => (i % 2 === 0 ? a.remote : b.remote);

  it('make one call of one idempotency key sent to both at once', async () => {
    const version = await deploy(a.remote, 'f');
    const made = await Promise.all(
      range(40).map((i) =>
        either(i).request('createCall', {
          funcName: 'f',
          version,
          params: {},
          idempotency: { key: 'default~operator~once', hash: sha('r') },
        }),
      ),
    );
    expect(new Set(made.map((c) => c.callNum)).size).toBe(1);
    expect(made.filter((c) => !c.replayed)).toHaveLength(1);
    expect(await a.remote.request('listCalls', {})).toHaveLength(1);
  });

  it('give concurrent calls unique numbers, and move one call once when both hear intents for it', async () => {
    const version = await deploy(a.remote, 'f');
    const calls = await Promise.all(range(60).map((i) => either(i).request('createCall', { funcName: 'f', version, params: { i } })));
    expect(new Set(calls.map((c) => c.callNum)).size).toBe(60);
    // Two nodes say they started each call, through different services: one start is taken.
    const starts = await Promise.all(
      calls.flatMap((c) => [
        startCall(a.remote, { callNum: c.callNum, node: 'n1', attempt: 1 }),
        startCall(b.remote, { callNum: c.callNum, node: 'n2', attempt: 1 }),
      ]),
    );
    expect(starts.filter((s) => s.changed)).toHaveLength(60);
    // Each ends once, with the result of the node that runs it.
    const ends = await Promise.all(
      calls.flatMap((c, i) => {
        const r = `r${c.callNum}`;
        return [
          finishCall(either(i), { callNum: c.callNum, outcome: done(r), ran: true }),
          finishCall(either(i + 1), { callNum: c.callNum, outcome: done(`${r}-late`), ran: true }),
        ];
      }),
    );
    expect(ends.filter((e) => e.changed)).toHaveLength(60);
    for (const c of calls) {
      const rec = (await b.remote.request('getCall', { callNum: c.callNum }))!;
      expect(rec.status).toBe('DONE');
      expect(rec.attempts).toBe(1);
      expect(rec.result.startsWith(`r${c.callNum}`)).toBe(true);
    }
  });

  it('record each schedule tick once, the latest staying, when both record ticks at once', async () => {
    await deploy(a.remote, 'f');
    await a.remote.request('putSchedule', {
      id: 'c1',
      funcName: 'f',
      cron: '* * * * *',
      timezone: 'UTC',
      params: {},
      missed: 'skip',
      createdAt: new Date().toISOString(),
    });
    const ticks = range(20).map((m) => new Date(Date.UTC(2026, 0, 1, 0, m)).toISOString());
    // Both services make each tick's call (keyed by the tick, as api/schedules.ts does) and record it.
    const made = await Promise.all(
      ticks.flatMap((tick) =>
        [a, b].map(async (s) => {
          const c = await s.remote.request('createCall', {
            funcName: 'f',
            version: 1,
            params: {},
            schedule: { id: 'c1', tick },
            idempotency: { key: `default~schedule:c1~${tick}`, hash: sha(tick) },
          });
          await s.remote.request('recordScheduleRun', { funcName: 'f', id: 'c1', tick, callNum: c.callNum });
          return c;
        }),
      ),
    );
    expect(new Set(made.map((c) => c.callNum)).size).toBe(ticks.length);
    const [sc] = await b.remote.request('listSchedules', { funcName: 'f' });
    expect(sc!.lastRun?.tick).toBe(ticks[ticks.length - 1]);
  });

  it('hand each due callback delivery to one service at a time while its lease runs', async () => {
    const version = await deploy(a.remote, 'f');
    const calls: Call[] = [];
    for (const i of range(40)) {
      const c = await either(i).request('createCall', { funcName: 'f', version, params: {}, callback: { url: 'http://127.0.0.1:9/cb' } });
      await startCall(a.remote, { callNum: c.callNum, node: 'n1' });
      calls.push((await finishCall(b.remote, { callNum: c.callNum, node: 'n1', outcome: done('ok'), ran: true })).call!);
    }
    const claims = await Promise.all(range(16).map((i) => either(i).request('claimDeliveries', { leaseMs: 60_000, limit: 7 })));
    const claimed = claims.flat().map((c) => c.callNum);
    expect(new Set(claimed).size).toBe(claimed.length); // never twice
    expect(claimed.sort((x, y) => x - y)).toEqual(calls.map((c) => c.callNum)); // and every one
    expect(await a.remote.request('claimDeliveries', { leaseMs: 60_000, limit: 50 })).toEqual([]);
  });
});

describe('backups across stores', () => {
  let tmp: string;
  let keyFile: string;
  beforeEach(async () => {
    tmp = await tempDir('zfaas-conf-backup-');
    keyFile = join(tmp, 'backup.key');
    await writeFile(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  });
  afterEach(async () => rm(tmp, { recursive: true, force: true }));

  // A store with a bit of everything: functions, an archive, calls (final, running, a dead letter, one with
  // a callback), an idempotency key, a schedule, a trigger, a namespace with a key.
  async function fill(db: DbClient): Promise<void> {
    const version = await deploy(db, 'f', randomBytes(300_000));
    await db.request('putSchedule', {
      id: 'ab',
      funcName: 'f',
      cron: '0 * * * *',
      timezone: 'UTC',
      params: {},
      missed: 'once',
      createdAt: 'x',
    });
    await db.request('putTrigger', {
      id: 'cd12',
      funcName: 'f',
      type: 'redis',
      url: 'redis://127.0.0.1:6379',
      source: 'orders',
      settings: { inFlight: 4, maxQueue: 100, maxBytes: 1024, deadLetter: 'list', dedupWindowS: 3600 },
      paused: true,
      createdAt: 'x',
    });
    for (const i of range(12)) {
      const c = await db.request('createCall', {
        funcName: 'f',
        version,
        params: { i },
        ...(i === 3 ? { idempotency: { key: 'default~operator~k3', hash: sha('3') } } : {}),
        ...(i === 4 ? { callback: { url: 'http://127.0.0.1:9/cb' } } : {}),
      });
      if (i === 12) continue; // PENDING
      await startCall(db, { callNum: c.callNum, node: 'n1' });
      if (i === 11) continue; // RUNNING
      const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom', logs: '', durationMs: 1 };
      await finishCall(db, { callNum: c.callNum, node: 'n1', outcome: i % 5 === 0 ? failed : done(`r${i}`), ran: true });
      if (i % 5 === 0) {
        await startCall(db, { callNum: c.callNum, node: 'n1' });
        await finishCall(db, { callNum: c.callNum, node: 'n1', outcome: failed, ran: true }); // a dead letter
      }
    }
    await db.request('createNamespace', { name: 'team-a', quotas: { running: 3 } });
    await db.request('putKey', keyRecord('fedcba9876543210', 'team-a'));
  }

  // What a user sees of a store, through the DB service.
  async function view(db: DbClient): Promise<unknown> {
    const fn = await db.request('getFunction', { name: 'f' });
    const archive = await db.requestWithBlobs('getArchive', { digest: fn!.digest });
    return {
      fn,
      archive: sha(archive.blobs[0]!),
      runtimes: await db.request('listRuntimes', {}),
      calls: await db.request('listCalls', {}),
      unfinished: (await db.request('listUnfinished', {})).map((c) => c.callNum),
      dead: (await db.request('listDeadLetters', {})).map((c) => c.callNum),
      schedules: await db.request('listSchedules', {}),
      triggers: await db.request('listTriggers', {}),
      namespaces: await db.request('listNamespaces', {}),
      keys: await db.request('listKeys', { namespace: 'team-a' }),
    };
  }

  for (const [from, to] of [
    ['leveldb', 'postgres'],
    ['postgres', 'leveldb'],
  ] as const) {
    it(`restores a backup taken from ${from} into ${to}, as it was`, async () => {
      const src = await dbOn(from === 'postgres' ? await newPgDatabase() : undefined);
      await fill(src.remote);
      const file = join(tmp, 'b.backup');
      await runBackup({ db: src.bind, out: file, keyFile });
      const before = await view(src.remote);

      const url = to === 'postgres' ? await newPgDatabase() : undefined;
      const dir = join(tmp, 'restored');
      await runRestore(url ? { store: url, file, keyFile } : { data: dir, file, keyFile });
      const dst = await dbOn(url);
      if (!url) {
        // The LevelDB folder restore made is served as it is.
        await dst.stop();
        const restored = new DbUnderTest(dir, dst.bind);
        await restored.start();
        open.push(restored);
        expect(await view(restored.remote)).toEqual(before);
        await checkAfterRestore(restored.remote);
      } else {
        expect(await view(dst.remote)).toEqual(before);
        await checkAfterRestore(dst.remote);
      }
      if (!url) return;
      // A PostgreSQL database that holds a store already is refused, unless replaced (--force); a restore
      // that fails leaves it empty, not half restored.
      const restore = (f: string, force?: boolean): Promise<string> =>
        runRestore({ store: url, file: f, keyFile, force }).then(
          () => 'restored',
          (e: Error) => e.message,
        );
      expect(await restore(file)).toMatch(/holds a zfaas store already/);
      expect(await restore(file, true)).toBe('restored');
      expect(await view(dst.remote)).toEqual(before);
      const whole = await readFile(file);
      await writeFile(join(tmp, 'cut.backup'), whole.subarray(0, whole.length - 40));
      expect(await restore(join(tmp, 'cut.backup'), true)).toMatch(/truncated|cut short/);
      expect(await dst.remote.request('listCalls', {})).toEqual([]);
      expect((await dst.remote.request('listNamespaces', {})).map((n) => n.name)).toEqual(['default']);
    });
  }

  // The restored store goes on: the next call number follows the last, the key still answers its call,
  // the callback is still due, the dead letter still listed.
  async function checkAfterRestore(db: DbClient): Promise<void> {
    expect((await db.request('createCall', { funcName: 'f', version: 1, params: {} })).callNum).toBe(13);
    const again = await db.request('createCall', {
      funcName: 'f',
      version: 1,
      params: {},
      idempotency: { key: 'default~operator~k3', hash: sha('3') },
    });
    expect(again).toMatchObject({ callNum: 3, replayed: true });
    expect((await db.request('claimDeliveries', { leaseMs: 1000 })).map((c) => c.callNum)).toEqual([4]);
  }
});

describe('a PostgreSQL store that cannot be reached', () => {
  it('is a one-line error at start, not a wait', async () => {
    const port = await freePort(); // nothing listens there
    const server = new DbServer({
      bind: `tcp://127.0.0.1:${await freePort()}`,
      dataDir: '/nonexistent',
      store: `postgres://zfaas:pw@127.0.0.1:${port}/zfaas`,
      log,
    });
    const e = await server.start().then(
      () => null,
      (x: Error) => x,
    );
    await server.stop();
    expect(e?.message).toMatch(/^PostgreSQL at postgres:\/\/zfaas:\*\*\*@127\.0\.0\.1:\d+\/zfaas cannot be used: .*ECONNREFUSED/);
    expect(e?.message).not.toContain('\n');
  });
});
