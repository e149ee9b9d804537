// The REST API's bearer token: required beyond loopback, checked on every route, never taken from a URL.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort, startUp, tempDir, zfaas, type Platform } from './helpers/platform.js';
import { rm } from 'node:fs/promises';

let p: Platform;
const TOKEN = 'test-token-0123456789';

beforeAll(async () => {
  p = await startUp(['--miniworkers', '1'], { ZFAAS_TOKEN: TOKEN });
});
afterAll(async () => p?.stop());

const get = (path: string, headers: Record<string, string> = {}): Promise<Response> => fetch(`${p.api}${path}`, { headers });

it('refuses requests without the token or with a wrong one, and answers with it', async () => {
  const none = await get('/functions');
  expect(none.status).toBe(401);
  expect(((await none.json()) as { error: string }).error).toMatch(/token/);
  expect((await get('/functions', { authorization: 'Bearer wrong' })).status).toBe(401);
  expect((await get('/functions', { authorization: `Basic ${TOKEN}` })).status).toBe(401);
  const ok = await get('/functions', { authorization: `Bearer ${TOKEN}` });
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual([]);
  // A refused write changes nothing.
  const reg = await fetch(`${p.api}/registerRuntime`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: 'x', run: 'true' }),
  });
  expect(reg.status).toBe(401);
  expect(await (await get('/runtimes', { authorization: `Bearer ${TOKEN}` })).json()).not.toContain('x');
  // A token is never taken from a URL; the event stream takes a one-use ticket there (browsers cannot give
  // EventSource a header), made with the token in the header.
  expect((await get(`/functions?token=${TOKEN}`)).status).toBe(401);
  expect((await get(`/events?token=${TOKEN}`)).status).toBe(401);
  const made = await fetch(`${p.api}/events/ticket`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  expect(made.status).toBe(201);
  const { ticket } = (await made.json()) as { ticket: string };
  expect((await get(`/functions?ticket=${ticket}`)).status).toBe(401); // the stream's only
  const ac = new AbortController();
  const events = await fetch(`${p.api}/events?ticket=${ticket}`, { signal: ac.signal });
  expect(events.status).toBe(200);
  ac.abort();
  expect((await get(`/events?ticket=${ticket}`)).status).toBe(401); // used once
  // Health stays open for load balancers and probes.
  expect((await get('/health')).status).toBe(200);
  expect(p.proc.output()).toContain('request refused: bad token or key');
  expect(p.proc.output()).not.toContain('Bearer wrong');
});

it('answers malformed HTTP with a JSON error', async () => {
  const { connect } = await import('node:net');
  const reply = await new Promise<string>((resolve, reject) => {
    const s = connect(p.port, '127.0.0.1', () => s.write('GARBAGE / NOPE\r\n\r\n'));
    let out = '';
    s.on('data', (b) => (out += b.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
  expect(reply).toMatch(/^HTTP\/1\.1 400/);
  expect(reply).toContain('{"error":"malformed HTTP request"}');
});

it('will not listen beyond loopback without a token', async () => {
  const data = await tempDir();
  const proc = zfaas(
    [
      'up',
      '--host',
      '0.0.0.0',
      '--port',
      String(await freePort()),
      '--data',
      data,
      '--db-bind',
      `tcp://127.0.0.1:${await freePort()}`,
      '--broker-bind',
      `tcp://127.0.0.1:${await freePort()}`,
    ],
    { ZFAAS_TOKEN: '' },
  );
  expect(await proc.stop('SIGCONT')).toBe(2);
  expect(proc.output()).toMatch(/set a token/);
  await rm(data, { recursive: true, force: true });
});
