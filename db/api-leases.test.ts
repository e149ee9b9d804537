// API leases and the adoption of a lapsed API's calls, in the DB service over a real ZMQ socket, on LevelDB
// and on PostgreSQL (there also through two DB services on one database, adopting at the same moment):
// the calls of an API whose lease lapsed go to exactly one adopter, those of a live API to none; an API
// back after that learns it lost them; a createCall sent again with its request id makes no second call.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sleep } from '../test/helpers/platform.js';
import { DbUnderTest } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import { requestIdAt } from './call-group.js';

let t: DbUnderTest;
let other: DbUnderTest | undefined; // a second DB service on the same PostgreSQL database
let kind: StoreKind;

beforeEach(async () => {
  const store = await kind.store();
  t = await DbUnderTest.open('zfaas-db-lease-', store);
  other = store ? await DbUnderTest.open('zfaas-db-lease2-', store) : undefined;
});

afterEach(async () => {
  await other?.remove();
  await t.remove();
});

const lease = (id: string, leaseMs = 400, release = false) =>
  t.remote.request('leaseApi', { id, token: 'f00d0001', leaseMs, ...(release ? { release } : {}) });
const make = (api: string) => t.remote.request('createCall', { funcName: 'fn', version: 1, params: {}, api });

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  it("gives a lapsed API's unfinished calls to one adopter, and none of a live API's", async () => {
    expect(await lease('api-a')).toEqual({ held: true, lost: false });
    await lease('api-b', 60_000);
    await lease('api-c', 60_000);
    const a1 = await make('api-a');
    const a2 = await make('api-a');
    const b1 = await make('api-b');
    await t.remote.request('callIntent', { callNum: a2.callNum, intent: { kind: 'started', node: 'n1', life: 'l1' } });
    expect((await t.remote.request('adoptCalls', { adopter: 'api-b' })).calls).toEqual([]); // api-a's lease runs
    await sleep(600);
    const adopters = other ? [t.remote, other.remote] : [t.remote, t.remote];
    const [byB, byC] = await Promise.all([
      adopters[0]!.request('adoptCalls', { adopter: 'api-b' }),
      adopters[1]!.request('adoptCalls', { adopter: 'api-c' }),
    ]);
    const taken = [...byB.calls, ...byC.calls];
    expect(taken.map((c) => c.callNum).sort()).toEqual([a1.callNum, a2.callNum]); // each once, by one of them
    expect([...byB.from, ...byC.from]).toEqual(['api-a']);
    const winner = byB.calls.length > 0 ? 'api-b' : 'api-c';
    expect(await t.remote.request('getCall', { callNum: a1.callNum })).toMatchObject({ api: winner, status: 'PENDING' });
    expect(await t.remote.request('getCall', { callNum: a2.callNum })).toMatchObject({ api: winner, status: 'RUNNING', node: 'n1' });
    expect(await t.remote.request('getCall', { callNum: b1.callNum })).toMatchObject({ api: 'api-b' });
    expect((await t.remote.request('adoptCalls', { adopter: 'api-c' })).calls).toEqual([]); // taken once
    // Another process given the id api-b while api-b's lease runs gets nothing.
    expect(await t.remote.request('leaseApi', { id: 'api-b', token: 'f00d0002', leaseMs: 60_000 })).toEqual({ held: false, lost: false });
    // api-a comes back: told that its calls went, and its new calls are its own again.
    expect(await lease('api-a', 60_000)).toEqual({ held: true, lost: true });
    expect(await lease('api-a', 60_000)).toEqual({ held: true, lost: false });
  });

  it('adopts at once the calls of an API that gave its lease up, and nothing for an adopter without a lease', async () => {
    await lease('api-a', 60_000);
    const a1 = await make('api-a');
    expect(await lease('api-a', 60_000, true)).toEqual({ held: false, lost: false });
    expect((await t.remote.request('adoptCalls', { adopter: 'api-x' })).calls).toEqual([]); // api-x holds no lease
    await lease('api-b', 60_000);
    expect((await t.remote.request('adoptCalls', { adopter: 'api-b' })).calls.map((c) => c.callNum)).toEqual([a1.callNum]);
  });

  it('answers a createCall sent again with its request id with the call it made, and makes no other', async () => {
    const first = await t.remote.request('createCall', { funcName: 'fn', version: 1, params: { n: 1 }, requestId: 'abc-1' });
    const again = await (other ?? t).remote.request('createCall', { funcName: 'fn', version: 1, params: { n: 1 }, requestId: 'abc-1' });
    expect(again).toEqual(first);
    expect(again.replayed).toBeUndefined();
    const next = await t.remote.request('createCall', { funcName: 'fn', version: 1, params: { n: 2 }, requestId: 'abc-2' });
    expect(next.callNum).toBe(first.callNum + 1);
    expect((await t.remote.request('listCalls', {})).length).toBe(2);
  });

  // LevelDB has one DB service, whose clients send no request ids.
  it.skipIf(k.name !== 'postgres')('drops request ids made long before any resend could come', async () => {
    const old = `${requestIdAt(Date.now() - 11 * 60_000)}-abc-1`;
    const fresh = `${requestIdAt(Date.now())}-abc-2`;
    const a = await t.remote.request('createCall', { funcName: 'fn', version: 1, params: {}, requestId: old });
    const b = await t.remote.request('createCall', { funcName: 'fn', version: 1, params: {}, requestId: fresh });
    await lease('api-b', 60_000);
    await t.remote.request('adoptCalls', { adopter: 'api-b' }); // sweeps, at most once a minute
    expect((await t.remote.request('createCall', { funcName: 'fn', version: 1, params: {}, requestId: fresh })).callNum).toBe(b.callNum);
    expect((await t.remote.request('createCall', { funcName: 'fn', version: 1, params: {}, requestId: old })).callNum).not.toBe(a.callNum);
  });
});
