// minWarm end to end: `zfaas up` with a short idle time; a function deployed with minWarm=2 gets two
// loaded containers before any call, keeps them past the idle time (a function without it scales to
// zero), serves its calls without a cold start, moves the floor to a new version, and lets the containers
// go when minWarm is taken away. A minWarm the policy cannot keep is refused at deploy.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, sleep, startUp, upload, waitFor, type Platform } from './helpers/platform.js';

let p: Platform;
const SRC = 'module.exports = (p) => ({ pid: process.pid, n: p.n });\n';

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2', '--policy', 'function'], { ZFAAS_IDLE_TTL: '1' });
});
afterAll(async () => {
  await p?.proc.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
});

const deploy = async (name: string, fields: Record<string, string>) =>
  upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': SRC }), `${name}.tar.gz`, fields);

// Warm containers of NAME@VERSION on the node, as its heartbeats report them.
async function warm(key: string): Promise<number> {
  const text = await (await fetch(`${p.api}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('zfaas_warm_containers{') && l.includes(`function="${key}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
const coldStarts = async (fn: string): Promise<number> => {
  const text = await (await fetch(`${p.api}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('zfaas_cold_starts_total{') && l.includes(`function="${fn}"`))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
};
const until = (what: string, key: string, n: number) => waitFor(what, async () => ((await warm(key)) === n ? true : undefined), 60_000);

describe('minWarm', () => {
  it('keeps that many containers loaded before and between calls, past the idle time, and serves calls without a cold start', async () => {
    expect((await deploy('kept', { minWarm: '2' })).status).toBe(201);
    expect((await deploy('plain', {})).status).toBe(201);
    await until('two warm containers of kept@1', 'kept@1', 2);
    // A function without it: its container goes after the idle time (1 s here).
    expect((await http('POST', `${p.api}/function/plain`, { n: 0 })).status).toBe(200);
    await until('plain@1 scaled to zero', 'plain@1', 0);
    await sleep(2500); // well past the idle time
    expect(await warm('kept@1')).toBe(2);
    for (const n of [1, 2, 3]) expect((await http('POST', `${p.api}/function/kept`, { n })).status).toBe(200);
    expect(await coldStarts('kept')).toBe(0);
    expect(await warm('kept@1')).toBe(2);
  });

  it('moves the floor to a new version, and lets the containers go when minWarm is taken away', async () => {
    expect((await deploy('kept', { minWarm: '1' })).status).toBe(201); // version 2
    await until('one warm container of kept@2', 'kept@2', 1);
    await until('none of kept@1', 'kept@1', 0);
    expect((await http('POST', `${p.api}/function/kept`, { n: 4 })).status).toBe(200);
    expect(await coldStarts('kept')).toBe(0);
    expect((await deploy('kept', {})).status).toBe(201); // version 3, no minWarm
    await until('kept@2 gone', 'kept@2', 0);
  });

  it('refuses a minWarm that policy none could never use, saying why', async () => {
    const r = await deploy('never', { minWarm: '1', policy: 'none' });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body)).toMatch(/minWarm keeps containers loaded.*policy function or runtime/);
  });
});
