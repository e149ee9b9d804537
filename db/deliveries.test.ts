// The callback outbox in the DB service: a call made with a callback URL waits (`waiting`) until it is
// final, then its delivery is `pending` and claimable; a claim leases it (another claim passes it by until
// the lease runs out), each try is recorded in order, and a delivered or failed one is never claimed again.
// The outbox outlives a restart, and many claims at once hand each due call to exactly one claimant. Over a
// real ZMQ socket and through local(), on each store (a real LevelDB in a temp
// dir, a throwaway PostgreSQL: test/helpers/stores.ts), restarted on the same store.
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DbUnderTest, finishCall, startCall } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { DbClient } from './client.js';
import type { Call, CallOutcome, Delivery } from '../common/model.js';
import type { DbContent } from '../protocol/db.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-deliveries-', await kind.store());
});

afterEach(async () => {
  vi.restoreAllMocks();
  await t.remove();
});

const url = 'https://hooks.example.com/zfaas?token=abc';
const done = (result: string): CallOutcome => ({ status: 'DONE', result, logs: '', durationMs: 2 });
const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom', logs: '', durationMs: 2 };
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);
const nums = (calls: Call[]): number[] => calls.map((c) => c.callNum);
const at = (ms: number): string => new Date(ms).toISOString();

const blob = Buffer.from('an archive for the delivery tests');
const digest = createHash('sha256').update(blob).digest('hex');

// A new version of `functionName` with these settings (the rest default), as the API deploys one.
async function deploy(db: DbClient, functionName: string, settings: DbContent<'addFunction'>['settings']): Promise<number> {
  await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
  await db.request('putArchive', { digest }, [blob]);
  return (await db.request('addFunction', { functionName, runtimeName: 'py', digest, size: blob.length, format: 'tar.gz', settings }))
    .version;
}

// A call with a callback that ran and ended with `outcome` (DONE by default): its delivery is due now.
async function ended(db: DbClient, outcome: CallOutcome = done('ok'), version = 1): Promise<Call> {
  const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {}, callback: { url } });
  await startCall(db, { callNum, node: 'n1' });
  return (await finishCall(db, { callNum, node: 'n1', outcome, ran: true })).call!;
}

const claim = (db: DbClient, leaseMs = 5000, limit?: number): Promise<Call[]> =>
  db.request('claimDeliveries', { leaseMs, ...(limit ? { limit } : {}) });

const tried = (status?: number, error?: string): Delivery => ({
  at: new Date().toISOString(),
  ...(status !== undefined ? { status } : {}),
  ...(error !== undefined ? { error } : {}),
});

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('callback deliveries', () => {
    it('holds a delivery until the call ends, hands it out once per lease, and never again once delivered', async () => {
      const db = t.remote;
      const created = await db.request('createCall', { funcName: 'f', version: 1, params: { x: 1 }, callback: { url } });
      const { callNum } = created;
      expect(created.callback).toEqual({ url, state: 'waiting', deliveries: [] });
      expect(await claim(db)).toEqual([]);
      await startCall(db, { callNum, node: 'n1' });
      expect(await claim(db)).toEqual([]); // running: nothing to tell yet

      const fin = (await finishCall(db, { callNum, node: 'n1', outcome: done('42'), ran: true })).call!;
      expect(fin.callback).toEqual({ url, state: 'pending', deliveries: [], nextAt: fin.finishedAt });

      // Claimed once, with the final record, leased for 5 s: a second claim right after gets nothing.
      const before = Date.now();
      const [claimed, ...more] = await claim(db, 5000);
      const after = Date.now();
      expect(more).toEqual([]);
      expect(claimed).toMatchObject({
        callNum,
        status: 'DONE',
        result: '42',
        params: { x: 1 },
        callback: { url, state: 'pending', deliveries: [] },
      });
      const lease = Date.parse(claimed!.callback!.nextAt!);
      expect(lease).toBeGreaterThanOrEqual(before + 5000);
      expect(lease).toBeLessThanOrEqual(after + 5000);
      expect(await claim(db)).toEqual([]);
      expect(await claim(t.local)).toEqual([]);

      // A try that failed, the next one due already: claimable again, the try kept.
      const first = tried(503);
      const r1 = await db.request('recordDelivery', { callNum, delivery: first, state: 'pending', nextAt: at(Date.now() - 1000) });
      expect(r1.changed).toBe(true);
      expect(nums(await claim(t.local))).toEqual([callNum]);
      // The next try fails to connect, and is due in a minute: not before.
      const second = tried(undefined, 'connect ECONNREFUSED');
      await db.request('recordDelivery', { callNum, delivery: second, state: 'pending', nextAt: at(Date.now() + 60_000) });
      expect(await claim(db)).toEqual([]);
      vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 61_000);
      const [again] = await claim(t.local); // the server runs in this process, on the mocked clock
      expect(again?.callback?.deliveries).toEqual([first, second]);
      vi.restoreAllMocks();

      // Delivered: done for good, every try kept in order.
      const third = tried(200);
      const r3 = await db.request('recordDelivery', { callNum, delivery: third, state: 'delivered' });
      expect(r3.changed).toBe(true);
      const call = await db.request('getCall', { callNum });
      expect(call?.callback).toEqual({ url, state: 'delivered', deliveries: [first, second, third] });
      expect(await claim(db)).toEqual([]);
      vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 7 * 24 * 3600_000);
      expect(await claim(t.local)).toEqual([]);
      // A late report of another try changes nothing.
      expect((await db.request('recordDelivery', { callNum, delivery: tried(500), state: 'pending', nextAt: at(0) })).changed).toBe(false);
      expect((await db.request('getCall', { callNum }))?.callback?.deliveries).toHaveLength(3);
    });

    it('hands a claimed delivery out again once its lease ran out (its claimant died)', async () => {
      const call = await ended(t.remote);
      const [claimed] = await claim(t.remote, 1000);
      expect(claimed?.callNum).toBe(call.callNum);
      expect(await claim(t.remote, 1000)).toEqual([]);
      const lease = Date.parse(claimed!.callback!.nextAt!);
      vi.spyOn(Date, 'now').mockReturnValue(lease - 1);
      expect(await claim(t.local, 1000)).toEqual([]);
      vi.spyOn(Date, 'now').mockReturnValue(lease);
      expect(nums(await claim(t.local, 1000))).toEqual([call.callNum]);
      expect(await claim(t.local, 1000)).toEqual([]);
    });

    it('never claims a failed delivery again, and keeps its tries', async () => {
      const call = await ended(t.remote);
      const tries = [tried(500), tried(502), tried(undefined, 'timeout')];
      for (const [i, delivery] of tries.entries()) {
        expect(nums(await claim(t.remote))).toEqual([call.callNum]);
        const last = i === tries.length - 1;
        await t.remote.request('recordDelivery', {
          callNum: call.callNum,
          delivery,
          state: last ? 'failed' : 'pending',
          ...(last ? {} : { nextAt: at(Date.now() - 1) }),
        });
      }
      expect((await t.remote.request('getCall', { callNum: call.callNum }))?.callback).toEqual({ url, state: 'failed', deliveries: tries });
      vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 7 * 24 * 3600_000);
      expect(await claim(t.local)).toEqual([]);
    });

    it('has nothing to deliver for a call without a callback', async () => {
      const { callNum } = await t.remote.request('createCall', { funcName: 'f', version: 1, params: {} });
      const fin = await finishCall(t.remote, { callNum, outcome: done('ok') });
      expect(fin.call).not.toHaveProperty('callback');
      expect(await claim(t.remote)).toEqual([]);
      expect(await t.remote.request('recordDelivery', { callNum, delivery: tried(200), state: 'delivered' })).toEqual({
        call: fin.call,
        changed: false,
      });
      expect(await t.remote.request('recordDelivery', { callNum: 999, delivery: tried(200), state: 'delivered' })).toEqual({
        call: null,
        changed: false,
      });
    });

    it('delivers once for a call with retries, after its last run, and for a call the platform ended', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {}, callback: { url } });
      await startCall(db, { callNum, node: 'n1' });
      const retrying = await finishCall(db, { callNum, node: 'n1', outcome: failed, ran: true });
      expect(retrying.call).toMatchObject({ status: 'PENDING', callback: { state: 'waiting', deliveries: [] } });
      expect(await claim(db)).toEqual([]); // the failed run is not the call's end
      await startCall(db, { callNum, node: 'n2' });
      await finishCall(db, { callNum, node: 'n2', outcome: failed, ran: true });
      const [dead, ...more] = await claim(db);
      expect(more).toEqual([]);
      expect(dead).toMatchObject({ callNum, status: 'ERROR', deadLetter: 'listed', attempts: 2, history: [{ attempt: 1 }] });

      // Cancelled (the API ends it): delivered too.
      const c = await db.request('createCall', { funcName: 'f', version, params: {}, callback: { url } });
      await finishCall(db, { callNum: c.callNum, outcome: { status: 'ERROR', result: '', error: 'cancelled', cancelled: true } });
      expect(await claim(db)).toMatchObject([{ callNum: c.callNum, cancelled: true, callback: { state: 'pending' } }]);
    });

    it('leaves a dead letter’s delivery as it was when it is replayed or dismissed', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const dead = async (): Promise<Call> => {
        const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {}, callback: { url } });
        for (const node of ['n1', 'n2']) {
          await startCall(db, { callNum, node });
          await finishCall(db, { callNum, node, outcome: failed, ran: true });
        }
        return (await db.request('getCall', { callNum }))!;
      };
      const leased = await dead();
      expect(nums(await claim(db))).toEqual([leased.callNum]);
      const unclaimed = await dead();
      await db.request('createCall', { funcName: 'f', version, params: {}, replayOf: leased.callNum }); // no callback of its own
      await db.request('dismissDeadLetter', { callNum: unclaimed.callNum });
      // The leased one stays leased; the other is due once.
      expect(nums(await claim(db))).toEqual([unclaimed.callNum]);
      expect(await claim(db)).toEqual([]);
      expect(
        (await db.request('recordDelivery', { callNum: leased.callNum, delivery: tried(200), state: 'delivered' })).call,
      ).toMatchObject({
        deadLetter: 'replayed',
        callback: { state: 'delivered' },
      });
    });

    it('keeps the outbox and its leases across a restart', async () => {
      const db = t.remote;
      const due = await ended(db);
      const leased = await ended(db);
      const delivered = await ended(db);
      const { callNum: waiting } = await db.request('createCall', { funcName: 'f', version: 1, params: {}, callback: { url } });
      // Claim the three, then give back `due` (a try that failed, due again now), deliver `delivered`.
      expect(nums(await claim(db, 60_000))).toEqual([due.callNum, leased.callNum, delivered.callNum]);
      await db.request('recordDelivery', { callNum: due.callNum, delivery: tried(500), state: 'pending', nextAt: at(Date.now() - 1) });
      await db.request('recordDelivery', { callNum: delivered.callNum, delivery: tried(204), state: 'delivered' });

      await t.stop();
      await t.start();

      const [again, ...more] = await claim(t.remote, 60_000);
      expect(more).toEqual([]);
      expect(again).toMatchObject({ callNum: due.callNum, callback: { state: 'pending', deliveries: [{ status: 500 }] } });
      expect((await t.remote.request('getCall', { callNum: waiting }))?.callback?.state).toBe('waiting');
      await finishCall(t.remote, { callNum: waiting, outcome: done('late') });
      expect(nums(await claim(t.local, 60_000))).toEqual([waiting]);
      vi.spyOn(Date, 'now').mockReturnValue(Date.now() + 61_000);
      // Every lease ran out: all but the delivered one, in call order.
      expect(nums(await claim(t.local, 60_000))).toEqual([due.callNum, leased.callNum, waiting]);
    });

    for (const limit of [50, 4]) {
      it(`hands each of 30 due deliveries to exactly one of 50 claims sent at once (limit ${limit})`, async () => {
        const calls: Call[] = [];
        for (const i of range(30)) calls.push(await ended(i % 2 ? t.remote : t.local));
        const claims = await Promise.all(range(50).map((i) => claim(i % 2 ? t.remote : t.local, 60_000, limit)));
        const handed = claims.flatMap(nums);
        for (const got of claims) expect(got.length).toBeLessThanOrEqual(limit);
        expect(new Set(handed).size).toBe(handed.length); // none twice
        // Each was due and unclaimed when it was handed out, so none is left behind.
        expect(handed.sort((a, b) => a - b)).toEqual(nums(calls));
        expect(await claim(t.remote, 60_000, limit)).toEqual([]);
      });
    }
  });
});
