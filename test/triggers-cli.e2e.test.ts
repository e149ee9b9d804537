// A broker trigger driven the way a person does it: the built CLI adds it (zfaas trigger add), messages
// published to a real redis-server make their calls, `zfaas trigger list` and the dashboard's Triggers view
// (headless Chromium) show its counts, and the CLI pauses, resumes and removes it.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { missingBroker, startBroker, type RunningBroker } from './helpers/brokers.js';
import { publish } from './helpers/publish.js';
import { http, ROOT, startUp, upload, waitFor, zfaas, type Platform } from './helpers/platform.js';

const CHROMIUM = process.env.ZFAAS_CHROMIUM ?? '/usr/bin/chromium';
const missing = missingBroker('redis');
let p: Platform;
let broker: RunningBroker;
let browser: Browser | undefined;

// The built CLI against this platform: its exit code and output.
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const proc = zfaas([...args, '--api', p.api]);
  const code = await new Promise<number | null>((r) => proc.child.once('exit', (c) => r(c)));
  return { code, out: proc.output() };
}

beforeAll(async () => {
  if (missing) return;
  broker = await startBroker('redis');
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TRIGGER_LEASE_MS: '2000', ZFAAS_TRIGGER_SYNC_MS: '300' });
  let runtime = 'node';
  // ZFAAS_TEST_NODE_IMAGE: as in triggers.e2e.test.ts, the functions' image when this checkout's loader differs.
  if (process.env.ZFAAS_TEST_NODE_IMAGE) {
    const def = JSON.parse(await readFile(join(ROOT, 'runtimes', 'node', 'runtime.json'), 'utf8')) as Record<string, unknown>;
    runtime = 'node-under-test';
    expect(
      (await http('POST', `${p.api}/registerRuntime`, { ...def, name: runtime, image: process.env.ZFAAS_TEST_NODE_IMAGE })).status,
    ).toBe(201);
  }
  const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ got: p.body.n });' });
  expect((await upload(`${p.api}/registerFunction/${runtime}/orders`, arc, 'orders.tar.gz')).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await p?.stop();
  await broker?.dispose();
});

it.skipIf(missing)(
  'is added, shown with its counts, paused, resumed and removed from the CLI, and shown in the dashboard',
  async () => {
    const add = await cli([
      'trigger',
      'add',
      'orders',
      '--type',
      'redis',
      '--url',
      broker.url,
      '--source',
      'orders',
      '--in-flight',
      '2',
      '--json',
    ]);
    expect(add.code, add.out).toBe(0);
    const id = (JSON.parse(add.out) as { id: string }).id;
    const bad = await cli(['trigger', 'add', 'orders', '--type', 'kafka', '--url', 'kafka://127.0.0.1:1', '--source', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--type must be one of nats, mqtt, amqp, redis/);

    await publish(
      'redis',
      broker.url,
      'orders',
      [1, 2, 3, 4, 5].map((n) => ({ id: String(n), body: JSON.stringify({ n }) })),
    );
    const listed = await waitFor(
      'the trigger counting five messages done',
      async () => {
        const r = await cli(['trigger', 'list', 'orders']);
        return r.out.includes('5 done, 0 failed, 0 in flight') ? r.out : undefined;
      },
      60_000,
    );
    expect(listed).toMatch(new RegExp(`${id}.*redis.*orders.*connected`));

    if (existsSync(CHROMIUM)) {
      browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      const page = await browser.newPage();
      await page.goto(`${p.api}/#triggers`);
      const row = page.locator(`#triggers-table tr[data-trigger="${id}"]`);
      await row.waitFor({ timeout: 30_000 });
      expect(await row.getAttribute('data-state')).toBe('connected');
      expect(await row.locator('td[data-count="delivered"]').textContent()).toBe('5');
      expect(await row.locator('td[data-count="failed"]').textContent()).toBe('0');
    }

    const paused = await cli(['trigger', 'pause', 'orders', id]);
    expect(paused.out).toContain(`paused trigger ${id} of orders`);
    expect((await cli(['trigger', 'list', 'orders'])).out).toMatch(/paused/);
    expect((await cli(['trigger', 'resume', 'orders', id])).out).toContain(`resumed trigger ${id} of orders`);
    expect((await cli(['trigger', 'rm', 'orders', id])).out).toContain(`removed trigger ${id} of orders`);
    expect((await cli(['trigger', 'list', 'orders'])).out).toContain('no triggers for orders');
    const calls = (await http<{ params: { body: { n: number } }; status: string }[]>('GET', `${p.api}/calls?funcName=orders&format=list`))
      .body;
    expect(calls.map((c) => c.params.body.n).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(calls.every((c) => c.status === 'DONE')).toBe(true);
  },
  180_000,
);
