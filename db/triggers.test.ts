// Trigger records in the DB service over a real ZMQ socket, on LevelDB and on PostgreSQL: one holder at a
// time (a second API is refused while the first one's lease runs, and takes over once it lapses or is given
// up), the holder's stats kept, pause kept, a deleted trigger gone.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sleep } from '../test/helpers/platform.js';
import { DbUnderTest } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-trig-', await kind.store());
});

afterEach(async () => {
  await t.remove();
});

const trigger = {
  id: 'ab12',
  funcName: 'fn',
  type: 'redis' as const,
  url: 'redis://127.0.0.1:6379',
  source: 'orders',
  settings: { inFlight: 4, maxQueue: 100, maxBytes: 1024, deadLetter: 'list' as const, dedupWindowS: 3600 },
  paused: false,
  createdAt: new Date().toISOString(),
};
const stats = (delivered: number) => ({ connected: true, inFlight: 0, delivered, failed: 0, rejected: [], at: new Date().toISOString() });

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  it('gives a trigger to one holder at a time, until its lease lapses or is given up', async () => {
    await t.remote.request('putTrigger', trigger);
    const lease = (holder: string, leaseMs = 400, more = {}) =>
      t.remote.request('leaseTrigger', { funcName: 'fn', id: 'ab12', holder, leaseMs, ...more });
    expect((await lease('api-1', 400, { stats: stats(3) })).held).toBe(true);
    expect((await lease('api-2')).held).toBe(false);
    expect((await lease('api-1', 400, { stats: stats(5) })).held).toBe(true); // renewed
    const [seen] = await t.remote.request('listTriggers', { funcName: 'fn' });
    expect(seen).toMatchObject({ lease: { holder: 'api-1' }, stats: { delivered: 5 } });
    await sleep(600);
    const taken = await lease('api-2');
    expect(taken.held).toBe(true);
    expect(taken.trigger).toMatchObject({ lease: { holder: 'api-2' }, stats: { delivered: 5 } }); // the counts go on
    expect((await lease('api-1')).held).toBe(false);
    expect((await lease('api-2', 400, { release: true })).held).toBe(false);
    expect((await lease('api-1')).held).toBe(true); // given up: taken at once
  });

  it('keeps a pause, and drops a trigger deleted', async () => {
    expect(await t.remote.request('pauseTrigger', { funcName: 'fn', id: 'ab12', paused: true })).toBeNull();
    await t.remote.request('putTrigger', trigger);
    await t.remote.request('putTrigger', { ...trigger, id: 'cd34', funcName: 'other' });
    expect(await t.remote.request('pauseTrigger', { funcName: 'fn', id: 'ab12', paused: true })).toMatchObject({ paused: true });
    expect((await t.remote.request('listTriggers', {})).map((t) => t.id).sort()).toEqual(['ab12', 'cd34']);
    expect(await t.remote.request('deleteTrigger', { funcName: 'other', id: 'cd34' })).toEqual({ deleted: true });
    expect(await t.remote.request('deleteTrigger', { funcName: 'other', id: 'cd34' })).toEqual({ deleted: false });
    expect(await t.remote.request('listTriggers', {})).toMatchObject([{ id: 'ab12', paused: true }]);
  });
});
