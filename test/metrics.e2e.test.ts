// Observability (issue 7 items 3 and 4): GET /metrics in Prometheus format with the calls' counters and
// latency histograms and the cluster's gauges; per-function stats for the dashboard; `zfaas logs NAME`
// and `zfaas logs NAME --follow` streaming new calls' logs.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, startUp, upload, waitFor, type Platform } from './helpers/platform.js';

let p: Platform;

// Prints a marker (its logs), returns it; {fail: true} throws.
const LOUD = `module.exports = (p) => {
  console.log('marker ' + p.m);
  if (p.fail) throw new Error('failed on purpose ' + p.m);
  return { m: p.m };
};`;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2', '--policy', 'function']);
  for (const name of ['loud', 'other']) {
    expect((await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': LOUD }), `${name}.tar.gz`)).status).toBe(
      201,
    );
  }
});
afterAll(async () => p?.stop());

/** The value of one sample line of the exposition, e.g. metric('zfaas_nodes_alive'). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('GET /metrics', () => {
  it('counts calls by function and status, times them, and shows queue, nodes and warm containers', async () => {
    for (const m of ['a', 'b', 'c']) expect((await http('POST', `${p.api}/function/loud`, { m })).status).toBe(200);
    expect((await http('POST', `${p.api}/function/loud`, { m: 'd', fail: true })).status).toBe(500);
    const node = await p.nodeId();

    const res = await fetch(`${p.api}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE zfaas_calls_total counter');
    expect(text).toContain('# TYPE zfaas_call_latency_seconds histogram');
    expect(sample(text, 'zfaas_calls_total', { function: 'loud', status: 'DONE' })).toBe(3);
    expect(sample(text, 'zfaas_calls_total', { function: 'loud', status: 'ERROR' })).toBe(1);
    expect(sample(text, 'zfaas_calls_accepted_total', { function: 'loud' })).toBe(4);
    expect(sample(text, 'zfaas_call_latency_seconds_count', { function: 'loud' })).toBe(4);
    expect(sample(text, 'zfaas_call_latency_seconds_bucket', { function: 'loud', le: '+Inf' })).toBe(4);
    expect(sample(text, 'zfaas_call_latency_seconds_sum', { function: 'loud' })).toBeGreaterThan(0);
    expect(sample(text, 'zfaas_call_duration_seconds_count', { function: 'loud' })).toBe(4);
    expect(sample(text, 'zfaas_queue_length')).toBe(0);
    expect(sample(text, 'zfaas_nodes_alive')).toBe(1);
    expect(sample(text, 'zfaas_node_running_calls', { node })).toBe(0);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    // The node reports its warm containers with its heartbeats (policy function keeps loud@1 warm).
    await waitFor('a warm container of loud@1 in /metrics', async () => {
      const t = await (await fetch(`${p.api}/metrics`)).text();
      return (sample(t, 'zfaas_warm_containers', { node, function: 'loud@1' }) ?? 0) >= 1 ? true : undefined;
    });
  });

  it('GET /metrics/functions gives per-function counts and recent latency', async () => {
    const stats = (
      await http<Record<string, { calls: number; errors: number; p50: number; p95: number; lastAt: string }>>(
        'GET',
        `${p.api}/metrics/functions`,
      )
    ).body;
    expect(stats.loud).toMatchObject({ calls: 4, errors: 1 });
    expect(stats.loud!.p50).toBeGreaterThan(0);
    expect(stats.loud!.p95).toBeGreaterThanOrEqual(stats.loud!.p50);
    expect(Date.parse(stats.loud!.lastAt)).toBeGreaterThan(Date.now() - 120_000);
    expect(stats.other).toBeUndefined();
  });
});

describe('zfaas logs', () => {
  const env = { ...process.env, ZFAAS_API: '', ZFAAS_CONFIG: '/nonexistent/zfaas.json' };

  it('NAME prints the logs of the latest calls, oldest first, each under a header', async () => {
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [CLI, '--api', p.api, 'logs', 'loud', '-n', '2'], { env });
      let s = '';
      c.stdout.on('data', (b: Buffer) => (s += b.toString()));
      c.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`exit ${code}`))));
    });
    expect(out).toMatch(
      /==> call \d+ · loud@1 · DONE · .* <==\nmarker c\n==> call \d+ · loud@1 · ERROR · .* <==\nmarker d\n--- error ---\n.*failed on purpose d/,
    );
    expect(out).not.toContain('marker b');
  });

  it('NAME --follow streams the logs of new calls of that function only, as they finish', async () => {
    const child = spawn(process.execPath, [CLI, '--api', p.api, 'logs', 'loud', '--follow', '-n', '0'], { env });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    try {
      await waitFor('the follower to connect', async () => (err.includes('following the logs of loud') ? true : undefined), 15_000);
      await http('POST', `${p.api}/function/other`, { m: 'not-mine' });
      await http('POST', `${p.api}/function/loud`, { m: 'live-1' });
      await http('POST', `${p.api}/function/loud`, { m: 'live-2', fail: true });
      await waitFor('both calls in the followed logs', async () => (out.includes('failed on purpose live-2') ? true : undefined), 15_000);
      expect(out).toMatch(/==> call \d+ · loud@1 · DONE[^\n]*<==\nmarker live-1\n/);
      expect(out).toMatch(/==> call \d+ · loud@1 · ERROR[^\n]*<==\nmarker live-2\n--- error ---\n/);
      expect(out).not.toContain('not-mine');
      expect(out).not.toContain('marker c'); // -n 0: nothing from before
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('refuses --follow on a call number and an unknown function', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const c = spawn(process.execPath, [CLI, '--api', p.api, ...args], { env });
        let e = '';
        c.stderr.on('data', (b: Buffer) => (e += b.toString()));
        c.on('exit', (code) => resolve({ code, err: e }));
      });
    const [num, unknown] = await Promise.all([run(['logs', '1', '--follow']), run(['logs', 'nope', '--follow'])]);
    expect(num.code).toBe(2);
    expect(num.err).toMatch(/--follow follows a function/);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/function nope not found/);
  });
});
