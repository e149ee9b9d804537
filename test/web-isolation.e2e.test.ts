// A public function's web page never acts as the API's origin, in a real browser (Debian's headless
// Chromium, driven by playwright-core, as test/dashboard.e2e.test.ts launches it). The operator's token is
// stored by the dashboard's own form; then a public function's HTML page, whose script tries everything
// a page on the dashboard's origin could do (read the stored token, the cookies, fetch the API with
// credentials, register a service worker for the whole origin, read the dashboard through a popup) and
// whose answer carries Clear-Site-Data and Service-Worker-Allowed, reports what it got in its title. It
// gets nothing, and the dashboard still holds its token, with no service worker. The answers themselves:
// every one of a web path carries the sandbox and nosniff, a CSP of the function's own is kept beside it,
// and the headers that act for the origin are gone. With --functions-port, functions live on an origin
// of their own: the API's answers their paths with a redirect there, and that origin serves nothing else.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, startUp, type Platform } from './helpers/platform.js';

const CHROMIUM = process.env.ZFAAS_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'web-isolation-token-7c1e9a42d0';
const SANDBOX = 'sandbox allow-scripts allow-forms allow-popups';

// What the page tries; each attempt reports its value or the name of the error that stopped it.
const ATTACK = `
(async () => {
  const r = { origin: self.origin };
  const attempt = async (name, f) => { try { r[name] = await f(); } catch (e) { r[name] = 'denied: ' + e.name; } };
  await attempt('storage', () => localStorage.getItem('zfaas.token'));
  await attempt('allStorage', () => JSON.stringify(Object.entries(localStorage)));
  await attempt('cookie', () => document.cookie);
  await attempt('fetch', async () => { const res = await fetch('/whoami', { credentials: 'include' }); return res.status + ' ' + (await res.text()); });
  await attempt('sw', async () => (await navigator.serviceWorker.register('/function/page/sw.js', { scope: '/' })).scope);
  await attempt('popup', () => window.open('/', '_blank').localStorage.getItem('zfaas.token'));
  document.title = 'report:' + JSON.stringify(r);
})();`;

// A public function in Lambda's web form: its page, and a service worker script claiming the whole origin.
const PAGE_FN = `
exports.handler = async (event) => {
  if (event.rawPath === '/sw.js')
    return { statusCode: 200, headers: { 'content-type': 'text/javascript', 'service-worker-allowed': '/' }, body: 'self.onfetch = () => {};' };
  return {
    statusCode: 200,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'clear-site-data': '"storage", "cookies"',
      'service-worker-allowed': '/',
      'strict-transport-security': 'max-age=31536000',
      'x-zfaas-status': 'FORGED',
      'content-security-policy': "sandbox allow-same-origin allow-scripts allow-popups allow-popups-to-escape-sandbox",
      'set-cookie': 'fn=1; Path=/function/page',
      'x-mine': 'kept',
    },
    body: '<!doctype html><title>pending</title><script>' + ${JSON.stringify(ATTACK)} + '</script>',
  };
};`;

interface Report {
  origin: string;
  storage: string | null;
  allStorage: string;
  cookie: string;
  fetch: string;
  sw: string;
  popup: string | null;
}

async function deployPage(p: Platform): Promise<void> {
  const form = new FormData();
  form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': PAGE_FN }))]), 'page.tar.gz');
  for (const [k, v] of Object.entries({ format: 'lambda', handler: 'index.handler', public: 'true', policy: 'function' }))
    form.append(k, v);
  const r = await fetch(`${p.api}/registerFunction/node/page`, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(r.status, await r.text()).toBe(201);
}

// The dashboard, with the operator's token pasted into its form, as a person does: it keeps it.
async function storeToken(page: Page, api: string): Promise<void> {
  await page.goto(`${api}/`);
  await page.locator('#banner').getByText('This API needs a token').waitFor();
  await page.fill('#token', TOKEN);
  await page.click('#token-form button');
  await page.locator('#banner').waitFor({ state: 'hidden' });
  expect(await page.evaluate(() => localStorage.getItem('zfaas.token'))).toBe(TOKEN);
}

async function report(page: Page, url: string): Promise<Report> {
  await page.goto(url);
  await page.waitForFunction(() => document.title.startsWith('report:'), undefined, { timeout: 30_000 });
  return JSON.parse((await page.title()).slice('report:'.length)) as Report;
}

// What the page got: nothing of the origin it was served from.
function expectNothing(r: Report): void {
  expect(r.origin).toBe('null'); // an opaque origin
  expect(r.storage).toMatch(/^denied: SecurityError/);
  expect(r.allStorage).toMatch(/^denied: SecurityError/);
  expect(r.cookie).toMatch(/^denied: SecurityError/);
  expect(r.fetch).toMatch(/^denied: TypeError/); // cross-origin now, and the API allows no such read
  expect(r.sw).toMatch(/^denied: /);
  expect(JSON.stringify(r)).not.toContain(TOKEN);
  // A popup it opens (if the browser lets it) is sandboxed as it is, or refused outright.
  expect(r.popup === null || /^denied: (SecurityError|TypeError)/.test(r.popup)).toBe(true);
}

async function stillHoldsToken(page: Page, api: string): Promise<void> {
  await page.goto(`${api}/`);
  expect(await page.evaluate(() => localStorage.getItem('zfaas.token'))).toBe(TOKEN);
  expect(await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length)).toBe(0);
  await page.locator('#banner').waitFor({ state: 'hidden' });
}

describe.skipIf(!existsSync(CHROMIUM) && !process.env.CI)("a function's web page in a browser", () => {
  let browser: Browser;
  const opened: Platform[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  afterAll(async () => {
    await browser?.close();
    for (const p of opened) await p.stop();
  });

  describe("on the API's own origin", () => {
    let p: Platform;
    beforeAll(async () => {
      p = await startUp(['--miniworkers', '1', '--policy', 'function'], { ZFAAS_TOKEN: TOKEN });
      opened.push(p);
      await deployPage(p);
    });

    it('cannot read the stored token, fetch the API, register a service worker or clear the storage', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await storeToken(page, p.api);
      expectNothing(await report(page, `${p.api}/function/page`));
      expectNothing(await report(page, `${p.api}/ns/default/function/page/deeper?x=1`));
      await stillHoldsToken(page, p.api);
      await context.close();
    });

    it('answers every web path sandboxed, nosniff, with the function’s own policy beside it and the origin-wide headers gone', async () => {
      const r = await fetch(`${p.api}/function/page`);
      expect(r.status).toBe(200);
      const csp = r.headers.get('content-security-policy') ?? '';
      expect(csp.split(', ')).toEqual(['sandbox allow-same-origin allow-scripts allow-popups allow-popups-to-escape-sandbox', SANDBOX]);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      for (const gone of ['clear-site-data', 'service-worker-allowed', 'strict-transport-security']) expect(r.headers.get(gone)).toBeNull();
      expect(r.headers.get('x-zfaas-status')).toBe('DONE'); // the platform's, not the function's
      expect(r.headers.get('x-mine')).toBe('kept');
      expect(r.headers.get('set-cookie')).toBe('fn=1; Path=/function/page');
      // The record keeps none of them either.
      const call = (await (
        await fetch(`${p.api}/call/${r.headers.get('x-zfaas-call')}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).json()) as {
        response: { headers: Record<string, unknown> };
      };
      expect(Object.keys(call.response.headers)).not.toContain('clear-site-data');
      expect(Object.keys(call.response.headers)).not.toContain('x-zfaas-status');
      // The platform's own answers on a web path too: a function that does not exist, a refusal.
      for (const path of ['/function/nope', '/ns/default/function/nope/x']) {
        const e = await fetch(`${p.api}${path}`);
        expect(e.status).toBe(401);
        expect(e.headers.get('content-security-policy')).toBe(SANDBOX);
        expect(e.headers.get('x-content-type-options')).toBe('nosniff');
      }
    });
  });

  describe('on an origin of their own (--functions-port)', () => {
    let p: Platform;
    let fport: number;
    let functions: string;
    beforeAll(async () => {
      fport = await freePort();
      functions = `http://127.0.0.1:${fport}`;
      p = await startUp(['--miniworkers', '1', '--policy', 'function', '--functions-port', String(fport)], { ZFAAS_TOKEN: TOKEN });
      opened.push(p);
      await deployPage(p);
    });

    it("the API's origin sends function paths there, and that origin serves functions only", async () => {
      const moved = await fetch(`${p.api}/function/page/a%20b?x=1`, { redirect: 'manual', method: 'POST', body: '{}' });
      expect(moved.status).toBe(308);
      expect(moved.headers.get('location')).toBe(`${functions}/function/page/a%20b?x=1`);
      expect(moved.headers.get('content-security-policy')).toBe(SANDBOX);
      const there = await fetch(`${functions}/function/page`);
      expect(there.status).toBe(200);
      expect(there.headers.get('content-security-policy')).toContain(SANDBOX);
      const ns = await fetch(`${functions}/ns/default/function/page`);
      expect(ns.status).toBe(200);
      for (const path of ['/', '/functions', '/whoami', '/health', '/ui/app.js']) {
        const r = await fetch(`${functions}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
        expect(r.status, path).toBe(404);
      }
      // A private function there still needs the token.
      expect((await fetch(`${functions}/function/nope`)).status).toBe(401);
    });

    it('a page followed there from the dashboard’s origin gets nothing of it', async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      await storeToken(page, p.api);
      const r = await report(page, `${p.api}/function/page`);
      expect(page.url()).toBe(`${functions}/function/page`);
      expectNothing(r);
      await stillHoldsToken(page, p.api);
      await context.close();
    });
  });
});
