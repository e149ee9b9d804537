// Trigger records in the DB service over a real ZMQ socket and LevelDB: one holder at a time (a second
// API is refused while the first one's lease runs, and takes over once it lapses or is given up), the
// holder's stats kept, pause kept, a deleted trigger gone.
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { pino } from 'pino';
import { DbServer } from './server.js';
import { DbClient } from './client.js';
import { freePort, sleep, tempDir } from '../test/helpers/platform.js';

const log = pino({ level: 'silent' });
let dir: string;
let server: DbServer;
let client: DbClient;

beforeEach(async () => {
  dir = await tempDir('zfaas-db-');
  const bind = `tcp://127.0.0.1:${await freePort()}`;
  server = new DbServer({ bind, dataDir: dir, log });
  await server.start();
  client = new DbClient(bind, 5_000);
});

afterEach(async () => {
  client.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
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

it('gives a trigger to one holder at a time, until its lease lapses or is given up', async () => {
  await client.request('putTrigger', trigger);
  const lease = (holder: string, leaseMs = 400, more = {}) =>
    client.request('leaseTrigger', { funcName: 'fn', id: 'ab12', holder, leaseMs, ...more });
  expect((await lease('api-1', 400, { stats: stats(3) })).held).toBe(true);
  expect((await lease('api-2')).held).toBe(false);
  expect((await lease('api-1', 400, { stats: stats(5) })).held).toBe(true); // renewed
  const [seen] = await client.request('listTriggers', { funcName: 'fn' });
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
  expect(await client.request('pauseTrigger', { funcName: 'fn', id: 'ab12', paused: true })).toBeNull();
  await client.request('putTrigger', trigger);
  await client.request('putTrigger', { ...trigger, id: 'cd34', funcName: 'other' });
  expect(await client.request('pauseTrigger', { funcName: 'fn', id: 'ab12', paused: true })).toMatchObject({ paused: true });
  expect((await client.request('listTriggers', {})).map((t) => t.id).sort()).toEqual(['ab12', 'cd34']);
  expect(await client.request('deleteTrigger', { funcName: 'other', id: 'cd34' })).toEqual({ deleted: true });
  expect(await client.request('deleteTrigger', { funcName: 'other', id: 'cd34' })).toEqual({ deleted: false });
  expect(await client.request('listTriggers', {})).toMatchObject([{ id: 'ab12', paused: true }]);
});
