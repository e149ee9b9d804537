// A call that began on a node while the API was away (restarting): the node says so again once the API is
// back, so that the record knows the call began. Should that node then be lost, a call of a function that
// may not run twice (retry=false) ends in ERROR instead of running a second time elsewhere.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import {
  freePort,
  http,
  labelledContainers,
  sleep,
  tempDir,
  upload,
  waitCall,
  waitFor,
  waitHealthy,
  zfaas,
  type CallView,
  type Proc,
} from './helpers/platform.js';

let data: string;
let db: Proc;
let api: Proc;
let node: Proc | undefined;
let url: string;
let dbAddr: string;
let brokerAddr: string;
let port: number;
const nodeId = `away-${process.pid}`;

const startApi = (): Proc => zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]);
// One miniworker: a call under policy none holds it for its whole run, and the next call waits on the node.
const startNode = (): Proc =>
  zfaas(['instance', '--broker', brokerAddr, '--db', dbAddr, '--data', join(data, 'node'), '--node-id', nodeId, '--miniworkers', '1'], {
    ZFAAS_LOG_LEVEL: 'debug',
  });

beforeAll(async () => {
  data = await tempDir();
  port = await freePort();
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  url = `http://127.0.0.1:${port}`;
  db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
  api = startApi();
  node = startNode();
  await waitHealthy(url, 1, api);
});

afterAll(async () => {
  await Promise.all([node?.stop(), api?.stop()]);
  await db?.stop();
  expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
  await rm(data, { recursive: true, force: true });
});

it('ends in ERROR, not run again, a retry=false call that began while the API was away and then lost its node', async () => {
  const arc = await packFiles({
    'index.js': 'module.exports = async (p) => { await new Promise((r) => setTimeout(r, p.ms)); return { slept: p.ms }; };',
  });
  const fields = { policy: 'none', retry: 'false', timeout: '60' };
  expect((await upload(`${url}/registerFunction/node/once`, arc, 'once.tar.gz', fields)).status).toBe(201);
  const invoke = async (ms: number): Promise<number> => {
    const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'once', params: { ms } });
    expect(r.status).toBe(202);
    return r.body.callNum;
  };
  const starts = (callNum: number): number =>
    node!
      .output()
      .split('\n')
      .filter((l) => l.includes('"run starts"') && l.includes(`"callNum":${callNum},`)).length;
  const first = await invoke(3000);
  await waitFor('the first call to start', async () => (starts(first) > 0 ? true : undefined), 60_000);
  const second = await invoke(30_000); // waits on the node for its one miniworker
  await sleep(500);
  expect(starts(second)).toBe(0);
  // The API goes away; the first call ends and the second begins meanwhile: that start reaches no API.
  api.child.kill('SIGKILL');
  await api.stop();
  await waitFor('the second call to start while the API is away', async () => (starts(second) > 0 ? true : undefined), 60_000);
  api = startApi();
  await waitHealthy(url, 1, api);
  await waitFor(
    'the API to know the second call began',
    async () => ((await http<CallView>('GET', `${url}/call/${second}`)).body.status === 'RUNNING' ? true : undefined),
    20_000,
  );
  // Its node is lost (killed) and comes back: the call may not run twice.
  node!.child.kill('SIGKILL');
  await node!.stop();
  node = startNode();
  const c = await waitCall(url, second);
  expect(c).toMatchObject({ status: 'ERROR', attempts: 1 });
  await sleep(2000); // a second run would have begun on the node by now
  expect(starts(second)).toBe(0); // this life of the node never ran it
  expect((await waitCall(url, first)).status).toBe('DONE');
});
