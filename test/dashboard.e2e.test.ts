// The web dashboard (issue 7 item 1) in headless Chromium (Debian's, driven by playwright-core), against
// a platform that requires a token: the page loads and asks for it, shows nodes, functions and runtimes,
// an invoke from the form shows its result, calls appear live, and a running batch updates.
// Screenshots of each view go to $ZFAAS_SCREENSHOTS when set (the README's come from
// `ZFAAS_SCREENSHOTS=docs/screenshots npx vitest run test/dashboard.e2e.test.ts`), else to a temp folder.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { ROOT, startUp, tempDir, waitFor, type Platform } from './helpers/platform.js';

const CHROMIUM = process.env.ZFAAS_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token-42';

let p: Platform;
let browser: Browser;
let page: Page;
let shots: string;
const pageErrors: string[] = [];

const authed = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${p.api}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(init.body && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  });

async function deploy(name: string, code: string, policy = 'function'): Promise<void> {
  const form = new FormData();
  form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': code }))]), `${name}.tar.gz`);
  form.append('policy', policy);
  expect((await authed(`/registerFunction/node/${name}`, { method: 'POST', body: form })).status).toBe(201);
}

const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
const text = (sel: string): Promise<string> => page.locator(sel).innerText();

// Chromium is installed by scripts/ensure-chromium.sh (npm test); without it, and outside CI, skip.
describe.skipIf(!existsSync(CHROMIUM) && !process.env.CI)('the dashboard in a browser', () => {
  beforeAll(async () => {
    shots = process.env.ZFAAS_SCREENSHOTS ? resolve(ROOT, process.env.ZFAAS_SCREENSHOTS) : await tempDir('zfaas-shots-');
    await mkdir(shots, { recursive: true });
    p = await startUp(['--miniworkers', '2', '--policy', 'function'], { ZFAAS_TOKEN: TOKEN });
    await deploy('greet', "module.exports = (p) => { console.log('greeting', p.name); return { hello: p.name || 'world' }; };");
    await deploy(
      'square',
      'module.exports = async (p) => { await new Promise((r) => setTimeout(r, 25)); if (p.n % 50 === 7) throw new Error(`no square for ${p.n}`); return p.n * p.n; };',
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await p?.stop();
    if (!process.env.ZFAAS_SCREENSHOTS && shots) await rm(shots, { recursive: true, force: true });
  });

  it('loads, asks for the token, then shows nodes, functions and runtimes', async () => {
    await page.goto(`${p.api}/`);
    expect(await page.title()).toBe('zfaas dashboard');
    await page.locator('#banner').getByText('This API needs a token').waitFor();
    await page.fill('#token', TOKEN);
    await page.click('#token-form button');
    await page.locator('#banner').waitFor({ state: 'hidden' });
    const node = ((await (await authed('/nodes')).json()) as { id: string }[])[0]!.id;
    await page.locator('#nodes-table').getByText(node).waitFor();
    expect(await text('#nodes-table')).toContain('alive');
    await page.locator('#functions-table').getByText('square').waitFor();
    expect(await text('#functions-table')).toMatch(/greet\s+node\s+v1 of 1\s+function/);
    expect(await text('#runtimes-table')).toMatch(/python/);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    // The token stays in this browser: a reload needs no pasting.
    await page.reload();
    await page.locator('#functions-table').getByText('greet').waitFor();
    expect(await page.locator('#banner').isHidden()).toBe(true);
  });

  it('invokes a function from the form and shows its result and logs', async () => {
    await page.goto(`${p.api}/#invoke`);
    await page.selectOption('#invoke-fn', 'greet');
    await page.fill('#invoke-params', '{"name": "ana"}');
    await page.click('#invoke-go');
    await page.locator('#invoke-output').waitFor();
    expect(JSON.parse(await text('#invoke-output'))).toEqual({ hello: 'ana' });
    expect(await text('#invoke-result')).toContain('DONE');
    expect(await text('#invoke-result')).toContain('greeting ana');
    await page.fill('#invoke-params', '{not json');
    await page.click('#invoke-go');
    expect(await text('#invoke-hint')).toMatch(/not valid JSON/);
    await page.fill('#invoke-params', '{"name": "ana"}');
    await page.click('#invoke-go');
    await page.locator('#invoke-hint', { hasText: 'answered in' }).waitFor();
    await shot('invoke');
  });

  it('shows calls live as they are accepted and finish, and one call whole', async () => {
    await page.goto(`${p.api}/#calls`);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    const r = await authed('/invokeFunction', {
      method: 'POST',
      body: JSON.stringify({ funcName: 'greet', params: { name: 'live-bo' }, wait: true }),
    });
    const { callNum } = (await r.json()) as { callNum: number };
    const row = page.locator(`#calls-table tr[data-call="${callNum}"]`);
    await row.getByText('DONE').waitFor(); // no reload: it came over GET /events
    expect(await row.innerText()).toContain('{"hello":"live-bo"}');
    await row.click();
    await page.locator('#call-detail').getByText('greeting live-bo').waitFor();
  });

  it('runs a batch from the page and updates its progress while it runs', async () => {
    await page.goto(`${p.api}/#batches`);
    await page.selectOption('#batch-fn', 'square');
    await page.fill('#batch-count', '300');
    await page.fill('#batch-template', '{"n": $i}');
    await page.click('#batch-generate');
    expect((await page.inputValue('#batch-items')).split('\n')).toHaveLength(300);
    await page.click('#batch-go');
    await page.locator('#batch-state', { hasText: 'running' }).waitFor();
    // Sample the done count as the page shows it: it must move while the batch runs.
    const seen = new Set<string>();
    await waitFor(
      'the batch to finish on the page',
      async () => {
        const tiles = await text('#batch-stats');
        seen.add(/(\d+)\s*done/.exec(tiles)?.[1] ?? '');
        return (await text('#batch-state')) === 'finished' ? true : undefined;
      },
      60_000,
    );
    expect(seen.size).toBeGreaterThan(2);
    const stats = await text('#batch-stats');
    expect(stats).toMatch(/300\s*items/);
    expect(stats).toMatch(/294\s*done/);
    expect(stats).toMatch(/6\s*failed/);
    expect(stats).toMatch(/calls \/ s/);
    await page.locator('#batch-results').getByText('no square for 7').waitFor();
    expect(await text('#batches-table')).toMatch(/square@1\s+finished\s+294\s+6\s+300/);
    await shot('batches');
  });

  it('the overview and the calls show what ran: per-function calls, failures and latency', async () => {
    await page.goto(`${p.api}/#overview`);
    await page.locator('#functions-table').getByText('square').waitFor();
    await waitFor(
      'warm containers on the node',
      async () => ((await text('#nodes-table')).includes('square@1') ? true : undefined),
      15_000,
    );
    // Refreshed every 2 s: wait for the counts of the finished batch.
    const row = /square\s+node\s+v1 of 1\s+function\s+30 s · 256 MiB\s+300\s+6\s+\d/;
    await waitFor('the batch in the functions table', async () => (row.test(await text('#functions-table')) ? true : undefined), 15_000);
    await shot('overview');
    // The calls view after the batch, with a failed call opened.
    await page.goto(`${p.api}/#calls`);
    await page
      .locator('#calls-table tr.clickable', { has: page.locator('.badge.s-error') })
      .first()
      .click();
    await page
      .locator('#call-detail')
      .getByText(/no square for \d+/)
      .first()
      .waitFor();
    await shot('calls');
    expect(pageErrors).toEqual([]);
  });
});
