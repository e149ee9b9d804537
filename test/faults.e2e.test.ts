// Issue 6 item 1: faults under load. 200+ calls in flight (short and slow functions) on two nodes while a
// miniworker, an instance, the API and the DB service are each killed with SIGKILL and restarted. Every
// call the API accepted must end DONE (recorded once, none left PENDING/RUNNING); a function with
// retry=false that loses its node ends ERROR instead of running twice.
import { execFile } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killIfStill } from './helpers/cluster.js';
import { packFiles } from './helpers/archives.js';
import {
  freePort,
  http,
  instanceProc,
  labelledContainers,
  sleep,
  tempDir,
  upload,
  waitFor,
  waitHealthy,
  zfaas,
  type CallView,
  type Proc,
} from './helpers/platform.js';

const run = promisify(execFile);
let data: string;
let url: string;
let port: number;
let dbAddr: string;
let brokerAddr: string;
let db: Proc;
let api: Proc;
const nodes: Record<string, Proc> = {};

const startDb = (): Proc => zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
const startApi = (): Proc => zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]);
const startNode = (id: string): Proc =>
  (nodes[id] = instanceProc({ broker: brokerAddr, db: dbAddr, data, id, miniworkers: 3, policy: 'function' }));

beforeAll(async () => {
  data = await tempDir();
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  db = startDb();
  api = startApi();
  startNode('n1');
  startNode('n2');
  await waitHealthy(url, 2, api);
  const short = await packFiles({ 'index.js': 'module.exports = (p) => ({ i: p.i, twice: p.i * 2 });' });
  const slow = await packFiles({
    'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r({ i: p.i, slow: true }), 400 + (p.i % 5) * 100));',
  });
  const once = await packFiles({ 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r("ran"), 4000));' });
  expect((await upload(`${url}/registerFunction/node/short`, short, 'short.tar.gz')).status).toBe(201);
  expect((await upload(`${url}/registerFunction/node/slow`, slow, 'slow.tar.gz')).status).toBe(201);
  expect((await upload(`${url}/registerFunction/node/once`, once, 'once.tar.gz', { retry: 'false' })).status).toBe(201);
});

afterAll(async () => {
  const ids = Object.keys(nodes);
  // The nodes first, while the API and the DB service still answer them: a node's stop records what it
  // ran and then removes its containers and sockets, which it cannot do against services being stopped.
  await Promise.all(Object.values(nodes).map((p) => p.stop()));
  await Promise.all([api?.stop(), db?.stop()]);
  // Containers of killed nodes were removed when they restarted and stopped.
  for (const id of ids) expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
  // Nor their miniworkers' sockets: a killed node's is removed by its next life.
  const sockets = (await readdir(tmpdir())).filter((f) => ids.some((id) => f.startsWith(`zfaas-${id}-`) && f.endsWith('.sock')));
  expect(sockets).toEqual([]);
  await rm(data, { recursive: true, force: true });
});

// Submits calls, retrying only when the API itself is down (then nothing was accepted).
async function submit(funcName: string, i: number): Promise<number | null> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName, params: { i } });
      if (r.status === 202) return r.body.callNum;
      if (r.status !== 503) throw new Error(`unexpected ${r.status}: ${JSON.stringify(r.body)}`);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // fetch failed: the API is down; try again
    }
    await sleep(100);
  }
  return null;
}

async function load(n: number, offset: number): Promise<Map<number, { funcName: string; i: number }>> {
  const accepted = new Map<number, { funcName: string; i: number }>();
  await Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const i = offset + k;
      const funcName = i % 3 === 0 ? 'slow' : 'short';
      const callNum = await submit(funcName, i);
      if (callNum !== null) accepted.set(callNum, { funcName, i });
    }),
  );
  return accepted;
}

async function kill(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.stop();
}

async function miniworkerPids(instancePid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(instancePid)]);
  return stdout.trim().split(/\s+/).filter(Boolean).map(Number);
}

async function allFinal(accepted: Map<number, { funcName: string; i: number }>): Promise<void> {
  await waitFor(
    'every accepted call to finish',
    async () => {
      const r = await http<CallView[]>('GET', `${url}/calls?format=list&limit=100000`);
      if (r.status !== 200) return undefined;
      const byNum = new Map(r.body.map((c) => [c.callNum, c]));
      for (const n of accepted.keys()) {
        const c = byNum.get(n);
        if (!c || !['DONE', 'ERROR', 'TIMEOUT'].includes(c.status)) return undefined;
      }
      return true;
    },
    180_000,
  );
  for (const [n, { funcName, i }] of accepted) {
    const c = (await http<CallView>('GET', `${url}/call/${n}`)).body;
    expect(c.status, `call ${n}: ${c.error ?? ''}`).toBe('DONE');
    expect(JSON.parse(c.result)).toEqual(funcName === 'slow' ? { i, slow: true } : { i, twice: i * 2 });
  }
}

it('loses no call when a miniworker, an instance, the API and the DB service are killed in turn', async () => {
  const accepted = new Map<number, { funcName: string; i: number }>();
  const merge = (m: Map<number, { funcName: string; i: number }>): void => m.forEach((v, k) => accepted.set(k, v));

  // 1. a miniworker of n1, mid-load
  const l1 = load(120, 0);
  await sleep(700);
  const mws = await miniworkerPids(nodes.n1!.child.pid!);
  expect(mws.length).toBeGreaterThan(0);
  expect(await killIfStill(mws[0]!, 'miniworker/main.js')).toBe(true);
  merge(await l1);

  // 2. the instance n2 (its calls go to n1), then it comes back with the same id
  const l2 = load(120, 1000);
  await sleep(700);
  await kill(nodes.n2!);
  merge(await l2);
  startNode('n2');

  // 3. the API, mid-load; the nodes re-register with the new one
  const l3 = load(120, 2000);
  await sleep(500);
  await kill(api);
  api = startApi();
  merge(await l3);
  await waitHealthy(url, 2, api);

  // 4. the DB service, mid-load
  const l4 = load(120, 3000);
  await sleep(500);
  await kill(db);
  await sleep(1000);
  db = startDb();
  merge(await l4);

  expect(accepted.size).toBeGreaterThanOrEqual(400);
  await allFinal(accepted);
  // Recorded once: no call carries more attempts than the retry rule allows.
  const calls = (await http<CallView[]>('GET', `${url}/calls?format=list&limit=100000`)).body;
  for (const c of calls) expect(c.attempts).toBeLessThanOrEqual(3);
});

it('a function with retry=false whose node dies mid-call ends ERROR and is not run again', async () => {
  await waitHealthy(url, 2, api);
  const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'once', params: {} });
  expect(r.status).toBe(202);
  const running = await waitFor('the call to run', async () => {
    const c = (await http<CallView>('GET', `${url}/call/${r.body.callNum}`)).body;
    return c.status === 'RUNNING' && c.node ? c.node : undefined;
  });
  await kill(nodes[running]!);
  const c = await waitFor('the call to end', async () => {
    const v = (await http<CallView>('GET', `${url}/call/${r.body.callNum}`)).body;
    return ['DONE', 'ERROR', 'TIMEOUT'].includes(v.status) ? v : undefined;
  });
  expect(c.status).toBe('ERROR');
  expect(c.error).toMatch(/retry=false/);
  expect(c.attempts).toBe(1);
  startNode(running);
  await waitHealthy(url, 2, api);
});
