// The parts as separate processes (zfaas db / api / instance): the db and api restart and the calls
// they accepted are still there, the instance re-registers, and new calls run.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, http, tempDir, upload, waitCall, waitHealthy, zfaas, type CallView, type Proc } from './helpers/platform.js';

let data: string;
let db: Proc;
let api: Proc;
let inst: Proc;
let url: string;
let dbAddr: string;
let brokerAddr: string;
let port: number;

const startDb = (): Proc => zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
const startApi = (): Proc => zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]);

beforeAll(async () => {
  data = await tempDir();
  port = await freePort();
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  url = `http://127.0.0.1:${port}`;
  db = startDb();
  api = startApi();
  inst = zfaas(['instance', '--broker', brokerAddr, '--db', dbAddr, '--data', join(data, 'instance'), '--miniworkers', '2']);
  await waitHealthy(url, 1, api);
});

afterAll(async () => {
  await Promise.all([inst?.stop(), api?.stop(), db?.stop()]);
  await rm(data, { recursive: true, force: true });
});

it('keeps every call across a restart of the db and api services', async () => {
  const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ twice: p.n * 2 });' });
  expect((await upload(`${url}/registerFunction/node/twice`, arc, 'twice.tar.gz')).status).toBe(201);
  const nums: number[] = [];
  for (let n = 1; n <= 3; n++) {
    const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'twice', params: { n } });
    expect(r.status).toBe(202);
    nums.push(r.body.callNum);
  }
  for (const n of nums) expect((await waitCall(url, n)).status).toBe('DONE');

  expect(await api.stop()).toBe(0);
  expect(await db.stop()).toBe(0);
  db = startDb();
  api = startApi();
  // The instance notices the API went away and registers again with the new one.
  await waitHealthy(url, 1, api);

  for (const [i, n] of nums.entries()) {
    const c = await http<CallView>('GET', `${url}/call/${n}`);
    expect(c.body.status).toBe('DONE');
    expect(JSON.parse(c.body.result)).toEqual({ twice: (i + 1) * 2 });
  }
  expect((await http<string[]>('GET', `${url}/functions`)).body).toEqual(['twice']);
  const after = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'twice', params: { n: 21 }, wait: true });
  expect(after.body.status).toBe('DONE');
  expect(after.body.callNum).toBe(nums[nums.length - 1]! + 1);
  expect(JSON.parse(after.body.result)).toEqual({ twice: 42 });
});

it('a call accepted while no node is connected waits, then runs when one joins', async () => {
  expect(await inst.stop()).toBe(0);
  await waitHealthy(url, 0, api);
  const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'twice', params: { n: 5 } });
  expect(r.status).toBe(202);
  expect((await http<CallView>('GET', `${url}/call/${r.body.callNum}`)).body.status).toBe('PENDING');
  inst = zfaas(['instance', '--broker', brokerAddr, '--db', dbAddr, '--data', join(data, 'instance'), '--miniworkers', '2']);
  const c = await waitCall(url, r.body.callNum);
  expect(c.status).toBe('DONE');
  expect(JSON.parse(c.result)).toEqual({ twice: 10 });
});
