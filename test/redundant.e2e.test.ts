// Issue 6 item 2: redundant execution (seed 001: two workers, the fastest wins, the other is the fallback).
// Each run sees ZFAAS_REPLICA (0 or 1), which lets these functions behave differently per run.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, labelledContainers, startUp, upload, waitCall, waitFor, type CallView, type Platform } from './helpers/platform.js';

let p: Platform;
let node: string;

const deploy = async (name: string, src: string): Promise<void> => {
  const r = await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': src }), `${name}.tar.gz`, {
    policy: 'none',
    timeout: '20',
  });
  expect(r.status).toBe(201);
};

beforeAll(async () => {
  p = await startUp(['--miniworkers', '3']);
  node = await p.nodeId();
  await deploy(
    'racer',
    `module.exports = () => process.env.ZFAAS_REPLICA === '1' ? new Promise((r) => setTimeout(() => r('slow'), 15000)) : 'fast';`,
  );
  await deploy(
    'fallback',
    `module.exports = () => { if (process.env.ZFAAS_REPLICA === '0') throw new Error('replica 0 fails'); return 'from the fallback'; };`,
  );
  await deploy('doomed', `module.exports = () => { throw new Error('fails in run ' + process.env.ZFAAS_REPLICA); };`);
});
afterAll(async () => p?.stop());

it('keeps the first good result and cancels the other run', async () => {
  const r = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'racer', params: {}, redundant: true, wait: true });
  expect(r.body.status).toBe('DONE');
  expect(r.body.result).toBe('fast');
  // The slow run's container is killed instead of running its 15 s.
  await waitFor(
    'the slow run to be cancelled',
    async () => ((await labelledContainers({ 'zfaas.node': node, 'zfaas.call': String(r.body.callNum) })).length === 0 ? true : undefined),
    8000,
  );
  expect((await waitCall(p.api, r.body.callNum)).result).toBe('fast');
});

it('falls back on the other run when one fails', async () => {
  const r = await http('POST', `${p.api}/function/fallback?redundant=true`, {});
  expect(r.status).toBe(200);
  expect(r.body).toBe('from the fallback');
});

it('answers ERROR only when both runs failed', async () => {
  const r = await http<{ status: string; error: string }>('POST', `${p.api}/function/doomed?redundant=true`, {});
  expect(r.status).toBe(500);
  expect(r.body.error).toMatch(/fails in run [01]/);
});

it('without redundant a call runs once', async () => {
  const r = await http('POST', `${p.api}/function/fallback`, {});
  expect(r.status).toBe(200); // one run, no ZFAAS_REPLICA: the function's normal path
  expect(r.body).toBe('from the fallback');
});
