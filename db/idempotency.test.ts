// Idempotency keys in the DB service's createCall: the same key for the same request answers the call it
// made (flagged `replayed`), another request is CONFLICT, many at once make one call (the key is checked
// inside the ordered write group), an expired key makes a new call, and keys outlive a restart. Over a
// real ZMQ socket and through local(), on each store (a real LevelDB in a temp
// dir, a throwaway PostgreSQL: test/helpers/stores.ts).
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DbUnderTest, finishCall } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { CreatedCall } from '../protocol/db.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-idem-', await kind.store());
});

afterEach(async () => {
  vi.restoreAllMocks();
  await t.remove();
});

const hash = (s: string): string => createHash('sha256').update(s).digest('hex');
const keyed = (key: string, request: string, params: unknown = { roll: '1d6' }, funcName = 'f', ttlS?: number) => ({
  funcName,
  version: 1,
  params,
  idempotency: { key, hash: hash(request), ...(ttlS ? { ttlS } : {}) },
});
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('createCall with an idempotency key', () => {
    it('answers the same key for the same request with the call it made, as it stands now', async () => {
      const first = await t.local.request('createCall', keyed('k1', 'a'));
      expect(first.replayed).toBeUndefined();
      const again = await t.remote.request('createCall', keyed('k1', 'a'));
      expect(again).toMatchObject({ callNum: first.callNum, status: 'PENDING', replayed: true });
      await finishCall(t.local, { callNum: first.callNum, outcome: { status: 'DONE', result: '6' } });
      expect(await t.local.request('createCall', keyed('k1', 'a'))).toMatchObject({
        callNum: first.callNum,
        status: 'DONE',
        result: '6',
        replayed: true,
      });
      // Other keys, and calls without one, are new calls; the replays used up no call number.
      expect((await t.local.request('createCall', keyed('k2', 'a'))).callNum).toBe(first.callNum + 1);
      expect((await t.local.request('createCall', { funcName: 'f', version: 1, params: {} })).callNum).toBe(first.callNum + 2);
      expect(await t.local.request('listCalls', {})).toHaveLength(3);
    });

    it('refuses the key for another request (other params, another function) with CONFLICT, which writes nothing', async () => {
      const first = await t.local.request('createCall', keyed('k', 'a'));
      await expect(t.local.request('createCall', keyed('k', 'b', { roll: '2d6' }))).rejects.toMatchObject({
        code: 'CONFLICT',
        message: expect.stringMatching(/idempotency key "k" was already used for call 1 with other params/),
      });
      await expect(t.remote.request('createCall', keyed('k', 'c', { roll: '1d6' }, 'g'))).rejects.toMatchObject({
        code: 'CONFLICT',
        message: expect.stringMatching(/for another function/),
      });
      expect((await t.local.request('createCall', keyed('k', 'a'))).callNum).toBe(first.callNum);
      expect(await t.local.request('listCalls', {})).toHaveLength(1);
    });

    for (const via of ['socket', 'local'] as const) {
      it(`makes one call of 50 createCalls with one key sent at once (${via})`, async () => {
        const db = via === 'socket' ? t.remote : t.local;
        // Behind another write (taken alone into a group), so that they meet within one group, and among
        // other writes.
        const sent: Promise<unknown>[] = [db.request('createCall', { funcName: 'f', version: 1, params: {} })];
        const keyedOnes: Promise<CreatedCall>[] = [];
        for (const i of range(50)) {
          const p = db.request('createCall', keyed('same', 'a'));
          keyedOnes.push(p);
          sent.push(p);
          if (i % 10 === 0) sent.push(db.request('createCall', { funcName: 'f', version: 1, params: { i } }));
        }
        await Promise.all(sent);
        const answers = await Promise.all(keyedOnes);
        expect(new Set(answers.map((c) => c.callNum)).size).toBe(1);
        expect(answers.filter((c) => !c.replayed)).toHaveLength(1);
        expect(await db.request('listCalls', {})).toHaveLength(1 + 1 + 5);
      });
    }

    it('keeps one call per key when the group batch fails and its writes are applied alone', async () => {
      const before = t.local.request('createCall', { funcName: 'f', version: 1, params: {} }); // the 60 below form one group
      const results = await Promise.allSettled(
        range(60).map((i) =>
          i === 30
            ? t.local.request('createCall', { funcName: 'f', version: 1, params: { n: 1n } }) // JSON cannot hold it: the batch fails
            : t.local.request('createCall', keyed('k', 'a')),
        ),
      );
      expect(results[29]).toMatchObject({ status: 'rejected', reason: { code: 'INTERNAL' } });
      const nums = new Set(results.flatMap((r, i) => (i !== 29 && r.status === 'fulfilled' ? [r.value.callNum] : [])));
      expect(nums.size).toBe(1);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(59);
      expect((await before).callNum).toBe(1);
      expect([...nums]).toEqual([2]);
      expect(await t.local.request('listCalls', {})).toHaveLength(2);
    });

    it('makes a new call for a key past its retention window (the API sets it), and the key then means that call', async () => {
      const first = await t.local.request('createCall', keyed('old', 'a'));
      const now = Date.now();
      vi.spyOn(Date, 'now').mockReturnValue(now + 24 * 3600 * 1000 + 1); // the default window is 24 h
      const second = await t.local.request('createCall', keyed('old', 'b', { roll: '2d6' }));
      expect(second.callNum).toBe(first.callNum + 1);
      expect(second.replayed).toBeUndefined();
      expect(await t.local.request('createCall', keyed('old', 'b', { roll: '2d6' }))).toMatchObject({
        callNum: second.callNum,
        replayed: true,
      });
      // A shorter window, as ZFAAS_IDEMPOTENCY_TTL gives it.
      vi.spyOn(Date, 'now').mockReturnValue(now + 24 * 3600 * 1000 + 11_000);
      expect((await t.local.request('createCall', keyed('old', 'b', { roll: '2d6' }, 'f', 10))).callNum).toBe(second.callNum + 1);
      await expect(t.local.request('createCall', keyed('old', 'c', {}, 'f', 3600))).rejects.toMatchObject({ code: 'CONFLICT' });
    });

    it('keeps keys across close and reopen', async () => {
      const first = await t.remote.request('createCall', keyed('kept', 'a'));
      await t.stop();
      await t.start();
      expect(await t.remote.request('createCall', keyed('kept', 'a'))).toMatchObject({ callNum: first.callNum, replayed: true });
      await expect(t.local.request('createCall', keyed('kept', 'b'))).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await t.local.request('createCall', keyed('new', 'a'))).callNum).toBe(first.callNum + 1);
    });

    it('refuses a malformed key as a bad request', async () => {
      // Up to 600 characters: the API keeps a key as "NAMESPACE~CALLER~KEY" (at most 166 more than its 255).
      for (const key of ['', 'x'.repeat(601), 'tab\there', 'é']) {
        await expect(t.remote.request('createCall', keyed(key, 'a'))).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      }
      expect((await t.remote.request('createCall', keyed('x'.repeat(255), 'a'))).callNum).toBe(1);
      expect((await t.remote.request('createCall', keyed(' ~!', 'a'))).callNum).toBe(2);
    });
  });
});
