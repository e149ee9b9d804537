// Cancelling calls, against the real services: a running 60-second call ends within 2 seconds, cancelled,
// with its container gone; a queued call never runs; a cancelled call is never retried; an ended call
// cannot be cancelled; the CLI does the same.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, labelledContainers, startUp, upload, waitCall, waitFor, type CallView, type Platform } from './helpers/platform.js';

let p: Platform;
let nodeId: string;

const SLOW = { 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r({ slept: p.s }), p.s * 1000));' };

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2']);
  nodeId = await p.nodeId();
  for (const [name, fields] of [
    ['slow', { policy: 'function', timeout: '90' }],
    ['slowcold', { policy: 'none', timeout: '90' }],
    ['single', { policy: 'function', timeout: '90', concurrency: '1' }],
  ] as const) {
    const r = await upload(`${p.api}/registerFunction/node/${name}`, await packFiles(SLOW), `${name}.tar.gz`, fields);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
});

afterAll(async () => {
  await p?.stop();
});

const start = async (name: string, params: unknown): Promise<number> =>
  (await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: name, params })).body.callNum;
const running = (n: number): Promise<true> =>
  waitFor(
    `call ${n} running`,
    async () => (await http<CallView>('GET', `${p.api}/call/${n}`)).body.status === 'RUNNING' || undefined,
    30_000,
  );

describe('DELETE /call/N', () => {
  for (const name of ['slow', 'slowcold']) {
    it(`stops a running 60-second call (${name === 'slow' ? 'warm container' : 'policy none'}) within 2 s, its container gone`, async () => {
      const n = await start(name, { s: 60 });
      await running(n);
      await waitFor(
        'its container',
        async () =>
          (await labelledContainers({ 'zfaas.node': nodeId, 'zfaas.call': String(n) })).length > 0 || name === 'slow' || undefined,
        10_000,
      );
      const t0 = Date.now();
      const r = await http<CallView & { cancelled?: boolean }>('DELETE', `${p.api}/call/${n}`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'ERROR', cancelled: true });
      const c = await waitCall(p.api, n, 5000);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(c.status).toBe('ERROR');
      expect(c.error).toMatch(/cancelled/);
      // The container that ran it goes.
      await waitFor(
        'no container running the cancelled call',
        async () => {
          const nodes = (await http<{ containers: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body;
          const perCall = await labelledContainers({ 'zfaas.node': nodeId, 'zfaas.call': String(n) });
          return (perCall.length === 0 && (nodes[0]!.containers.busy ?? 0) === 0) || undefined;
        },
        10_000,
      );
      // Never retried: it stays as it ended.
      await new Promise((r) => setTimeout(r, 1500));
      expect((await http<CallView>('GET', `${p.api}/call/${n}`)).body.status).toBe('ERROR');
    });
  }

  it('a queued call never runs', async () => {
    const first = await start('single', { s: 3 });
    const second = await start('single', { s: 0 });
    await running(first);
    expect((await http<CallView>('GET', `${p.api}/call/${second}`)).body.status).toBe('PENDING');
    expect((await http('DELETE', `${p.api}/call/${second}`)).status).toBe(200);
    expect((await waitCall(p.api, first, 30_000)).status).toBe('DONE');
    await new Promise((r) => setTimeout(r, 1000));
    const c = (await http<CallView & { cancelled?: boolean; node?: string }>('GET', `${p.api}/call/${second}`)).body;
    expect(c).toMatchObject({ status: 'ERROR', cancelled: true });
    expect(c.node).toBeUndefined(); // it never reached a node
  });

  it('refuses an ended call (409), an unknown one (404) and a bad number (400)', async () => {
    const n = await start('slow', { s: 0 });
    await waitCall(p.api, n, 30_000);
    expect((await http('DELETE', `${p.api}/call/${n}`)).status).toBe(409);
    expect((await http('DELETE', `${p.api}/call/999999`)).status).toBe(404);
    expect((await http('DELETE', `${p.api}/call/abc`)).status).toBe(400);
  });

  it('zfaas cancel N does the same', async () => {
    const n = await start('slow', { s: 60 });
    await running(n);
    const child = spawn(process.execPath, [CLI, 'cancel', String(n)], {
      env: { ...process.env, ZFAAS_API: p.api },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`cancelled call ${n}`));
    expect((await waitCall(p.api, n, 5000)).status).toBe('ERROR');
  });
});
