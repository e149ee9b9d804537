// The web dashboard in headless Chromium (Debian's, driven by playwright-core), against
// a platform that requires a token: the page loads and asks for it, shows nodes, functions and runtimes,
// an invoke from the form shows its result, calls appear live (over a stream opened with a one-use ticket:
// the token is in no URL the page asks for), and a running batch updates.
// Then the views of the last hour's charts, schedules, callback deliveries and dead letters show real data,
// a dead letter's Replay button makes a replay and Dismiss takes one off the list (each asking first).
// A namespace's key pasted as the token shows its namespace and role, only its functions, no nodes, and
// (for an admin) a Secrets view that never shows a value.
// Screenshots of each view go to $ZFAAS_SCREENSHOTS when set (the README's come from
// `ZFAAS_SCREENSHOTS=docs/screenshots npx vitest run test/dashboard.e2e.test.ts`), else to a temp folder.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, ROOT, startUp, tempDir, waitFor, type Platform } from './helpers/platform.js';

const CHROMIUM = process.env.ZFAAS_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'dashboard-test-token-42';

let p: Platform;
let browser: Browser;
let page: Page;
let shots: string;
const pageErrors: string[] = [];
const urls: string[] = []; // every URL the page asked for
let receiver: Server; // answers callbacks with 204
const received: number[] = []; // the calls whose callback it got

const authed = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${p.api}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${TOKEN}`,
      ...(init.body && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  });

async function deploy(name: string, code: string, policy = 'function', fields: Record<string, string> = {}): Promise<void> {
  const form = new FormData();
  form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': code }))]), `${name}.tar.gz`);
  form.append('policy', policy);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
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
    // Fails every run, with markup in its error (shown as text, never as markup); retried once.
    await deploy('doomed', "module.exports = (p) => { throw new Error('<b>bold</b> failed ' + p.n); };", 'function', {
      retries: '1',
      retryBackoff: '100ms',
    });
    receiver = createServer((req, res) => {
      received.push(Number(req.headers['x-zfaas-call']));
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('request', (r) => void urls.push(r.url()));
  });

  afterAll(async () => {
    receiver?.close();
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
    // The stream was opened with a one-use ticket: the token was never in a URL (histories, logs).
    expect(urls.some((u) => /\/events\?ticket=[A-Za-z0-9_-]+$/.test(u))).toBe(true);
    expect(urls.filter((u) => u.includes(TOKEN))).toEqual([]);
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

  it('shows the last hour per function: calls per minute and p50/p95 latency, as charts', async () => {
    await page.goto(`${p.api}/#charts`);
    const square = page.locator('#charts .chart-card[data-fn="square"]');
    await square.locator('canvas').first().waitFor();
    expect(await square.locator('.chart[data-kind="calls"] canvas').count()).toBeGreaterThan(0);
    expect(await square.locator('.chart[data-kind="latency"] canvas').count()).toBeGreaterThan(0);
    expect(await square.locator('h3').innerText()).toMatch(/square\s+300 calls · 6 failed in the hour · worst minute p95 \d/);
    expect(await square.innerText()).toMatch(/calls \/ min/);
    expect(await square.innerText()).toMatch(/p95/);
    await page.locator('#charts .chart-card[data-fn="greet"]').waitFor();
    expect(await page.locator('#charts-note').isHidden()).toBe(true);
    await shot('charts');
  });

  it('shows every schedule with its next and last run', async () => {
    const r = await authed('/functions/greet/schedules', {
      method: 'POST',
      body: JSON.stringify({ cron: '*/2 * * * * *', params: { name: 'cron' } }),
    });
    expect(r.status).toBe(201);
    const { id } = (await r.json()) as { id: string };
    try {
      const last = await waitFor('the schedule to fire', async () => {
        const list = (await (await authed('/functions/greet/schedules')).json()) as { id: string; lastRun?: { callNum: number } }[];
        return list.find((s) => s.id === id)?.lastRun;
      });
      await page.goto(`${p.api}/#schedules`);
      const row = page.locator(`#schedules-table tr[data-schedule="${id}"]`);
      await row.waitFor();
      const cells = await row.innerText();
      expect(cells).toMatch(/greet\s+\*\/2 \* \* \* \* \*\s+UTC\s+skip/);
      expect(cells).toContain('{"name":"cron"}');
      expect(cells).toMatch(/in \ds|now/); // the next run
      await row.getByText(/call \d+/).waitFor();
      expect(Number(/call (\d+)/.exec(await row.innerText())![1])).toBeGreaterThanOrEqual(last.callNum);
      await shot('schedules');
    } finally {
      expect((await authed(`/functions/greet/schedules/${id}`, { method: 'DELETE' })).status).toBe(200);
    }
    await page.locator(`#schedules-table tr[data-schedule="${id}"]`).waitFor({ state: 'detached' });
  });

  it('shows recent callback deliveries: state, tries and the last answer', async () => {
    const port = (receiver.address() as AddressInfo).port;
    const invoke = async (callbackUrl: string): Promise<number> => {
      const r = await authed('/invokeFunction', {
        method: 'POST',
        body: JSON.stringify({ funcName: 'greet', params: { name: 'cb' }, callbackUrl }),
      });
      expect(r.status, await r.clone().text()).toBe(202);
      return ((await r.json()) as { callNum: number }).callNum;
    };
    const ok = await invoke(`http://127.0.0.1:${port}/hook?from=dashboard`);
    const refused = await invoke(`http://127.0.0.1:${await freePort()}/nobody-listens`);
    await waitFor('the callback to arrive', async () => (received.includes(ok) ? true : undefined));
    await page.goto(`${p.api}/#callbacks`);
    const delivered = page.locator(`#callbacks-table tr[data-call="${ok}"]`);
    await delivered.getByText('delivered').waitFor();
    expect(await delivered.innerText()).toMatch(/greet@1\s+DONE\s+delivered\s+1\s+HTTP 204/);
    expect(await delivered.innerText()).toContain(`127.0.0.1:${port}/hook`);
    const failing = page.locator(`#callbacks-table tr[data-call="${refused}"]`);
    await failing.getByText(/pending|failed/).waitFor({ timeout: 15_000 });
    await waitFor('a failed try on the page', async () => (/pending\s+[1-9]/.test(await failing.innerText()) ? true : undefined), 15_000);
    expect(await page.locator('#callbacks-note').innerText()).toMatch(/with a callback URL/);
    await shot('callbacks');
  });

  it('lists dead letters; Replay (once confirmed) makes a replay, Dismiss takes one off the list', async () => {
    const fail = async (n: number): Promise<number> => {
      const r = await authed('/invokeFunction', { method: 'POST', body: JSON.stringify({ funcName: 'doomed', params: { n } }) });
      return ((await r.json()) as { callNum: number }).callNum;
    };
    const [a, b] = [await fail(1), await fail(2)];
    await waitFor('both dead letters', async () => {
      const list = (await (await authed('/dead-letters')).json()) as { callNum: number }[];
      return [a, b].every((n) => list.some((c) => c.callNum === n)) ? true : undefined;
    });
    await page.goto(`${p.api}/#dead-letters`);
    const rowA = page.locator(`#dead-letters-table tr[data-call="${a}"]`);
    await rowA.waitFor();
    expect(await rowA.innerText()).toMatch(/doomed@1\s+ERROR\s+2\s+.*<b>bold<\/b> failed 1/);
    expect(await page.locator('#dead-letters-table b').count()).toBe(0); // the error is text, not markup

    // Asked first: cancelling does nothing.
    page.once('dialog', (d) => void d.dismiss());
    await rowA.locator('button[data-action="replay"]').click();
    await page.waitForTimeout(300);
    expect(((await (await authed(`/call/${a}`)).json()) as { deadLetter?: string }).deadLetter).toBe('listed');

    let question = '';
    page.once('dialog', (d) => {
      question = d.message();
      void d.accept();
    });
    await rowA.locator('button[data-action="replay"]').click();
    await page.locator('#dead-letters-done', { hasText: `call ${a} replayed as call` }).waitFor();
    expect(question).toMatch(new RegExp(`^Replay call ${a} of doomed@1\\?`));
    const replay = Number(/replayed as call (\d+)/.exec(await text('#dead-letters-done'))![1]);
    const original = (await (await authed(`/call/${a}`)).json()) as { deadLetter?: string; replayedAs?: number };
    expect(original).toMatchObject({ deadLetter: 'replayed', replayedAs: replay });
    expect(((await (await authed(`/call/${replay}`)).json()) as { replayOf?: number }).replayOf).toBe(a);
    await rowA.waitFor({ state: 'detached' });

    page.once('dialog', (d) => void d.accept());
    await page.locator(`#dead-letters-table tr[data-call="${b}"] button[data-action="dismiss"]`).click();
    await page.locator('#dead-letters-done', { hasText: `call ${b} dismissed` }).waitFor();
    expect(((await (await authed(`/call/${b}`)).json()) as { deadLetter?: string }).deadLetter).toBe('dismissed');
    await page.locator(`#dead-letters-table tr[data-call="${b}"]`).waitFor({ state: 'detached' });
    await shot('dead-letters');
    expect(pageErrors).toEqual([]);
  });

  it('takes a namespace key as it takes the token: shows its namespace and role, only its functions and the views it may use', async () => {
    expect((await authed('/namespaces', { method: 'POST', body: JSON.stringify({ name: 'team-ui' }) })).status).toBe(201);
    const keyOf = async (role: string): Promise<string> => {
      const r = await authed('/namespaces/team-ui/keys', { method: 'POST', body: JSON.stringify({ role }) });
      expect(r.status).toBe(201);
      return ((await r.json()) as { key: string }).key;
    };
    const [dev, admin] = [await keyOf('developer'), await keyOf('admin')];
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': 'module.exports = () => 1;' }))]), 'ui-only.tar.gz');
    const deployed = await fetch(`${p.api}/registerFunction/node/ui-only`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${dev}` },
    });
    expect(deployed.status).toBe(201);

    const login = async (t: string): Promise<void> => {
      await page.goto(`${p.api}/#overview`);
      await page.fill('#token', t);
      await page.click('#token-form button');
    };
    await login(dev);
    await page.locator('#who', { hasText: 'team-ui · developer' }).waitFor();
    await page.locator('#functions-table').getByText('ui-only').waitFor();
    expect(await text('#functions-table')).not.toContain('greet'); // the default namespace's
    expect(await page.locator('#nodes-card').isHidden()).toBe(true); // the operator's
    expect(await page.locator('#tabs a[data-view="secrets"]').isHidden()).toBe(true); // an admin's
    expect(await page.locator('#banner').isHidden()).toBe(true);

    // An admin key manages the namespace's secrets; a value is never shown.
    await login(admin);
    await page.locator('#who', { hasText: 'team-ui · admin' }).waitFor();
    await page.goto(`${p.api}/#secrets`);
    await page.fill('#secret-name', 'ui-secret');
    await page.fill('#secret-value', 'value-never-shown-42');
    await page.click('#secret-create');
    await page.locator('#secrets-done', { hasText: 'secret ui-secret created' }).waitFor();
    await page.locator('#secrets-table tr[data-secret="ui-secret"]').waitFor();
    expect(await page.inputValue('#secret-value')).toBe('');
    expect(await page.content()).not.toContain('value-never-shown-42');
    page.once('dialog', (d) => void d.accept());
    await page.locator('#secrets-table tr[data-secret="ui-secret"] button[data-action="delete"]').click();
    await page.locator('#secrets-table tr[data-secret="ui-secret"]').waitFor({ state: 'detached' });

    // The operator token again: the nodes come back.
    await login(TOKEN);
    await page.locator('#who', { hasText: 'default · operator' }).waitFor();
    expect(await page.locator('#nodes-card').isVisible()).toBe(true);
    for (const secret of [TOKEN, dev, admin]) expect(urls.filter((u) => u.includes(secret))).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
