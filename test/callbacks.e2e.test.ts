// Callbacks of calls, against the real services (`zfaas up`, its default allow-list: loopback only): a
// receiver on loopback that answers 500 to its first two deliveries gets the third, and the call's record
// keeps all three; the record POSTed is the call as GET /call/N answers it, with headers naming the call
// and its status; an ERROR call is delivered too, its URL given in the X-Callback-Url header; a target
// outside the allow-list and a malformed URL are refused with 400 naming the field, and no call is made.
// ZFAAS_CALLBACK_BACKOFF_MS=200 shortens the first step of the retry schedule (1 s by default) for speed.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { startUp, upload, waitFor, type CallView, type Platform } from './helpers/platform.js';

interface Got {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

interface CallbackView {
  url: string;
  state: string;
  deliveries: { at: string; status?: number; error?: string }[];
}
type CallRecord = CallView & { callback?: CallbackView; params: unknown };

let p: Platform;
let receiver: Server;
let hooks: string; // the receiver's base URL
const got: Got[] = [];
const answered = new Map<string, number>(); // deliveries per path

// /flaky answers 500 to its first two deliveries, then 200; any other path 200 at once.
beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      got.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() });
      const n = (answered.get(path) ?? 0) + 1;
      answered.set(path, n);
      res.statusCode = path.startsWith('/flaky') && n <= 2 ? 500 : 200;
      res.end(res.statusCode === 200 ? 'thanks' : 'not now');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hooks = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  p = await startUp([], { ZFAAS_CALLBACK_BACKOFF_MS: '200' });
  const source = "module.exports = async (p) => { if (p.fail) throw new Error('asked to fail'); return { n: p.n }; };";
  const r = await upload(`${p.api}/registerFunction/node/cb`, await packFiles({ 'index.js': source }), 'cb.tar.gz');
  expect(r.status).toBe(201);
});

afterAll(async () => {
  await p?.stop();
  receiver?.closeAllConnections();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});

async function invoke(
  body: object,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: CallRecord & { error?: string } }> {
  const r = await fetch(`${p.api}/invokeFunction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as CallRecord & { error?: string } };
}

const getCall = async (n: number): Promise<CallRecord> => (await (await fetch(`${p.api}/call/${n}`)).json()) as CallRecord;

// The call's record once its callback ended (delivered or failed).
const callbackEnded = (n: number): Promise<CallRecord> =>
  waitFor(
    `call ${n}'s callback to end`,
    async () => {
      const c = await getCall(n);
      return c.callback?.state === 'delivered' || c.callback?.state === 'failed' ? c : undefined;
    },
    60_000,
    p.proc,
  );

const callCount = async (): Promise<number> => Object.keys((await (await fetch(`${p.api}/calls`)).json()) as object).length;

it('delivers a DONE call on the third try after two 500s, and keeps every try on the call', async () => {
  const accepted = await invoke({ funcName: 'cb', params: { n: 1 }, callbackUrl: `${hooks}/flaky/1?k=v` });
  expect(accepted.status).toBe(202);
  expect(accepted.body.callback).toMatchObject({ url: `${hooks}/flaky/1?k=v`, state: 'waiting', deliveries: [] });
  const n = accepted.body.callNum;

  const call = await callbackEnded(n);
  expect(call.status).toBe('DONE');
  expect(call.callback).toMatchObject({ state: 'delivered', url: `${hooks}/flaky/1?k=v` });
  expect(call.callback!.deliveries.map((d) => d.status)).toEqual([500, 500, 200]);
  expect(call.callback!.deliveries.every((d) => !Number.isNaN(Date.parse(d.at)))).toBe(true);

  const mine = got.filter((g) => g.path === '/flaky/1?k=v');
  expect(mine).toHaveLength(3);
  expect(mine.map((g) => g.headers['x-zfaas-delivery'])).toEqual(['1', '2', '3']);
  // backed off: about 200 ms, then about 400 ms (the first step shortened for the test)
  expect(mine[1]!.at - mine[0]!.at).toBeGreaterThanOrEqual(150);
  expect(mine[2]!.at - mine[1]!.at).toBeGreaterThanOrEqual(350);
  for (const g of mine) {
    expect(g.headers).toMatchObject({
      'content-type': 'application/json',
      'x-zfaas-call': String(n),
      'x-zfaas-status': 'DONE',
      'x-zfaas-function': 'cb',
      'x-call-id': String(n),
      'x-function-name': 'cb',
      'x-function-status': '200',
    });
    expect(g.headers['x-duration-seconds']).toMatch(/^\d+\.\d{6}$/);
  }
  // The body is the call's record as GET /call/N answered it when that try was made: all of it, its
  // callback as it stood then (pending, the earlier tries kept).
  const sent = JSON.parse(mine[2]!.body) as CallRecord;
  const { callback: sentCallback, ...sentRest } = sent;
  const { callback: _final, ...finalRest } = call;
  expect(sentRest).toEqual(finalRest);
  expect(sent).toMatchObject({ callNum: n, status: 'DONE', result: JSON.stringify({ n: 1 }), params: { n: 1 } });
  expect(sentCallback).toMatchObject({ state: 'pending', deliveries: [{ status: 500 }, { status: 500 }] });
});

it('delivers an ERROR call too, its URL taken from the X-Callback-Url header', async () => {
  const accepted = await invoke({ funcName: 'cb', params: { fail: true } }, { 'X-Callback-Url': `${hooks}/errors` });
  expect(accepted.status).toBe(202);
  const n = accepted.body.callNum;
  const call = await callbackEnded(n);
  expect(call.status).toBe('ERROR');
  expect(call.error).toMatch(/asked to fail/);
  expect(call.callback).toMatchObject({ state: 'delivered', url: `${hooks}/errors`, deliveries: [{ status: 200 }] });
  const mine = got.filter((g) => g.path === '/errors');
  expect(mine).toHaveLength(1);
  expect(mine[0]!.headers).toMatchObject({ 'x-zfaas-call': String(n), 'x-zfaas-status': 'ERROR', 'x-function-status': '500' });
  expect(JSON.parse(mine[0]!.body)).toMatchObject({ callNum: n, status: 'ERROR', error: call.error });
});

it('takes the header and the field together when they agree, and refuses them when they differ', async () => {
  const same = await invoke({ funcName: 'cb', params: { n: 3 }, callbackUrl: `${hooks}/both` }, { 'X-Callback-Url': `${hooks}/both` });
  expect(same.status).toBe(202);
  expect((await callbackEnded(same.body.callNum)).callback).toMatchObject({ state: 'delivered', deliveries: [{ status: 200 }] });
  const before = await callCount();
  const differ = await invoke({ funcName: 'cb', params: { n: 3 }, callbackUrl: `${hooks}/a` }, { 'X-Callback-Url': `${hooks}/b` });
  expect(differ.status).toBe(400);
  expect(differ.body.error).toMatch(/X-Callback-Url header and the callbackUrl field differ/);
  expect(await callCount()).toBe(before);
});

it('refuses a target outside the allow-list and a malformed URL with 400 naming the field, and makes no call', async () => {
  const before = await callCount();
  const delivered = got.length;
  const outside = ['http://10.1.2.3/x', 'http://example.com/', 'http://169.254.169.254/latest/meta-data/', 'http://0.0.0.0:3000/'];
  for (const url of outside) {
    const field = await invoke({ funcName: 'cb', params: {}, callbackUrl: url });
    expect(field.status, url).toBe(400);
    expect(field.body.error, url).toMatch(/^invalid callbackUrl: host ".*" \(port \d+\) is not in this API's callback allow-list/);
    const header = await invoke({ funcName: 'cb', params: {} }, { 'X-Callback-Url': url });
    expect(header.status, url).toBe(400);
    expect(header.body.error, url).toMatch(/^invalid X-Callback-Url header: host .* is not in this API's callback allow-list/);
  }
  const malformed: [string, RegExp][] = [
    ['ftp://127.0.0.1/x', /must be an http or https URL, not "ftp"/],
    ['http://user:pw@127.0.0.1/', /must not carry credentials/],
    ['not a url', /must be an absolute http or https URL/],
    [`http://127.0.0.1/${'x'.repeat(2048)}`, /at most 2048 characters/],
  ];
  for (const [url, why] of malformed) {
    const field = await invoke({ funcName: 'cb', params: {}, callbackUrl: url });
    expect(field.status, url).toBe(400);
    expect(field.body.error, url).toMatch(/^invalid callbackUrl: /);
    expect(field.body.error, url).toMatch(why);
  }
  const header = await invoke({ funcName: 'cb', params: {} }, { 'X-Callback-Url': 'ftp://127.0.0.1/x' });
  expect(header.status).toBe(400);
  expect(header.body.error).toMatch(/^invalid X-Callback-Url header: must be an http or https URL/);
  const notString = await invoke({ funcName: 'cb', params: {}, callbackUrl: 42 });
  expect(notString.status).toBe(400);
  expect(notString.body.error).toMatch(/callbackUrl/);

  expect(await callCount()).toBe(before);
  expect(got.length).toBe(delivered);
});
