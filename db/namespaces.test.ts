// A namespace's identity in the DB service: deleting one takes along everything the store keeps under its
// name (calls with their results and logs, dead letters, pending callback deliveries, unfinished calls,
// idempotency keys, schedules, leftover function versions and runtimes), leaving other namespaces alone;
// one made again under the same name starts from nothing, also where an earlier one left data behind.
// Call numbers are never reused. Over a real ZMQ socket and through local(), on each store (test/helpers/stores.ts).
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DbUnderTest, finishCall, startCall } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { DbClient } from './client.js';
import { scopedIdempotencyKey } from '../protocol/db.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-ns-', await kind.store());
});

afterEach(async () => {
  await t.remove();
});

const blob = Buffer.from('an archive for the namespace tests');
const digest = createHash('sha256').update(blob).digest('hex');
const hash = (s: string): string => createHash('sha256').update(s).digest('hex');

async function deploy(db: DbClient, functionName: string): Promise<void> {
  await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
  await db.request('putArchive', { digest }, [blob]);
  await db.request('addFunction', {
    functionName,
    runtimeName: 'py',
    digest,
    size: blob.length,
    format: 'tar.gz',
    settings: { retries: 1 },
  });
}

// What a namespace's team left: a finished call, a dead letter, a call whose callback is due, an unfinished
// call, a call made with an idempotency key and a schedule's tick, and a schedule.
async function fill(db: DbClient, ns: string): Promise<{ calls: number[]; key: string; tickKey: string }> {
  const fn = `${ns}~f`;
  const made = async (extra: object = {}): Promise<number> =>
    (await db.request('createCall', { funcName: fn, version: 1, params: { ns }, ...extra })).callNum;
  const done = await made();
  await finishCall(db, { callNum: done, outcome: { status: 'DONE', result: `secret result of ${ns}`, logs: 'its logs' } });
  const dead = await made(); // two failed runs: with one retry, a dead letter
  for (let run = 0; run < 2; run++) {
    await startCall(db, { callNum: dead, node: 'n1' });
    await finishCall(db, { callNum: dead, outcome: { status: 'ERROR', result: '', error: 'boom' }, ran: true });
  }
  const hooked = await made({ callback: { url: 'http://127.0.0.1:9/hook' } });
  await finishCall(db, { callNum: hooked, outcome: { status: 'DONE', result: '1' } });
  const open = await made();
  await startCall(db, { callNum: open, node: 'n1' });
  const key = scopedIdempotencyKey(ns, 'key:0123456789abcdef', 'order-1');
  const keyed = await made({ idempotency: { key, hash: hash('a') } });
  const tickKey = scopedIdempotencyKey(ns, 'schedule:ab12', '2026-01-01T00:00:00.000Z');
  const ticked = await made({ idempotency: { key: tickKey, hash: hash(tickKey) } });
  await db.request('putSchedule', {
    id: 'ab12',
    funcName: fn,
    cron: '* * * * *',
    timezone: 'UTC',
    params: {},
    missed: 'skip',
    createdAt: new Date().toISOString(),
  });
  return { calls: [done, dead, hooked, open, keyed, ticked], key, tickKey };
}

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('deleting a namespace', () => {
    it('takes its calls, dead letters, deliveries, keys and schedules along, and nothing of another namespace', async () => {
      const db = t.local;
      for (const name of ['team-a', 'team-b']) {
        await db.request('createNamespace', { name });
        await deploy(db, `${name}~f`);
      }
      await deploy(db, 'f');
      const a = await fill(db, 'team-a');
      const b = await fill(db, 'team-b');
      const mine = (await db.request('createCall', { funcName: 'f', version: 1, params: {} })).callNum;

      const answer = await t.remote.request('deleteNamespace', { name: 'team-a' });
      expect(answer).toMatchObject({ deleted: true, calls: a.calls.length, idempotencyKeys: 2 });

      for (const callNum of a.calls) expect(await db.request('getCall', { callNum })).toBeNull();
      for (const callNum of b.calls) expect(await db.request('getCall', { callNum })).not.toBeNull();
      expect(await db.request('getCall', { callNum: mine })).not.toBeNull();
      expect(await db.request('listCalls', { namespace: 'team-a' })).toEqual([]);
      const unfinished = (await db.request('listUnfinished', {})).map((c) => c.funcName);
      expect(new Set(unfinished)).toEqual(new Set(['f', 'team-b~f']));
      expect((await db.request('listDeadLetters', {})).map((c) => c.funcName)).toEqual(['team-b~f']);
      const claimed = await db.request('claimDeliveries', { leaseMs: 1000, limit: 50 });
      expect(claimed.map((c) => c.funcName)).toEqual(['team-b~f']);
      expect(await db.request('listSchedules', { namespace: 'team-a' })).toEqual([]);
      expect(await db.request('listSchedules', { namespace: 'team-b' })).toHaveLength(1);
      expect(await db.request('getFunction', { name: 'team-a~f' })).toBeNull();
      expect(await db.request('getFunction', { name: 'team-b~f' })).not.toBeNull();

      // Made again: nothing of the old one; its keys make new calls, numbered after every call ever made.
      await db.request('createNamespace', { name: 'team-a' });
      expect(await db.request('listCalls', { namespace: 'team-a' })).toEqual([]);
      const again = await db.request('createCall', {
        funcName: 'team-a~f',
        version: 1,
        params: { ns: 'team-a' },
        idempotency: { key: a.key, hash: hash('a') },
      });
      expect(again.replayed).toBeUndefined();
      expect(again.callNum).toBeGreaterThan(Math.max(...a.calls, ...b.calls, mine));
      const tick = await db.request('createCall', {
        funcName: 'team-a~f',
        version: 1,
        params: {},
        idempotency: { key: a.tickKey, hash: hash(a.tickKey) },
      });
      expect(tick.replayed).toBeUndefined();
      // team-b's keys still answer their calls.
      const bKeyed = await db.request('createCall', {
        funcName: 'team-b~f',
        version: 1,
        params: { ns: 'team-b' },
        idempotency: { key: b.key, hash: hash('a') },
      });
      expect(bKeyed).toMatchObject({ callNum: b.calls[4], replayed: true });
    });

    it('makes a namespace start empty where an earlier one of that name left data behind', async () => {
      const db = t.local;
      // As a store written before namespaces took their data along: calls and keys under a name no namespace has.
      const left = await fill(db, 'team-c');
      expect(await db.request('listCalls', { namespace: 'team-c' })).toHaveLength(left.calls.length);
      await t.remote.request('createNamespace', { name: 'team-c' });
      expect(await db.request('listCalls', { namespace: 'team-c' })).toEqual([]);
      for (const callNum of left.calls) expect(await db.request('getCall', { callNum })).toBeNull();
      expect(await db.request('listSchedules', { namespace: 'team-c' })).toEqual([]);
    });

    it('refuses the default namespace and answers a missing one as not deleted', async () => {
      await expect(t.remote.request('deleteNamespace', { name: 'default' })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await t.remote.request('deleteNamespace', { name: 'nope' })).toEqual({ deleted: false, keys: [] });
    });
  });
});
