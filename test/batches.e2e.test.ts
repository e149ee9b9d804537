// Fan-out batches (issue 7 item 2): POST /batch/:fn with a JSON array or JSON lines, progress and
// statistics, results in input order, a bounded window of live calls, and `zfaas invoke --batch`.
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, startUp, tempDir, upload, waitFor, type Platform } from './helpers/platform.js';

const run = promisify(execFile);

interface Progress {
  batchId: string;
  state: string;
  size: number;
  created: number;
  done: number;
  failed: number;
  pending: number;
  p50: number | null;
  p95: number | null;
  callsPerSecond: number;
  elapsedMs: number;
  callNums: (number | null)[];
}
interface Item {
  index: number;
  callNum: number | null;
  status: string;
  result?: string;
  error?: string;
}

let p: Platform;
let work: string;

// Echoes its params; {fail: true} throws; {sleepMs} waits first.
const ECHO = `module.exports = async (p) => {
  if (p.sleepMs) await new Promise((r) => setTimeout(r, p.sleepMs));
  if (p.fail) throw new Error('item ' + p.n + ' asked to fail');
  return p;
};`;

beforeAll(async () => {
  work = await tempDir('zfaas-batch-');
  p = await startUp(['--miniworkers', '4', '--policy', 'function']);
  const r = await upload(`${p.api}/registerFunction/node/echo`, await packFiles({ 'index.js': ECHO }), 'echo.tar.gz');
  expect(r.status).toBe(201);
});

afterAll(async () => {
  await p?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const progress = async (id: string): Promise<Progress> => (await http<Progress>('GET', `${p.api}/batch/${id}`)).body;
const finished = (id: string, ms = 60_000): Promise<Progress> =>
  waitFor(`batch ${id}`, async () => ((await progress(id)).state === 'finished' ? progress(id) : undefined), ms);

describe('POST /batch/:fn', () => {
  it('runs 500 calls, reports progress and statistics, and answers results in input order', async () => {
    const items = Array.from({ length: 500 }, (_, n) => ({ n }));
    const t0 = Date.now();
    const r = await http<{ batchId: string; size: number; version: number }>('POST', `${p.api}/batch/echo`, items);
    expect(r.status).toBe(202);
    expect(r.headers.get('location')).toBe(`/batch/${r.body.batchId}`);
    expect(r.body).toMatchObject({ size: 500, funcName: 'echo', version: 1 });
    expect(Date.now() - t0).toBeLessThan(2000); // accepted at once, run after

    const b = await finished(r.body.batchId);
    expect(b).toMatchObject({ size: 500, created: 500, done: 500, failed: 0, pending: 0 });
    expect(b.p50).toBeGreaterThan(0);
    expect(b.p95!).toBeGreaterThanOrEqual(b.p50!);
    expect(b.callsPerSecond).toBeGreaterThan(0);
    expect(new Set(b.callNums).size).toBe(500);
    console.log(`batch of 500 warm calls: ${b.callsPerSecond} calls/s, p50 ${b.p50} ms, p95 ${b.p95} ms, ${b.elapsedMs} ms in all`);

    const page1 = (await http<{ items: Item[] }>('GET', `${p.api}/batch/${b.batchId}/results`)).body.items;
    expect(page1).toHaveLength(500);
    page1.forEach((it, i) => {
      expect(it).toMatchObject({ index: i, status: 'DONE', callNum: b.callNums[i] });
      expect(JSON.parse(it.result!)).toEqual({ n: i });
    });
    const page2 = (await http<{ offset: number; items: Item[] }>('GET', `${p.api}/batch/${b.batchId}/results?offset=490&limit=20`)).body;
    expect(page2.offset).toBe(490);
    expect(page2.items.map((i) => i.index)).toEqual([490, 491, 492, 493, 494, 495, 496, 497, 498, 499]);

    const list = (await http<Progress[]>('GET', `${p.api}/batches`)).body;
    expect(list[0]!.batchId).toBe(b.batchId);
  });

  it('takes JSON lines, counts failures, and keeps each item with its own outcome', async () => {
    const lines = [{ n: 0 }, { n: 1, fail: true }, { n: 2 }].map((x) => JSON.stringify(x)).join('\n');
    const res = await fetch(`${p.api}/batch/echo@1`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: `${lines}\n\n`,
    });
    expect(res.status).toBe(202);
    const { batchId } = (await res.json()) as { batchId: string };
    const b = await finished(batchId);
    expect(b).toMatchObject({ size: 3, done: 2, failed: 1 });
    const items = (await http<{ items: Item[] }>('GET', `${p.api}/batch/${batchId}/results`)).body.items;
    expect(items.map((i) => i.status)).toEqual(['DONE', 'ERROR', 'DONE']);
    expect(items[1]!.error).toContain('item 1 asked to fail');
  });

  it('refuses bad batches with a clear message and starts nothing', async () => {
    const bad = await fetch(`${p.api}/batch/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body: '{"n":1}\n{oops}\n',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/line 2/);
    expect((await http('POST', `${p.api}/batch/echo`, [])).status).toBe(400);
    expect((await http('POST', `${p.api}/batch/echo`, { n: 1 })).status).toBe(400);
    const unknown = await http<{ error: string }>('POST', `${p.api}/batch/nope`, [{}]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatch(/nope/);
    expect((await http('GET', `${p.api}/batch/abcdef`)).status).toBe(404);
  });

  it('keeps a bounded window of live calls instead of creating the whole batch at once', async () => {
    const items = Array.from({ length: 150 }, (_, n) => ({ n, sleepMs: 50 }));
    const { batchId } = (await http<{ batchId: string }>('POST', `${p.api}/batch/echo`, items)).body;
    let widest = 0;
    let b = await progress(batchId);
    while (b.state !== 'finished') {
      widest = Math.max(widest, b.created - b.done - b.failed);
      await new Promise((r) => setTimeout(r, 20));
      b = await progress(batchId);
    }
    // The window is 4 times the cluster's capacity, at least 32: never the 150 at once.
    expect(widest).toBeGreaterThan(0);
    expect(widest).toBeLessThanOrEqual(64);
    expect(b.done).toBe(150);
  });
});

describe('zfaas invoke NAME --batch FILE', () => {
  const zf = (args: string[]) =>
    run(process.execPath, [CLI, '--api', p.api, ...args], { env: { ...process.env, ZFAAS_CONFIG: join(work, 'none.json') } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('runs a JSON array, prints a summary table, exits 0; --json gives every result in order', async () => {
    const file = join(work, 'ok.json');
    await writeFile(file, JSON.stringify(Array.from({ length: 40 }, (_, n) => ({ n }))));
    const table = await zf(['invoke', 'echo', '--batch', file]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^BATCH\s+FUNCTION\s+ITEMS\s+DONE\s+FAILED\s+P50\s+P95\s+CALLS\/S\s+ELAPSED/);
    expect(table.stdout).toMatch(/\secho@1\s+40\s+40\s+0\s/);
    expect(table.stderr).toMatch(/^batch [a-f0-9]+: 40 calls of echo@1/);

    const json = await zf(['invoke', 'echo', '--batch', file, '--json']);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as { batch: Progress; results: Item[] };
    expect(out.batch.done).toBe(40);
    expect(out.results.map((r) => JSON.parse(r.result!).n)).toEqual(Array.from({ length: 40 }, (_, n) => n));
  });

  it('lists the failed items and exits 3 when any call failed (JSON lines)', async () => {
    const file = join(work, 'some-fail.jsonl');
    await writeFile(file, ['{"n":0}', '{"n":1,"fail":true}', '{"n":2}'].join('\n'));
    const r = await zf(['invoke', 'echo', '--batch', file]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/\secho@1\s+3\s+2\s+1\s/);
    expect(r.stdout).toMatch(/^ITEM\s+CALL\s+STATUS\s+ERROR/m);
    expect(r.stdout).toMatch(/^1\s+\d+\s+ERROR\s+.*item 1 asked to fail/m);
  });

  it('shows a progress bar on a terminal', async () => {
    const file = join(work, 'bar.json');
    await writeFile(file, JSON.stringify(Array.from({ length: 30 }, (_, n) => ({ n, sleepMs: 40 }))));
    // `script` gives the CLI a pseudo-terminal, as a person's shell would.
    const cmd = [process.execPath, CLI, '--api', p.api, 'invoke', 'echo', '--batch', file].map((a) => `'${a}'`).join(' ');
    const { stdout } = await run('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, ZFAAS_CONFIG: join(work, 'none.json') } });
    expect(stdout).toMatch(/batch \[[█░]+\] \d+\/30/);
    expect(stdout).toMatch(/echo@1\s+30\s+30\s+0/);
  });

  it('refuses a file that is not JSON, before sending anything', async () => {
    const file = join(work, 'bad.jsonl');
    await writeFile(file, '{"n":1}\nnot json\n');
    const r = await zf(['invoke', 'echo', '--batch', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/line 2: not valid JSON/);
  });
});
