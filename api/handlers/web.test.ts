// The web path served before express (webFront), on a real HTTP server with a real Identity (an API with a
// token) and fakes for the calls it makes: which requests it takes and which it leaves to the app, the
// refusal of a caller without credentials, the params it decodes, and the body as the function gets it
// (limited, inflated, refused in an encoding it cannot read). The call's life is the e2e suites' (test/web*).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Call, FunctionMeta } from '../../common/model.js';
import type { Calls } from '../calls.js';
import type { MetaEntry } from '../meta-cache.js';
import { StreamHub } from '../streams.js';
import { Identity } from '../tenancy/identity.js';
import { Waiters } from '../waiters.js';
import { webFront, WEB_BODY_LIMIT } from './web.js';

const TOKEN = 'a-token-of-sixteen-or-more';
const log = pino({ level: 'silent' });

interface Made {
  funcName: string;
  params: unknown;
  body: string; // the request body as the function gets it (base64 in the call's HTTP request)
  path: string;
}

let server: Server;
let base: string;
let made: Made[];
let fellThrough: string[];

function fn(name: string, isPublic: boolean): FunctionMeta {
  return {
    functionName: name,
    runtimeName: 'node',
    version: 1,
    settings: { public: isPublic, timeout: 5 },
  } as unknown as FunctionMeta;
}

beforeEach(async () => {
  made = [];
  fellThrough = [];
  const waiters = new Waiters();
  const functions = new Map([
    ['open', fn('open', true)],
    ['closed', fn('closed', false)],
  ]);
  let callNum = 0;
  // Calls as the handler uses it: a function by name, a call made and at once ended with the params echoed.
  const calls = {
    waiters,
    resolveFunction: (name: string): Promise<MetaEntry> => {
      const f = functions.get(name);
      return f ? Promise.resolve({ fn: f, runtime: null }) : Promise.reject(new (class extends Error {})(`function ${name} not found`));
    },
    invokeResolved: (def: MetaEntry, params: unknown, o: { http?: { body: string; path: string } }) => {
      const call = { callNum: ++callNum, funcName: def.fn.functionName, status: 'DONE' } as unknown as Call;
      made.push({ funcName: def.fn.functionName, params, body: o.http?.body ?? '', path: o.http?.path ?? '' });
      setImmediate(() =>
        waiters.settle(call.callNum, { call, outcome: { status: 'DONE', result: JSON.stringify({ got: params }) } as never }),
      );
      return Promise.resolve({ call, fn: def.fn, replayed: false });
    },
  } as unknown as Calls;
  const identity = new Identity({ db: { request: () => Promise.resolve(null) } as never, log, token: TOKEN });
  const front = webFront({ calls, identity, log, idempotencyTtlS: 60, streams: new StreamHub(), cancel: () => Promise.resolve() });
  server = createServer((req, res) => {
    if (front(req, res)) return;
    fellThrough.push(req.url ?? '');
    res.end('app');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const auth = { authorization: `Bearer ${TOKEN}` };

describe('the web front', () => {
  it('takes function paths only and leaves every other path to the app', async () => {
    for (const p of ['/functions', '/call/1', '/function', '/functionx/open', '/Function/open', '/ns/a/functions/x'])
      expect(await (await fetch(`${base}${p}`, { headers: auth })).text()).toBe('app');
    expect(fellThrough).toEqual(['/functions', '/call/1', '/function', '/functionx/open', '/Function/open', '/ns/a/functions/x']);
    const r = await fetch(`${base}/function/open/a/b?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ got: { a: 1 } });
    expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(r.headers.get('x-zfaas-call')).toBe('1');
    expect(made).toEqual([{ funcName: 'open', params: { a: 1 }, body: Buffer.from('{"a":1}').toString('base64'), path: '/a/b' }]);
  });

  it('refuses a caller without credentials a function that is not public, as if it did not exist', async () => {
    const r = await fetch(`${base}/function/closed`, { method: 'POST', body: '{}' });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/Bearer/);
    expect(await fetch(`${base}/function/missing`, { method: 'POST', body: '{}' }).then((x) => x.status)).toBe(401);
    expect(
      await fetch(`${base}/function/closed`, { method: 'POST', body: '{}', headers: { authorization: 'Bearer wrong' } }).then(
        (x) => x.status,
      ),
    ).toBe(401);
    expect(made).toEqual([]);
    const ok = await fetch(`${base}/function/closed`, {
      method: 'POST',
      body: '{"b":2}',
      headers: { ...auth, 'content-type': 'application/json' },
    });
    expect(await ok.json()).toEqual({ got: { b: 2 } });
  });

  it('decodes the path as express does: a name that does not decode is a 400, an encoded one is the name', async () => {
    const bad = await fetch(`${base}/function/%E0%A4%A`, { headers: auth });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: "Failed to decode param '%E0%A4%A'" });
    // Even an error before the handler is sandboxed away from the API's origin.
    expect(bad.headers.get('content-security-policy')).toMatch(/sandbox/);
    const ns = await fetch(`${base}/function/open`, { headers: { ...auth, 'x-zfaas-namespace': 'Not A Namespace' } });
    expect(ns.status).toBe(400);
    expect(ns.headers.get('x-content-type-options')).toBe('nosniff');
    const sub = await fetch(`${base}/function/%6Fpen/x%2Fy?q=1`, { headers: auth });
    expect(await sub.json()).toEqual({ got: { q: '1' } });
    expect(made.at(-1)).toMatchObject({ funcName: 'open', path: '/x/y' });
  });

  it('gives the function the body inflated, refuses one over the limit (413) or in an unknown encoding (415)', async () => {
    const json = JSON.stringify({ big: 'x'.repeat(1000) });
    const zipped = await fetch(`${base}/function/open`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(json),
    });
    expect(await zipped.json()).toEqual({ got: JSON.parse(json) });
    const large = await fetch(`${base}/function/open`, { method: 'POST', headers: auth, body: Buffer.alloc(WEB_BODY_LIMIT + 1) });
    expect(large.status).toBe(413);
    expect(await large.json()).toEqual({ error: 'request body too large' });
    const bomb = await fetch(`${base}/function/open`, {
      method: 'POST',
      headers: { ...auth, 'content-encoding': 'gzip' },
      body: gzipSync(Buffer.alloc(WEB_BODY_LIMIT + 1)),
    });
    expect(bomb.status).toBe(413);
    const odd = await fetch(`${base}/function/open`, { method: 'POST', headers: { ...auth, 'content-encoding': 'zstd-x' }, body: 'x' });
    expect(odd.status).toBe(415);
    expect(made).toHaveLength(1);
    // The connection still serves the next request after a refused body.
    expect((await fetch(`${base}/function/open?k=v`, { headers: auth })).status).toBe(200);
  });
});
