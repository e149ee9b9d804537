// Several calls per container end to end (containerConcurrency): a Node and a Python function deployed
// with containerConcurrency 4 that sleep 300 ms. 16 calls at once use at most 4 containers (told by the
// container hostname each result carries, and by Docker's labels), each result and its logs are its own
// call's; a call that throws fails alone; a call that ends its process fails the calls in its container and
// the function works again after; a call past its timeout ends TIMEOUT and the others in its container
// DONE; a cancelled call ends alone and its container serves on. The functions run on the built-in node
// and python runtimes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, labelledContainers, sleep, startUp, upload, waitCall, waitFor, type CallView, type Platform } from './helpers/platform.js';

const NODE_FN = `const os = require('os');
module.exports = async (p) => {
  console.log('call', process.env.ZFAAS_CALL);
  if (p.exit) process.exit(3);
  await new Promise((r) => setTimeout(r, p.ms ?? 300));
  if (p.fail) throw new Error('boom ' + p.n);
  console.log('done', process.env.ZFAAS_CALL);
  return { call: process.env.ZFAAS_CALL, host: os.hostname(), n: p.n };
};
`;
const PYTHON_FN = `import asyncio
import os
import socket


async def handler(p):
    print("call", os.environ.get("ZFAAS_CALL"))
    if p.get("exit"):
        os._exit(3)
    await asyncio.sleep(p.get("ms", 300) / 1000)
    if p.get("fail"):
        raise RuntimeError("boom %s" % p.get("n"))
    print("done", os.environ.get("ZFAAS_CALL"))
    return {"call": os.environ.get("ZFAAS_CALL"), "host": socket.gethostname(), "n": p.get("n")}
`;

let p: Platform;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2', '--policy', 'function']);
}, 300_000);

afterAll(async () => {
  await p?.stop();
}, 120_000);

const LANGS = [
  { lang: 'node', runtime: 'node', files: { 'index.js': NODE_FN } },
  { lang: 'python', runtime: 'python', files: { 'handler.py': PYTHON_FN } },
] as const;

interface Value {
  call: string;
  host: string;
  n: number;
}

describe.each(LANGS)('a $lang function with containerConcurrency 4', ({ lang, runtime, files }) => {
  const name = `conc-${lang}`;
  const invoke = (params: Record<string, unknown>, fn = name) =>
    http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: fn, params, wait: 120 }).then((r) => r.body);
  const start = async (params: Record<string, unknown>, fn = name): Promise<number> =>
    (await http<{ callNum: number }>('POST', `${p.api}/invokeFunction`, { funcName: fn, params })).body.callNum;

  beforeAll(async () => {
    const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, {
      containerConcurrency: '4',
      timeout: '30',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }, 120_000);

  it('runs 16 calls at once in at most 4 containers, each result and its logs its own call', async () => {
    const calls = await Promise.all(Array.from({ length: 16 }, (_, n) => invoke({ n })));
    for (const c of calls) {
      expect(c.status, c.error).toBe('DONE');
      const v = JSON.parse(c.result) as Value;
      expect(v.call).toBe(String(c.callNum));
      expect(c.logs).toBe(`call ${c.callNum}\ndone ${c.callNum}\n`);
    }
    const hosts = new Set(calls.map((c) => (JSON.parse(c.result) as Value).host));
    expect(hosts.size).toBeLessThanOrEqual(4);
    expect((await labelledContainers({ 'zfaas.function': name })).length).toBeLessThanOrEqual(4);
  }, 180_000);

  it('fails a call that throws alone', async () => {
    const calls = await Promise.all([0, 1, 2, 3].map((n) => invoke({ n, fail: n === 2 })));
    expect(calls.map((c) => c.status)).toEqual(['DONE', 'DONE', 'ERROR', 'DONE']);
    expect(calls[2]!.error).toContain('boom 2');
  }, 120_000);

  it('fails the calls in a container whose process exits, and works again after', async () => {
    const sleepers = await Promise.all([1, 2, 3].map((n) => start({ n, ms: 4000 })));
    await waitFor('the sleepers to run', async () => {
      const s = await Promise.all(sleepers.map((n) => http<CallView>('GET', `${p.api}/call/${n}`)));
      return s.every((r) => r.body.status === 'RUNNING') ? true : undefined;
    });
    await sleep(300); // in their container, sleeping
    const exiting = await invoke({ n: 4, exit: true });
    expect(exiting.status).toBe('ERROR');
    const ended = await Promise.all(sleepers.map((n) => waitCall(p.api, n)));
    // the sleepers were in the container with it (the fullest container with a free slot takes a call)
    expect(ended.map((c) => c.status)).toEqual(['ERROR', 'ERROR', 'ERROR']);
    expect(ended[0]!.error).toMatch(/exited/);
    const again = await invoke({ n: 5 });
    expect(again.status, again.error).toBe('DONE');
  }, 120_000);

  it('cancels one call in its container alone: the others end DONE and the container serves on', async () => {
    const doomed = await start({ n: 1, ms: 20_000 });
    await waitFor('the call to run', async () =>
      (await http<CallView>('GET', `${p.api}/call/${doomed}`)).body.status === 'RUNNING' ? true : undefined,
    );
    const others = [2, 3].map((n) => invoke({ n, ms: 1500 }));
    await sleep(500); // in the container beside it
    expect((await http('DELETE', `${p.api}/call/${doomed}`)).status).toBe(200);
    const done = await Promise.all(others);
    expect(done.map((c) => c.status)).toEqual(['DONE', 'DONE']);
    expect((await waitCall(p.api, doomed)).status).toBe('ERROR');
    const hosts = done.map((c) => (JSON.parse(c.result) as Value).host);
    const after = await invoke({ n: 4, ms: 10 });
    expect(after.status).toBe('DONE');
    expect(hosts).toContain((JSON.parse(after.result) as Value).host); // the same container, not killed
  }, 120_000);

  it('ends a call past its timeout in TIMEOUT and leaves the other calls in its container DONE', async () => {
    const slowName = `${name}-slow`;
    const r = await upload(`${p.api}/registerFunction/${runtime}/${slowName}`, await packFiles(files), `${slowName}.tar.gz`, {
      containerConcurrency: '4',
      timeout: '3',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect((await invoke({ n: 0, ms: 10 }, slowName)).status).toBe('DONE'); // its container is made and loaded
    const slow = await start({ n: 1, ms: 20_000 }, slowName);
    await sleep(1500);
    // these run from about 1.5 s to 3.5 s: the slow one passes its deadline (3 s) while they run
    const others = await Promise.all([2, 3, 4].map((n) => invoke({ n, ms: 2000 }, slowName)));
    expect(others.map((c) => c.status)).toEqual(['DONE', 'DONE', 'DONE']);
    const slowEnd = await waitCall(p.api, slow);
    expect(slowEnd.status).toBe('TIMEOUT');
    // the function serves calls after it
    expect((await invoke({ n: 5, ms: 10 }, slowName)).status).toBe('DONE');
  }, 120_000);
});

describe('the setting', () => {
  it('is refused with policy none, and out of its range, saying what was expected', async () => {
    const archive = await packFiles({ 'index.js': NODE_FN });
    const none = await upload(`${p.api}/registerFunction/node/conc-none`, archive, 'x.tar.gz', {
      containerConcurrency: '4',
      policy: 'none',
    });
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toMatch(/containerConcurrency.*policy function or runtime/);
    const big = await upload(`${p.api}/registerFunction/node/conc-big`, archive, 'x.tar.gz', { containerConcurrency: '5000' });
    expect(big.status).toBe(400);
    expect(JSON.stringify(big.body)).toMatch(
      /containerConcurrency: expected a whole number of calls one container runs at once from 1 to 1000/,
    );
  });
});
