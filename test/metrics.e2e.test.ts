// Observability (issue 7 items 3 and 4): GET /metrics in Prometheus format with the calls' counters and
// latency histograms and the cluster's gauges; per-function stats for the dashboard; `zfaas logs NAME`
// and `zfaas logs NAME --follow` streaming new calls' logs. Then the counters of retries, dead letters and
// schedule ticks, the per-minute timeline of the last hour, and that timeline after an API restart
// (filled from the stored calls).
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, sleep, startUp, upload, waitCall, waitFor, restartUp, type Platform, type Proc } from './helpers/platform.js';

let p: Platform;
let proc: Proc; // the running `zfaas up` (p.proc until the restart)

// Prints a marker (its logs), returns it; {fail: true} throws.
const LOUD = `module.exports = (p) => {
  console.log('marker ' + p.m);
  if (p.fail) throw new Error('failed on purpose ' + p.m);
  return { m: p.m };
};`;

const UP = ['--miniworkers', '2', '--policy', 'function'];

beforeAll(async () => {
  p = await startUp(UP);
  proc = p.proc;
  for (const name of ['loud', 'other']) {
    expect((await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': LOUD }), `${name}.tar.gz`)).status).toBe(
      201,
    );
  }
});
afterAll(async () => {
  await proc?.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
});

const metrics = async (): Promise<string> => (await fetch(`${p.api}/metrics`)).text();

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

  it('counts cold starts by function and kind and times them: each call of a policy none function starts a container', async () => {
    expect(
      (await upload(`${p.api}/registerFunction/node/fresh`, await packFiles({ 'index.js': LOUD }), 'fresh.tar.gz', { policy: 'none' }))
        .status,
    ).toBe(201);
    for (const m of ['a', 'b']) expect((await http('POST', `${p.api}/function/fresh`, { m })).status).toBe(200);
    const text = await metrics();
    expect(sample(text, 'zfaas_cold_starts_total', { function: 'fresh', kind: 'fresh' })).toBe(2);
    expect(sample(text, 'zfaas_cold_start_seconds_count', { function: 'fresh', kind: 'fresh' })).toBe(2);
    expect(sample(text, 'zfaas_cold_start_seconds_sum', { function: 'fresh', kind: 'fresh' })).toBeGreaterThan(0);
    const stats = (await http<Record<string, { coldStarts: number; coldP50: number }>>('GET', `${p.api}/metrics/functions`)).body;
    expect(stats.fresh).toMatchObject({ calls: 2, coldStarts: 2 });
    expect(stats.fresh!.coldP50).toBeGreaterThan(0);
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

interface Timeline {
  minuteMs: number;
  minutes: number[];
  functions: Record<string, { calls: number[]; errors: number[]; p50: (number | null)[]; p95: (number | null)[] }>;
}
const timeline = async (query = ''): Promise<Timeline> => (await http<Timeline>('GET', `${p.api}/metrics/functions/timeline${query}`)).body;
const sum = (xs: number[]): number => xs.reduce((a, n) => a + n, 0);

describe('retries, dead letters, schedule ticks and the last hour', () => {
  it('counts the retries of a function with retries=1 that fails twice, and its dead letter', async () => {
    const r = await upload(`${p.api}/registerFunction/node/doomed`, await packFiles({ 'index.js': LOUD }), 'doomed.tar.gz', {
      retries: '1',
      retryBackoff: '100ms',
    });
    expect(r.status).toBe(201);
    const n = (await http<{ callNum: number }>('POST', `${p.api}/invokeFunction`, { funcName: 'doomed', params: { m: 'x', fail: true } }))
      .body.callNum;
    const c = await waitCall(p.api, n);
    expect(c).toMatchObject({ status: 'ERROR', attempts: 2 });
    await waitFor('the dead letter in /metrics', async () =>
      sample(await metrics(), 'zfaas_dead_letters_total', { function: 'doomed' }) === 1 ? true : undefined,
    );
    const text = await metrics();
    expect(text).toContain('# TYPE zfaas_call_retries_total counter');
    expect(sample(text, 'zfaas_call_retries_total', { function: 'doomed' })).toBe(1);
    expect(sample(text, 'zfaas_calls_total', { function: 'doomed', status: 'ERROR' })).toBe(1);
    // A function without retries fails without a retry or a dead letter.
    expect(sample(text, 'zfaas_call_retries_total', { function: 'loud' })).toBeUndefined();
    expect(sample(text, 'zfaas_dead_letters_total', { function: 'loud' })).toBeUndefined();
    expect(text).toContain('# TYPE zfaas_callback_deliveries_total counter');
  });

  it('counts the ticks a schedule fired, one per call it made', async () => {
    const r = await upload(`${p.api}/registerFunction/node/ticker`, await packFiles({ 'index.js': LOUD }), 'ticker.tar.gz');
    expect(r.status).toBe(201);
    const s = await http<{ id: string }>('POST', `${p.api}/functions/ticker/schedules`, { cron: '*/1 * * * * *', params: { m: 'tick' } });
    expect(s.status).toBe(201);
    await sleep(3200);
    expect((await http('DELETE', `${p.api}/functions/ticker/schedules/${s.body.id}`)).status).toBe(200);
    await sleep(1000); // a tick being fired as it was deleted ends
    const fired = sample(await metrics(), 'zfaas_schedule_ticks_total', { function: 'ticker', outcome: 'fired' }) ?? 0;
    expect(fired).toBeGreaterThanOrEqual(2);
    expect(fired).toBeLessThanOrEqual(5);
    const calls = (await http<{ schedule?: { id: string } }[]>('GET', `${p.api}/calls?format=list&funcName=ticker`)).body;
    expect(calls.filter((c) => c.schedule?.id === s.body.id)).toHaveLength(fired);
    expect(sample(await metrics(), 'zfaas_schedule_ticks_total', { function: 'ticker', outcome: 'skipped' })).toBeUndefined();
  });

  it('GET /metrics/functions/timeline gives the last hour per minute: calls, failures, p50 and p95', async () => {
    const t = await timeline();
    expect(t.minuteMs).toBe(60_000);
    expect(t.minutes).toHaveLength(60);
    expect(t.minutes.at(-1)).toBe(Math.floor(Date.now() / 60_000) * 60_000);
    const loud = t.functions.loud!;
    for (const k of ['calls', 'errors', 'p50', 'p95'] as const) expect(loud[k]).toHaveLength(60);
    const stats = (await http<Record<string, { calls: number; errors: number }>>('GET', `${p.api}/metrics/functions`)).body;
    expect(sum(loud.calls)).toBe(stats.loud!.calls);
    expect(sum(loud.errors)).toBe(stats.loud!.errors);
    expect(sum(t.functions.doomed!.errors)).toBe(1);
    loud.calls.forEach((n, i) => {
      expect(loud.p50[i] === null).toBe(n === 0);
      if (n > 0) expect(loud.p95[i]!).toBeGreaterThanOrEqual(loud.p50[i]!);
    });
    const only = await timeline('?funcName=doomed');
    expect(Object.keys(only.functions)).toEqual(['doomed']);
    expect((await http('GET', `${p.api}/metrics/functions/timeline?funcName=no%20such`)).status).toBe(400);
  });

  it('keeps the timeline over an API restart: filled from the stored calls', async () => {
    const before = await timeline();
    expect(await proc.stop()).toBe(0);
    proc = await restartUp(p, UP);
    // The counters start again; the hour does not.
    expect(sample(await metrics(), 'zfaas_calls_total', { function: 'loud', status: 'DONE' })).toBeUndefined();
    const after = await waitFor('the timeline filled', async () => {
      const t = await timeline();
      return t.functions.loud ? t : undefined;
    });
    for (const fn of ['loud', 'doomed', 'ticker']) {
      expect(sum(after.functions[fn]!.calls), fn).toBe(sum(before.functions[fn]!.calls));
      expect(sum(after.functions[fn]!.errors), fn).toBe(sum(before.functions[fn]!.errors));
    }
    expect(after.functions.loud!.p50.some((v) => v !== null)).toBe(true);
  });
});
