// A node told to stop (SIGTERM, as `docker service update` and `docker stop` do) drains: it takes no new
// calls, the calls it runs finish there, the ones waiting on it go back to the API and run on the other
// node; none is lost and none runs twice (also of a retry=false function). Real processes: the DB service,
// the API and two instances, with the node's grace period set by ZFAAS_DRAIN_TIMEOUT.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
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

let data: string;
let url: string;
let db: Proc;
let api: Proc;
const nodes: Record<string, Proc> = {};

beforeAll(async () => {
  data = await tempDir();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  const brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
  api = zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]);
  for (const id of ['n1', 'n2']) {
    // One miniworker each: a node holds one call running and one waiting behind it.
    nodes[id] = instanceProc({
      broker: brokerAddr,
      db: dbAddr,
      data,
      id,
      miniworkers: 1,
      policy: 'function',
      env: { ZFAAS_DRAIN_TIMEOUT: '20' },
    });
  }
  await waitHealthy(url, 2, api);
  const slow = await packFiles({
    'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r({ i: p.i, attempt: process.env.ZFAAS_ATTEMPT }), 3000));',
  });
  expect((await upload(`${url}/registerFunction/node/slow`, slow, 'slow.tar.gz', { retry: 'false' })).status).toBe(201);
  // Policy `function`: each node preloads a warm container of it, so a call that starts runs at once.
  await waitFor('a warm container on each node', async () => {
    const list = (await http<{ id: string; warm: Record<string, number> }[]>('GET', `${url}/nodes`)).body;
    return list.length === 2 && list.every((n) => Object.values(n.warm ?? {}).some((w) => w > 0)) ? true : undefined;
  });
});

afterAll(async () => {
  await Promise.all([...Object.values(nodes).map((p) => p.stop()), api?.stop(), db?.stop()]);
  for (const id of Object.keys(nodes)) expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
  await rm(data, { recursive: true, force: true });
});

it('finishes what the stopping node runs, runs what waited on it elsewhere, and loses and repeats nothing', async () => {
  const made: number[] = [];
  for (let i = 0; i < 8; i++) {
    const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'slow', params: { i } });
    expect(r.status).toBe(202);
    made.push(r.body.callNum);
  }
  // n1 runs one and holds another waiting behind it.
  await waitFor('n1 to run a call', async () => {
    const calls = (await http<CallView[]>('GET', `${url}/calls?format=list&status=RUNNING`)).body;
    return calls.some((c) => c.node === 'n1') ? true : undefined;
  });
  await sleep(1000); // well into its 3 s run
  const t0 = Date.now();
  nodes.n1!.child.kill('SIGTERM');
  expect(await nodes.n1!.stop()).toBe(0);
  const drainMs = Date.now() - t0;
  expect(drainMs).toBeLessThan(20_000); // it left once its calls were done, not at the end of its grace
  expect(nodes.n1!.output()).toMatch(/"msg":"drained"/);

  const ended = await waitFor(
    'every call to end',
    async () => {
      const all = await Promise.all(made.map(async (n) => (await http<CallView & { attempts: number }>('GET', `${url}/call/${n}`)).body));
      return all.every((c) => ['DONE', 'ERROR', 'TIMEOUT'].includes(c.status)) ? all : undefined;
    },
    90_000,
  );
  for (const c of ended) {
    expect(c.status, `call ${c.callNum}: ${c.error ?? ''}`).toBe('DONE');
    expect(c.attempts).toBe(1);
    expect(JSON.parse(c.result)).toMatchObject({ attempt: '1' });
  }
  // n1 finished what it ran; the rest ran on n2.
  expect(ended.some((c) => c.node === 'n1')).toBe(true);
  expect(ended.some((c) => c.node === 'n2')).toBe(true);
  const health = (await http<{ nodes: number }>('GET', `${url}/health`)).body;
  expect(health.nodes).toBe(1);
});
