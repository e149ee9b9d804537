// The REST API's credentials: every route tried with missing, malformed, wrong, other-scheme and
// replayed-after-rotation tokens. Each is refused (401, or 429 once the address has guessed too often),
// logged without the token, and reaches nothing: no runtime, function or call is created, changed or
// removed. (test/auth.e2e.test.ts has the basics.)
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, labelledContainers, startUp, waitFor, waitHealthy, zfaas, type Platform, type Proc } from './helpers/platform.js';
import { CLI } from './helpers/platform.js';
import { spawn } from 'node:child_process';

const T1 = 'first-token-8f3a1c9e2b7d4f60';
const T2 = 'rotated-token-5d2e9b1a7c3f8e04';

let p: Platform;
let api: string;
let proc: Proc;
let nodeId = '';
let archive: Buffer;

interface Answer {
  status: number;
  body: unknown;
  headers: Headers;
}

async function req(
  method: string,
  path: string,
  auth: Record<string, string>,
  body?: { json?: unknown; form?: () => FormData },
): Promise<Answer> {
  const headers: Record<string, string> = { ...auth };
  let payload: BodyInit | undefined;
  if (body?.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  } else if (body?.form) payload = body.form();
  const r = await fetch(`${api}${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, body: parsed, headers: r.headers };
}

const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
const good = (): Record<string, string> => bearer(T1);

const moduleForm = (): FormData => {
  const f = new FormData();
  f.append('module', new Blob([new Uint8Array(archive)]), 'fn.tar.gz');
  return f;
};

// Every route, each with a request that would change or read something if it got through.
const routes = (): [string, string, { json?: unknown; form?: () => FormData }?][] => [
  ['POST', '/registerRuntime', { json: { name: 'intruder', image: 'zfaas/node:latest', path: '/ws', run: 'true' } }],
  ['GET', '/runtimes'],
  ['GET', '/runtime/node'],
  ['DELETE', '/runtime/python'],
  ['POST', '/registerFunction/node/intruder', { form: moduleForm }],
  ['POST', '/registerFunction/node/guarded', { form: moduleForm }],
  ['GET', '/functions'],
  ['GET', '/functions/guarded'],
  ['DELETE', '/functions/guarded'],
  ['POST', '/functions/guarded/rollback', { json: { version: 1 } }],
  ['POST', '/invokeFunction', { json: { funcName: 'guarded', params: { who: 'intruder' }, wait: true } }],
  ['POST', '/function/guarded', { json: { who: 'intruder' } }],
  ['GET', '/calls'],
  ['GET', '/calls?format=list'],
  ['GET', '/call/1'],
  ['GET', '/nodes'],
  ['PUT', `/node/${nodeId}`, { json: { miniworkers: 3 } }],
  ['GET', '/no/such/route'],
];

// What the API knows, read with the good token, to compare before and after the refusals.
async function state(token = T1): Promise<unknown> {
  const get = async (path: string): Promise<unknown> => {
    const a = await req('GET', path, bearer(token));
    expect(a.status, path).toBe(200);
    return a.body;
  };
  const nodes = (await get('/nodes')) as { id: string; settings: unknown; miniworkers: number }[];
  return {
    runtimes: await get('/runtimes?detail=true'),
    functions: await get('/functions?detail=true'),
    guarded: await get('/functions/guarded'),
    calls: await get('/calls?format=list&limit=1000'),
    nodes: nodes.map((n) => ({ id: n.id, settings: n.settings, miniworkers: n.miniworkers })),
  };
}

interface LogLine {
  msg?: string;
  why?: string;
  method?: string;
  path?: string;
}
const refusals = (out: string): LogLine[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        return {};
      }
    })
    .filter((l) => l.msg === 'request refused: bad token or key');

// The log lines of the refusals after the first `skip`, once `count` of them have been written (logs are async).
const loggedRefusals = (skip: number, count: number): Promise<LogLine[]> =>
  waitFor(
    `${count} refusals in the log`,
    async () => {
      const lines = refusals(proc.output()).slice(skip);
      return lines.length >= count ? lines : undefined;
    },
    10_000,
  );

beforeAll(async () => {
  archive = await packFiles({ 'index.js': 'module.exports = (p) => ({ hello: p.who ?? "nobody" });' });
  p = await startUp(['--miniworkers', '1'], { ZFAAS_TOKEN: T1 });
  api = p.api;
  proc = p.proc;
  nodeId = ((await req('GET', '/nodes', good())).body as { id: string }[])[0]!.id;
  // One function and one call made the right way, so that refused deletes, rollbacks and calls have a target.
  expect((await req('POST', '/registerFunction/node/guarded', good(), { form: moduleForm })).status).toBe(201);
  const call = await req('POST', '/function/guarded', good(), { json: { who: 'owner' } });
  expect(call.body).toEqual({ hello: 'owner' });
});

afterAll(async () => {
  await proc?.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
  if (nodeId) expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
});

describe('REST credentials', () => {
  const bad: [string, Record<string, string>][] = [
    ['no Authorization header', {}],
    ['an empty header', { authorization: '' }],
    ['"Bearer" alone', { authorization: 'Bearer' }],
    ['"Bearer " and nothing', { authorization: 'Bearer ' }],
    ['a wrong token', bearer('wrong')],
    ['the token with a character more', bearer(`${T1}x`)],
    ['the token less its last character', bearer(T1.slice(0, -1))],
    ['the token in upper case', bearer(T1.toUpperCase())],
    ['the token twice', { authorization: `Bearer ${T1} ${T1}` }],
    ['two schemes', { authorization: `Bearer ${T1}, Basic ${T1}` }],
    ['Basic with the token as password', { authorization: `Basic ${Buffer.from(`user:${T1}`).toString('base64')}` }],
    ['Basic with the token', { authorization: `Basic ${T1}` }],
    ['Token scheme', { authorization: `Token ${T1}` }],
    ['the bare token', { authorization: T1 }],
    ['an 8 KB token', bearer('k'.repeat(8192))],
    ['Latin-1 bytes in the token', bearer('t\u00f6k\u00e9n')],
    ['the token in another header', { 'x-zfaas-token': T1, 'x-api-key': T1 }],
    ['the token in a cookie', { cookie: `token=${T1}` }],
  ];

  it(`refuses ${bad.length} kinds of bad credentials on every route with 401 (429 past the guessing budget), logs each, and changes nothing`, async () => {
    const before = await state();
    const logged = refusals(proc.output()).length;
    const list = routes();
    const failures: string[] = [];
    let sent = 0;
    let throttled = 0;
    for (const [what, auth] of bad) {
      for (const [method, path, body] of list) {
        const a = await req(method, path, auth, body);
        const error = (a.body as { error?: unknown }).error;
        // A wrong token is a guess: past the address's budget it is answered 429 before it is even compared.
        if (a.status === 429 && error === 'too many failed credentials from this address' && a.headers.get('retry-after')) {
          throttled++;
          continue;
        }
        sent++;
        if (a.status !== 401) failures.push(`${what}: ${method} ${path} -> ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
        else if (typeof error !== 'string' || !/token/.test(error))
          failures.push(`${what}: ${method} ${path}: unclear refusal ${JSON.stringify(a.body)}`);
        else if (a.headers.get('www-authenticate') !== 'Bearer realm="zfaas"')
          failures.push(`${what}: ${method} ${path}: no WWW-Authenticate`);
      }
    }
    expect(failures).toEqual([]);
    expect(throttled).toBeGreaterThan(0); // six kinds of wrong token on every route: more guesses than the budget
    // A token in the query string is never read: refused as missing.
    for (const [method, path, body] of list) {
      const a = await req(method, `${path}${path.includes('?') ? '&' : '?'}token=wrong`, {}, body);
      sent++;
      expect(a.status, `${method} ${path}?token=wrong`).toBe(401);
    }
    // Nothing was reached: no runtime, function, version or call created, changed or removed; the node kept its pool.
    await waitFor('the guessing budget to refill', async () => ((await req('GET', '/runtimes', good())).status === 200 ? true : undefined));
    expect(await state()).toEqual(before);
    // Every refusal is in the log, with the reason, and no token (right or wrong) is.
    const lines = await loggedRefusals(logged, sent);
    expect(lines).toHaveLength(sent);
    expect(new Set(lines.map((l) => l.why))).toEqual(new Set(['missing', 'wrong']));
    expect(lines.filter((l) => l.why === 'missing').length).toBeGreaterThanOrEqual(list.length * 3);
    const log = proc.output();
    for (const secret of [T1, T1.slice(0, -1), T1.toUpperCase(), 'k'.repeat(8192), Buffer.from(`user:${T1}`).toString('base64')])
      expect(log).not.toContain(secret);
  });

  it('the open health check tells nothing that needs a token, and HEAD or OPTIONS do not slip through', async () => {
    const h = await req('GET', '/health', {});
    expect(h.status).toBe(200);
    expect(Object.keys(h.body as object).sort()).toEqual(['db', 'nodes', 'ok', 'queued']);
    for (const method of ['HEAD', 'OPTIONS']) {
      for (const path of ['/functions', '/calls', '/functions/guarded', '/nodes'])
        expect((await req(method, path, {})).status, `${method} ${path}`).toBe(401);
    }
    // Only GET /health is open: not POST, nor a path that looks like it.
    expect((await req('POST', '/health', {}, { json: {} })).status).toBe(401);
    expect((await req('GET', '/health/../functions', {})).status).toBe(401);
    expect((await req('GET', '/health%2f..%2ffunctions', {})).status).toBe(401);
  });

  it('a token replayed after rotation is refused everywhere, logged, and reaches nothing; the new token works', async () => {
    const before = await state();
    // Rotate: restart the same platform (same data) with a new token.
    await proc.stop();
    const port = new URL(api).port;
    proc = zfaas(
      [
        'up',
        '--port',
        port,
        '--data',
        p.data,
        '--db-bind',
        `tcp://127.0.0.1:${await freePort()}`,
        '--broker-bind',
        `tcp://127.0.0.1:${await freePort()}`,
        '--miniworkers',
        '1',
      ],
      { ZFAAS_TOKEN: T2 },
    );
    await waitHealthy(api, 1, proc);
    nodeId = ((await req('GET', '/nodes', bearer(T2))).body as { id: string }[])[0]!.id;
    const failures: string[] = [];
    for (const [method, path, body] of routes()) {
      const a = await req(method, path, good(), body); // exactly what worked before the rotation
      if (a.status !== 401) failures.push(`${method} ${path} with the old token -> ${a.status}`);
    }
    expect(failures).toEqual([]);
    const lines = await loggedRefusals(0, routes().length);
    expect(lines).toHaveLength(routes().length);
    expect(lines.every((l) => l.why === 'wrong')).toBe(true);
    expect(proc.output()).not.toContain(T1);
    // Nothing reached: the same runtimes, functions and calls as before the rotation (nodes may differ: a restart).
    const after = (await state(T2)) as Record<string, unknown>;
    const was = before as Record<string, unknown>;
    for (const k of ['runtimes', 'functions', 'guarded', 'calls']) expect(after[k], k).toEqual(was[k]);
    // The new token works, and the CLI says the old one is refused, in one line with its own exit code.
    expect((await req('POST', '/function/guarded', bearer(T2), { json: { who: 'owner again' } })).body).toEqual({ hello: 'owner again' });
    const cli = await runCli(['invoke', 'guarded', 'who=old-token'], { ZFAAS_API: api, ZFAAS_TOKEN: T1 });
    expect(cli.code).toBe(77);
    expect(cli.stderr.trim()).toMatch(/^zfaas: [^\n]*token[^\n]*$/);
    const calls = (await req('GET', '/calls?format=list', bearer(T2))).body as { params: unknown }[];
    expect(calls.map((c) => c.params)).not.toContainEqual({ who: 'old-token' });
  });
});

async function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('ZFAAS_')),
  );
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...base, ZFAAS_CONFIG: '/nonexistent/zfaas-config.json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  return { code, stderr };
}
