// Reads beside the write queue, and group commit of writes: over a real ZMQ socket and through local(),
// on each store (a real LevelDB in a temp dir, a throwaway PostgreSQL: test/helpers/stores.ts).
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DbUnderTest, finishCall, startCall } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { CallOutcome } from '../common/model.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-writes-', await kind.store());
});

afterEach(async () => {
  await t.remove();
});

const outcome = (result: string): CallOutcome => ({ status: 'DONE', result, logs: '', durationMs: 1 });
const newCall = { funcName: 'f', version: 1, params: {} };
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

// Runs `send` for each label and records the labels in the order their answers arrived.
async function arrivals(requests: [string, () => Promise<unknown>][]): Promise<string[]> {
  const order: string[] = [];
  await Promise.all(requests.map(([label, send]) => send().then(() => order.push(label))));
  return order;
}

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('db reads and grouped writes', () => {
    for (const via of ['socket', 'local'] as const) {
      it(`answers a read while a large batch of writes is queued (${via})`, async () => {
        const db = via === 'socket' ? t.remote : t.local;
        const first = await db.request('createCall', newCall);
        const requests: [string, () => Promise<unknown>][] = range(2_000).map((i) => [
          `create${i}`,
          () => db.request('createCall', newCall),
        ]);
        requests.push(['ping', () => db.request('ping', {})]);
        // A write already answered is seen by a read that bypasses the queue.
        requests.push(['getCall', () => db.request('getCall', { callNum: first.callNum }).then((c) => expect(c?.status).toBe('PENDING'))]);
        const order = await arrivals(requests);
        expect(order.indexOf('ping')).toBeLessThan(order.indexOf('create2000'));
        expect(order.indexOf('getCall')).toBeLessThan(order.indexOf('create2000'));
        // The writes themselves stayed in order.
        const created = await db.request('listCalls', {});
        expect(created.map((c) => c.callNum)).toEqual(range(2_001));
      });
    }

    it('gives 500 concurrent calls over the socket and local() unique, gap-free numbers and the first final state', async () => {
      const flows = await Promise.all(
        range(500).map(async (i) => {
          const [db, other] = i % 2 ? [t.remote, t.local] : [t.local, t.remote];
          const call = await db.request('createCall', { funcName: 'f', version: 1, params: { i } });
          const started = await startCall(db, { callNum: call.callNum, node: `n${i}` });
          expect(started.changed).toBe(true);
          // Answered, so seen by the other path's reads at once.
          expect((await other.request('getCall', { callNum: call.callNum }))?.status).toBe('RUNNING');
          // Two results for one call, sent back to back: on one path the first sent arrives first; on two
          // paths either may, but exactly one wins and the loser reports the winner's result.
          const [a, b] = i % 3 ? [db, db] : [db, other];
          const [r1, r2] = await Promise.all([
            finishCall(a, { callNum: call.callNum, outcome: outcome(`first${i}`), node: `n${i}` }),
            finishCall(b, { callNum: call.callNum, outcome: outcome(`second${i}`), node: `n${i}` }),
          ]);
          expect(r1.changed !== r2.changed).toBe(true);
          const winner = r1.changed ? `first${i}` : `second${i}`;
          if (a === b) expect(winner).toBe(`first${i}`);
          expect((r1.changed ? r2 : r1).call?.result).toBe(winner);
          return { callNum: call.callNum, i, winner };
        }),
      );
      expect(flows.map((f) => f.callNum).sort((x, y) => x - y)).toEqual(range(500));
      for (const f of flows) {
        const call = await t.remote.request('getCall', { callNum: f.callNum });
        expect(call).toMatchObject({ status: 'DONE', result: f.winner, params: { i: f.i }, node: `n${f.i}`, attempts: 1 });
      }
      expect(await t.local.request('listUnfinished', {})).toEqual([]);
      expect(await t.remote.request('listCalls', { status: 'DONE' })).toHaveLength(500);
    });

    it('keeps grouped writes, mixed with other writes, across close and reopen', async () => {
      await t.local.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
      const blob = Buffer.from('archive bytes');
      const digest = createHash('sha256').update(blob).digest('hex');
      const fn = { functionName: 'f', runtimeName: 'py', digest, size: blob.length, format: 'tar.gz' as const, settings: {} };
      // All at once: calls on both paths, with an archive and two deploys sent among them (the archive
      // before the deploy on the same path, so that it is there first).
      const writes: (() => Promise<unknown>)[] = range(600).map((i) => () => (i % 2 ? t.remote : t.local).request('createCall', newCall));
      writes.splice(100, 0, () => t.local.request('putArchive', { digest }, [blob]));
      writes.splice(200, 0, () => t.local.request('addFunction', fn));
      writes.splice(300, 0, () => t.remote.request('addFunction', fn));
      await Promise.all(writes.map((send) => send()));
      await Promise.all(
        range(600).map((n) =>
          n % 2 === 0
            ? finishCall(t.remote, { callNum: n, outcome: outcome(`r${n}`) })
            : n % 3 === 0
              ? startCall(t.local, { callNum: n, node: 'n1' })
              : Promise.resolve(),
        ),
      );

      await t.stop();
      await t.start();

      const calls = await t.local.request('listCalls', {});
      expect(calls.map((c) => c.callNum)).toEqual(range(600));
      for (const c of calls) {
        if (c.callNum % 2 === 0) expect(c).toMatchObject({ status: 'DONE', result: `r${c.callNum}` });
        else expect(c.status).toBe(c.callNum % 3 === 0 ? 'RUNNING' : 'PENDING');
      }
      const open = await t.remote.request('listUnfinished', {});
      expect(open.map((c) => c.callNum)).toEqual(range(600).filter((n) => n % 2 === 1));
      expect((await t.remote.request('listVersions', { name: 'f' })).map((v) => v.version)).toEqual([1, 2]);
      expect((await t.local.request('createCall', newCall)).callNum).toBe(601);
    });

    it("writes a call's start and its outcome, sent together, as one group; a start alone within a few ms", async () => {
      const call = await t.local.request('createCall', newCall);
      const groups = vi.spyOn(t.server['store'], 'group');
      const [started, ended] = await Promise.all([
        startCall(t.local, { callNum: call.callNum, node: 'n1' }),
        finishCall(t.local, { callNum: call.callNum, outcome: outcome('r'), node: 'n1' }),
      ]);
      expect(started.changed && ended.changed).toBe(true);
      expect(groups).toHaveBeenCalledTimes(1);
      expect(await t.remote.request('getCall', { callNum: call.callNum })).toMatchObject({
        status: 'DONE',
        result: 'r',
        attempts: 1,
        node: 'n1',
      });
      // Nothing comes after it: the start is written all the same, and answered once written.
      const next = await t.remote.request('createCall', newCall);
      expect((await startCall(t.remote, { callNum: next.callNum, node: 'n2' })).changed).toBe(true);
      expect((await t.local.request('getCall', { callNum: next.callNum }))?.status).toBe('RUNNING');
      groups.mockRestore();
    });

    it("tells an in-process caller a call write's result before it is written; reads after it see it", async () => {
      const leveldb = t.server['store'].engine === 'leveldb'; // the only writer of its store: told early
      const call = await t.local.request('createCall', newCall);
      await startCall(t.local, { callNum: call.callNum, node: 'n1' });
      const told: Array<{ status?: string; read: Promise<unknown> }> = [];
      const written = await t.local.requestPlanned(
        'callIntent',
        { callNum: call.callNum, intent: { kind: 'outcome', outcome: outcome('r'), ran: true, node: 'n1' } },
        (c) => told.push({ status: c.call?.status, read: t.local.request('getCall', { callNum: call.callNum }) }),
      );
      expect(written.call).toMatchObject({ status: 'DONE', result: 'r' });
      if (!leveldb) return expect(told).toEqual([]);
      expect(told.map((x) => x.status)).toEqual(['DONE']);
      // A read made as soon as the caller was told waits for the write: it never shows the call running.
      expect(await told[0]!.read).toMatchObject({ status: 'DONE', result: 'r' });
      // Over the socket nobody is told early.
      const remoteTold: unknown[] = [];
      await t.remote.requestPlanned('createCall', newCall, (c) => remoteTold.push(c));
      expect(remoteTold).toEqual([]);
    });

    it("fails a write told early with its group's batch; the others in the group are written alone", async () => {
      if (t.server['store'].engine !== 'leveldb') return;
      const level = (t.server['store'] as unknown as { db: { batch(...a: unknown[]): Promise<void> } }).db;
      const real = level.batch.bind(level);
      let batches = 0;
      const batch = vi
        .spyOn(level, 'batch')
        .mockImplementation((...a) => (++batches === 2 ? Promise.reject(new Error('disk full')) : real(...a)));
      const told: number[] = [];
      // The first write is a group of its own; the two after it, sent while it is written, are the next.
      const [first, early, other] = await Promise.allSettled([
        t.local.request('createCall', newCall),
        t.local.requestPlanned('createCall', newCall, (c) => told.push(c.callNum)),
        t.local.request('createCall', newCall),
      ]);
      batch.mockRestore();
      expect(first).toMatchObject({ status: 'fulfilled', value: { callNum: 1 } });
      // It was told its number, then its write failed: it is not planned again alone (it was told this plan).
      expect(told).toEqual([2]);
      expect(early).toMatchObject({ status: 'rejected', reason: { message: expect.stringContaining('disk full') } });
      // Its number is not given again: a run of it may have begun.
      expect(other).toMatchObject({ status: 'fulfilled', value: { callNum: 3 } });
      expect((await t.remote.request('listUnfinished', {})).map((c) => c.callNum)).toEqual([1, 3]);
      expect((await t.local.request('createCall', newCall)).callNum).toBe(4);
    });

    it('fails only the write that fails, and uses up no call number for it', async () => {
      const results = await Promise.allSettled(
        range(300).map((i) =>
          i === 150
            ? t.local.request('createCall', { funcName: 'f', version: 1, params: { n: 1n } }) // JSON cannot hold it: the batch fails
            : i === 200
              ? t.local.request('addFunction', {
                  functionName: 'g',
                  runtimeName: 'nope',
                  digest: 'a'.repeat(64),
                  size: 1,
                  format: 'tar',
                  settings: {},
                })
              : i === 250
                ? finishCall(t.local, { callNum: 10_000, outcome: outcome('x') })
                : t.local.request('createCall', newCall),
        ),
      );
      expect(results[149]).toMatchObject({ status: 'rejected', reason: { code: 'INTERNAL' } });
      expect(results[199]).toMatchObject({ status: 'rejected', reason: { code: 'NOT_FOUND' } });
      expect(results[249]).toMatchObject({ status: 'fulfilled', value: { call: null, changed: false } });
      const created = results.filter((r, i) => ![149, 199, 249].includes(i));
      expect(created.every((r) => r.status === 'fulfilled')).toBe(true);
      const nums = created.map((r) => (r.status === 'fulfilled' ? (r.value as { callNum: number }).callNum : 0));
      expect(nums).toEqual(range(297));
      expect((await t.remote.request('listUnfinished', {})).map((c) => c.callNum)).toEqual(range(297));
      expect((await t.remote.request('createCall', newCall)).callNum).toBe(298);
    });
  });
});
