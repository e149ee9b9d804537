// The tenant boundary tried as an attacker with real keys against `zfaas up --token`: every route the API
// registers (read from the app the API builds), with every method, as each role of namespace A, as the
// admin of namespace B, without credentials, with a wrong token and as the operator, and in every spelling
// that is not the route's own (case, trailing and doubled slashes, percent-encoded letters, "..", "."):
// each answer is what the route's declared rule says, and no record changed. Then the holes one by one:
// the spelled paths that once reached other rules, shared runtimes rewritten by a key, a developer naming
// secrets, a namespace's runtime and isolation rules, the quotas (every version's bytes, rollback, CPUs,
// processes, schedules' count and spacing, batch items), the guessing budget, the event stream's
// credential, and an API without a token asked by a page of another site.
import { request as httpRequest } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../api/server.js';
import { declaredRoutes, type Declared } from '../api/routes.js';
import { permits, UNMATCHED, type Rule } from '../api/tenancy/policy.js';
import type { Actor } from '../api/tenancy/scope.js';
import { DbError } from '../db/client.js';
import { packFiles } from './helpers/archives.js';
import { startUp, upload, waitFor, type Platform, type Reply } from './helpers/platform.js';

const OP = 'attack-operator-token-7c1e93a0b5';
let p: Platform;
let routes: Declared[];

interface Key {
  id: string;
  key: string;
}
const keys: Record<string, Key> = {}; // "a-invoker", "a-developer", "a-admin", "b-admin", "default-developer"

interface Answer {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

// One request with its path sent byte for byte (fetch would tidy "..", "." and more), from a loopback
// address of our choosing (each address has its own guessing budget). An event stream is cut at its headers.
function send(
  method: string,
  path: string,
  o: { auth?: string; body?: unknown; headers?: Record<string, string>; from?: string; api?: Platform } = {},
): Promise<Answer> {
  const target = o.api ?? p;
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  const headers: Record<string, string> = {
    ...(o.auth ? { authorization: `Bearer ${o.auth}` } : {}),
    ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}),
    ...o.headers,
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: target.port, method, path, headers, localAddress: o.from ?? '127.0.0.1', timeout: 20_000 },
      (res) => {
        const out = { status: res.statusCode ?? 0, headers: res.headers };
        if (String(res.headers['content-type']).startsWith('text/event-stream')) {
          res.destroy();
          return resolve({ ...out, body: '' });
        }
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => resolve({ ...out, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 20 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

const json = <T>(a: Answer): T => JSON.parse(a.body) as T;
const ok = async <T>(method: string, path: string, auth: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> => {
  const a = await send(method, path, { auth, body, headers });
  expect(a.status, `${method} ${path}: ${a.body.slice(0, 300)}`).toBeLessThan(300);
  return json<T>(a);
};

async function deploy(
  auth: string,
  name: string,
  fields: Record<string, string> = {},
  runtime = 'node',
  extra = '',
): Promise<Reply<{ error?: string; version?: number }>> {
  const archive = await packFiles({ 'index.js': `module.exports = () => 'hello from ${name}';${extra}` });
  return upload(`${p.api}/registerFunction/${runtime}/${name}`, archive, `${name}.tar.gz`, fields, { authorization: `Bearer ${auth}` });
}

// Everything a refusal could have changed, as the operator reads it.
async function snapshot(): Promise<string> {
  const out: Record<string, unknown> = {};
  const namespaces = await ok<{ name: string }[]>('GET', '/namespaces', OP);
  out.namespaces = namespaces;
  for (const { name } of namespaces) {
    const ns = { 'x-zfaas-namespace': name };
    const fns = await ok<{ functionName: string }[]>('GET', '/functions?detail=true', OP, undefined, ns);
    out[`${name}/keys`] = await ok('GET', `/namespaces/${name}/keys`, OP);
    out[`${name}/runtimes`] = await ok('GET', '/runtimes?detail=true', OP, undefined, ns);
    out[`${name}/functions`] = fns;
    out[`${name}/secrets`] = await ok('GET', '/secrets', OP, undefined, ns);
    out[`${name}/dead-letters`] = await ok('GET', '/dead-letters', OP, undefined, ns);
    out[`${name}/calls`] = (await ok<{ callNum: number; status: string }[]>('GET', '/calls?format=list&limit=1000', OP, undefined, ns)).map(
      (c) => [c.callNum, c.status],
    );
    for (const f of fns) {
      const bare = f.functionName.replace(/^[^~]*~/, '');
      out[`${name}/${bare}/versions`] = (await ok<{ versions: unknown }>('GET', `/functions/${bare}`, OP, undefined, ns)).versions;
      out[`${name}/${bare}/schedules`] = (
        await ok<{ id: string; cron: string }[]>('GET', `/functions/${bare}/schedules`, OP, undefined, ns)
      ).map((s) => [s.id, s.cron]);
    }
  }
  out.nodes = (await ok<{ id: string; settings: unknown }[]>('GET', '/nodes', OP)).map((n) => [n.id, n.settings]);
  return JSON.stringify(out, null, 1);
}

beforeAll(async () => {
  // The routes as the API declares them: the app `zfaas api` builds, over a DB that answers nothing.
  const shadow = new ApiServer({
    port: 0,
    host: '127.0.0.1',
    db: { local: () => Promise.reject(new DbError('closed', 'CLOSED')) },
    brokerBind: 'tcp://127.0.0.1:1',
    log: pino({ level: 'silent' }),
  });
  routes = declaredRoutes(shadow.app());
  await shadow.stop();

  p = await startUp(['--miniworkers', '1'], { ZFAAS_TOKEN: OP });
  for (const ns of ['team-a', 'team-b']) await ok('POST', '/namespaces', OP, { name: ns });
  for (const [ns, role] of [
    ['team-a', 'invoker'],
    ['team-a', 'developer'],
    ['team-a', 'admin'],
    ['team-b', 'admin'],
    ['team-b', 'developer'],
    ['default', 'developer'],
    ['default', 'admin'],
  ] as const)
    keys[`${ns.replace('team-', '')}-${role}`] = await ok<Key>('POST', `/namespaces/${ns}/keys`, OP, { role });
  expect((await deploy(keys['a-developer']!.key, 'hello')).status).toBe(201);
  expect((await deploy(keys['b-developer']!.key, 'hello')).status).toBe(201);
  await ok('POST', '/secrets', keys['a-admin']!.key, { name: 'a-secret', value: 'a-secret-value-8d1f' });
  await ok('POST', '/functions/hello/schedules', keys['a-developer']!.key, { cron: '0 0 1 1 *' });
  const call = await ok<{ callNum: number }>('POST', '/invokeFunction', keys['a-invoker']!.key, {
    funcName: 'hello',
    params: {},
    wait: true,
  });
  expect(call.callNum).toBeGreaterThan(0);
}, 180_000);
afterAll(async () => p?.stop());

// --- the route table, every method, every caller, every spelling ------------------------------------------

type Caller = 'none' | 'bad' | 'a-invoker' | 'a-developer' | 'a-admin' | 'b-admin' | 'operator';
const CALLERS: Caller[] = ['none', 'bad', 'a-invoker', 'a-developer', 'a-admin', 'b-admin', 'operator'];
const ACTOR: Partial<Record<Caller, Actor>> = {
  'a-invoker': 'invoker',
  'a-developer': 'developer',
  'a-admin': 'admin',
  'b-admin': 'admin',
  operator: 'operator',
};
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const BAD_FROM = '127.0.0.3'; // wrong tokens come from their own address: their budget is not the others'

// A path of the route that names nothing that exists, so that a caller the rule lets in changes nothing.
const FILL: Record<string, string> = {
  ns: 'team-zz',
  name: 'nope-zz',
  funcName: 'nope-zz',
  runtime: 'nope-zz',
  target: 'nope-zz',
  callNum: '999999',
  id: 'abcdef0123456789',
  version: '99',
  file: 'nope.js',
};
function samples(d: Declared): string[] {
  if (d.path instanceof RegExp) return ['/function/nope-zz', '/ns/team-zz/function/nope-zz/sub'];
  return [d.path.replace(/:(\w+)/g, (_, k: string) => FILL[k] ?? 'x')];
}

// The route table read plainly: the first declared route whose path pattern and method fit, else none.
function ruleFor(method: string, path: string): Rule {
  for (const d of routes) {
    const re = d.path instanceof RegExp ? d.path : new RegExp(`^${d.path.replace(/\./g, '\\.').replace(/:\w+/g, '[^/]+')}$`);
    const fits = d.method === 'ALL' || d.method === method || (method === 'HEAD' && d.method === 'GET');
    if (fits && re.test(path)) return d.rule ?? UNMATCHED;
  }
  return UNMATCHED;
}

// What a caller must get from a rule: `in` when let in (any status but 401/403, never 5xx).
function expected(rule: Rule, caller: Caller, method: string): 'in' | number[] {
  if (rule.need === 'open') return 'in';
  if (caller === 'none') return [401];
  if (caller === 'bad') return [401, 429];
  if (!permits(ACTOR[caller]!, rule.need)) return [403];
  if (rule === UNMATCHED) return method === 'OPTIONS' ? [200, 404] : [404]; // the operator learns there is no route
  return 'in';
}

// Spellings of a path that are not the route's own.
function spellings(path: string, d: Declared): string[] {
  const first = path.split('/')[1] ?? '';
  if (first === '') return ['//', '/%2f', '/./'];
  const pct = `/%${first.charCodeAt(0).toString(16)}${first.slice(1)}${path.slice(1 + first.length)}`;
  const out = [
    `/${first[0]!.toUpperCase()}${path.slice(2)}`,
    path.toUpperCase(),
    `/${path}`,
    pct,
    `/x/..${path}`,
    `/.${path}`,
    `${path.slice(0, 1 + first.length)}%2f${path.slice(2 + first.length)}`,
  ];
  // A web path's sub-path is the function's own: a trailing or doubled slash there reaches the function.
  if (!(d.path instanceof RegExp)) out.push(`${path}/`, path.replace(/\/([^/]*)$/, '//$1'));
  return [...new Set(out)].filter((s) => s !== path && !(d.path instanceof RegExp && s.startsWith('/ns/')));
}

const who = (c: Caller): { auth?: string; from?: string } =>
  c === 'none'
    ? {}
    : c === 'bad'
      ? { auth: 'wrong-token-of-an-attacker', from: BAD_FROM }
      : c === 'operator'
        ? { auth: OP }
        : { auth: keys[c]!.key };

describe('every route, every method, every caller, every spelling', () => {
  it('reads the routes from the app the API builds, each with its rule', () => {
    expect(routes.length).toBeGreaterThan(45);
    expect(routes.filter((d) => !d.rule)).toEqual([]);
  });

  it('answers each as its declared rule says, and a refusal changes nothing', async () => {
    const before = await snapshot();
    const wrong: string[] = [];
    let sent = 0;
    const seen = new Set<string>();
    for (const d of routes) {
      for (const path of samples(d)) {
        // The route's own spelling, with every method.
        for (const method of METHODS) {
          if (seen.has(`${method} ${path}`)) continue;
          seen.add(`${method} ${path}`);
          const rule = ruleFor(method, path);
          for (const caller of CALLERS) {
            const a = await send(method, path, { ...who(caller), body: ['POST', 'PUT', 'PATCH'].includes(method) ? {} : undefined });
            sent++;
            const want = expected(rule, caller, method);
            const fine = want === 'in' ? a.status !== 401 && a.status !== 403 && a.status < 500 : want.includes(a.status);
            if (!fine)
              wrong.push(`${method} ${path} as ${caller}: ${a.status}, want ${String(want)} (${rule.need}) ${a.body.slice(0, 160)}`);
          }
        }
        // Every other spelling, with the route's own method: no route, so the operator's alone.
        const method = d.method === 'ALL' ? 'GET' : d.method;
        for (const spelled of spellings(path, d)) {
          for (const caller of CALLERS) {
            const a = await send(method, spelled, { ...who(caller), body: ['POST', 'PUT'].includes(method) ? {} : undefined });
            sent++;
            const want = expected(UNMATCHED, caller, method);
            if (want === 'in' || !want.includes(a.status))
              wrong.push(`${method} ${spelled} as ${caller}: ${a.status}, want ${String(want)} ${a.body.slice(0, 160)}`);
          }
        }
      }
    }
    console.log(`${sent} requests over ${routes.length} routes`);
    expect(wrong).toEqual([]);
    expect(await snapshot()).toBe(before);
  }, 600_000);
});

// --- the holes, one by one ------------------------------------------------------------------------------

describe('paths spelled to reach another rule', () => {
  it('refuse a developer what the spelling once let through, and change nothing', async () => {
    const before = await snapshot();
    const dev = keys['a-developer']!.key;
    for (const [method, path, body] of [
      ['POST', '/Namespaces/team-a/keys', { role: 'admin' }],
      ['POST', '/NAMESPACES/team-a/keys', { role: 'admin' }],
      ['POST', '/namespaces/team-a/keys/', { role: 'admin' }],
      ['POST', '//namespaces/team-a/keys', { role: 'admin' }],
      ['POST', '/%6Eamespaces/team-a/keys', { role: 'admin' }],
      ['POST', '/x/../namespaces/team-a/keys', { role: 'admin' }],
      ['POST', '/namespaces/team%2Da/keys', { role: 'admin' }], // the route itself: it needs an admin
      ['GET', '/Nodes', undefined],
      ['GET', '/%6Eodes', undefined],
      ['PUT', '/Secrets/x', { value: 'mine now' }],
      ['PUT', '/NAMESPACES/team-a/quotas', {}],
      ['DELETE', '/Namespaces/team-b', undefined],
      ['DELETE', '/namespaces/team-b/', undefined],
      ['PUT', '/Node/x', { miniworkers: 1 }],
    ] as const) {
      const a = await send(method, path, { auth: dev, body });
      expect(a.status, `${method} ${path}: ${a.body}`).toBe(403);
    }
    expect(await snapshot()).toBe(before);
  });
});

describe('shared runtimes', () => {
  it("are the operator's: a key of the default namespace neither rewrites nor removes them", async () => {
    const before = await snapshot();
    const evil = { name: 'node', image: 'zfaas/node:latest', path: '/ws', run: 'sh -c "cat /var/zfaas/secrets/*"' };
    for (const k of ['default-developer', 'default-admin', 'a-developer', 'b-admin']) {
      const del = await send('DELETE', '/runtime/node', { auth: keys[k]!.key });
      expect(del.status, k).toBe(403);
      const put = await send('POST', '/registerRuntime', { auth: keys[k]!.key, body: evil });
      // A key of another namespace registers a private runtime of that name (its own, seen by it alone).
      if (k.startsWith('default')) {
        expect(put.status, k).toBe(403);
        expect(json<{ error: string }>(put).error).toMatch(/shared by every namespace: only the operator/);
      } else expect(put.status, k).toBe(201);
    }
    const shared = await ok<{ run: string }>('GET', '/runtime/node', OP);
    expect(shared.run).not.toContain('secrets');
    // The private ones went to their namespaces only: team-a's hello still deploys on the shared node.
    for (const k of ['a-developer', 'b-admin']) expect((await send('DELETE', '/runtime/node', { auth: keys[k]!.key })).status).toBe(200);
    expect(await snapshot()).toBe(before);
  });

  it("refuse to go while in use naming only the caller's own functions", async () => {
    const dev = keys['a-developer']!.key;
    await ok('POST', '/registerRuntime', dev, {
      name: 'own-rt',
      image: 'zfaas/node:latest',
      path: '/ws',
      run: 'node /opt/zfaas/loader.js --once',
    });
    expect((await deploy(dev, 'on-own', {}, 'own-rt')).status).toBe(201);
    const busy = await send('DELETE', '/runtime/own-rt', { auth: dev });
    expect(busy.status).toBe(409);
    expect(json<{ error: string }>(busy).error).toBe('runtime own-rt is used by 1 function(s) (on-own): delete them first');
    expect(busy.body).not.toMatch(/team-/);
    await ok('DELETE', '/functions/on-own', dev);
    await ok('DELETE', '/runtime/own-rt', dev);
  });
});

describe("a namespace's runtimes and isolation", () => {
  it('are fixed by the operator and kept at deploy, at rollback and for private runtimes', async () => {
    const dev = keys['a-developer']!.key;
    const setQuotas = async (q: object): Promise<void> => {
      await ok('PUT', '/namespaces/team-a/quotas', OP, q);
      await new Promise((r) => setTimeout(r, 3100)); // quotas are read again after 3 s
    };
    await ok('POST', '/registerRuntime', dev, { name: 'boxed', image: 'zfaas/node:latest', path: '/ws', run: 'true', isolation: 'runsc' });
    expect((await deploy(dev, 'sandboxed')).status).toBe(201); // version 1, on node (runc)
    expect((await deploy(dev, 'sandboxed', {}, 'boxed')).status).toBe(201); // version 2, under runsc
    await setQuotas({ isolation: ['runsc'] });
    const onRunc = await deploy(dev, 'hello');
    expect(onRunc.status).toBe(403);
    expect(onRunc.body.error).toMatch(/runs its functions only under runsc: runtime node runs under runc/);
    const back = await send('POST', '/functions/sandboxed/rollback', { auth: dev, body: { version: 1 } });
    expect(back.status).toBe(403);
    expect((await ok<{ version: number }>('GET', '/functions/sandboxed', dev)).version).toBe(2);
    const loose = await send('POST', '/registerRuntime', { auth: dev, body: { name: 'loose', image: 'zfaas/node:latest', run: 'true' } });
    expect(loose.status).toBe(403);
    expect(loose.body).toMatch(/set its \\"isolation\\"/);
    expect((await deploy(dev, 'sandboxed', {}, 'boxed')).status).toBe(201);
    await setQuotas({ runtimes: ['node'] });
    const named = await deploy(dev, 'sandboxed', {}, 'boxed');
    expect(named.status).toBe(403);
    expect(named.body.error).toMatch(/may use only the runtimes node, not boxed/);
    await setQuotas({});
    await ok('DELETE', '/functions/sandboxed', dev);
    await ok('DELETE', '/runtime/boxed', dev);
    expect((await ok<string[]>('GET', '/runtimes', dev)).sort()).toEqual(['go', 'java', 'node', 'provided', 'python']);
  }, 60_000);
});

describe('roles that mean what they say', () => {
  it("let only an admin name the namespace's secrets in a deploy", async () => {
    const before = await ok<{ version: number }>('GET', '/functions/hello', keys['a-developer']!.key);
    const dev = await deploy(keys['a-developer']!.key, 'hello', { secrets: 'a-secret' });
    expect(dev.status).toBe(403);
    expect(dev.body.error).toMatch(/naming secrets \(a-secret\) in a deploy needs the admin role/);
    expect((await ok<{ version: number }>('GET', '/functions/hello', keys['a-developer']!.key)).version).toBe(before.version);
    const admin = await deploy(keys['a-admin']!.key, 'reads-secret', { secrets: 'a-secret' });
    expect(admin.status).toBe(201);
    await ok('DELETE', '/functions/reads-secret', keys['a-admin']!.key);
  });
});

describe('quotas', () => {
  const dev = (): string => keys['b-developer']!.key;
  const setQuotas = async (q: object): Promise<void> => {
    await ok('PUT', '/namespaces/team-b/quotas', OP, q);
    await new Promise((r) => setTimeout(r, 3100)); // read again after 3 s
  };
  afterAll(async () => ok('PUT', '/namespaces/team-b/quotas', OP, {}));

  it('count every stored version against archiveBytes, and let an old version be removed', async () => {
    const have = await ok<{ versions: { size: number }[] }>('GET', '/functions/hello', dev());
    const used = have.versions.reduce((s, v) => s + v.size, 0);
    const size = have.versions[0]!.size;
    await setQuotas({ archiveBytes: used + 2 * size + 50 });
    expect((await deploy(dev(), 'hello')).status).toBe(201);
    expect((await deploy(dev(), 'hello')).status).toBe(201);
    const full = await deploy(dev(), 'hello');
    expect(full.status).toBe(413);
    expect(full.body.error).toMatch(/every stored version counted/);
    const versions = (await ok<{ version: number; versions: { version: number }[] }>('GET', '/functions/hello', dev())).versions;
    await ok('DELETE', `/functions/hello/versions/${versions[0]!.version}`, dev());
    expect((await deploy(dev(), 'hello')).status).toBe(201);
    const current = (await ok<{ version: number }>('GET', '/functions/hello', dev())).version;
    expect((await send('DELETE', `/functions/hello/versions/${current}`, { auth: dev() })).status).toBe(409);
  }, 60_000);

  it('hold a rollback to memory, and a deploy to CPUs and processes', async () => {
    await setQuotas({});
    expect((await deploy(dev(), 'big', { memory: '512m' })).status).toBe(201);
    expect((await deploy(dev(), 'big', { memory: '128m' })).status).toBe(201);
    await setQuotas({ memory: 256, cpus: 0.5, pids: 64 });
    const back = await send('POST', '/functions/big/rollback', { auth: dev(), body: {} });
    expect(back.status).toBe(400);
    expect(back.body).toMatch(/at most 256 MiB of memory \(asked: 512 MiB\)/);
    expect((await ok<{ settings: { memory: number } }>('GET', '/functions/big', dev())).settings.memory).toBe(128);
    expect((await deploy(dev(), 'big', { memory: '128m', cpus: '1', pids: '64' })).body.error).toMatch(/at most 0.5 CPUs/);
    expect((await deploy(dev(), 'big', { memory: '128m', cpus: '0.5' })).body.error).toMatch(
      /at most 64 processes \(pids\) \(asked: 128\)/,
    );
    expect((await deploy(dev(), 'big', { memory: '128m', cpus: '0.5', pids: '64' })).status).toBe(201);
    await ok('DELETE', '/functions/big', dev());
  }, 60_000);

  it("hold schedules to their count, and a key's to a minute apart", async () => {
    await setQuotas({ schedules: 1 });
    const fast = await send('POST', '/functions/hello/schedules', { auth: dev(), body: { cron: '0,1 0 0 1 1 *' } });
    expect(fast.status).toBe(400);
    expect(fast.body).toMatch(/1 s apart at the closest; .* at most once every 60 s/);
    const first = await ok<{ id: string }>('POST', '/functions/hello/schedules', dev(), { cron: '0 0 1 1 *' });
    const second = await send('POST', '/functions/hello/schedules', { auth: dev(), body: { cron: '0 0 2 1 *' } });
    expect(second.status).toBe(403);
    expect(second.body).toMatch(/at most 1 schedules/);
    await ok('DELETE', `/functions/hello/schedules/${first.id}`, dev());
    // The operator is not held to the spacing.
    const op = await ok<{ id: string }>(
      'POST',
      '/functions/hello/schedules',
      OP,
      { cron: '0,1 0 0 1 1 *' },
      { 'x-zfaas-namespace': 'team-b' },
    );
    await ok('DELETE', `/functions/hello/schedules/${op.id}`, OP, undefined, { 'x-zfaas-namespace': 'team-b' });
  }, 30_000);

  it('check every item of a batch as a single call is checked', async () => {
    const calls = (await ok<unknown[]>('GET', '/calls?format=list&limit=1000', dev())).length;
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const a = await send('POST', '/batch/hello', { auth: dev(), body: [{ n: 1 }, deep] });
    expect(a.status).toBe(400);
    expect(a.body).toMatch(/item 1 of the batch: invalid params: nested more than/);
    expect((await send('POST', '/invokeFunction', { auth: dev(), body: { funcName: 'hello', params: deep } })).status).toBe(400);
    expect((await ok<unknown[]>('GET', '/calls?format=list&limit=1000', dev())).length).toBe(calls);
  });
});

describe('credentials', () => {
  it('budget wrong operator tokens per address, past which even the right one waits', async () => {
    const from = '127.0.0.9';
    const first: number[] = [];
    for (let i = 0; i < 60; i++) first.push((await send('GET', '/functions', { auth: `guess-${i}-of-the-operator-token`, from })).status);
    expect(first.every((s) => s === 401)).toBe(true);
    // Past the budget a guess is answered 429 before it is compared: the right token too, so that the
    // answer never tells a guesser it was right. (The budget refills 5 a second: tried until seen.)
    let rightRefused = false;
    for (let round = 0; round < 50 && !rightRefused; round++) {
      for (let guess = 0; guess < 100; guess++)
        if ((await send('GET', '/functions', { auth: `guess-${round}-${guess}`, from })).status === 429) break;
      rightRefused = (await send('GET', '/functions', { auth: OP, from })).status === 429;
    }
    expect(rightRefused).toBe(true);
    expect((await send('GET', '/functions', { auth: OP, from: '127.0.0.10' })).status).toBe(200);
  });

  it('open the event stream with a one-use ticket, never with a token in the URL', async () => {
    expect((await send('GET', `/events?token=${OP}`)).status).toBe(401);
    expect((await send('GET', `/events?token=${keys['a-invoker']!.key}`)).status).toBe(401);
    const { ticket } = await ok<{ ticket: string }>('POST', '/events/ticket', keys['a-invoker']!.key);
    expect((await send('GET', `/calls?ticket=${ticket}`)).status).toBe(401);
    expect((await send('GET', `/events?ticket=${ticket}`)).status).toBe(200);
    expect((await send('GET', `/events?ticket=${ticket}`)).status).toBe(401);
  });
});

describe('an API without a token', () => {
  let local: Platform;
  beforeAll(async () => {
    local = await startUp(['--miniworkers', '1'], { ZFAAS_TOKEN: '' });
    const form = async (name: string, pub: boolean): Promise<void> => {
      const r = await upload(
        `${local.api}/registerFunction/node/${name}`,
        await packFiles({ 'index.js': `module.exports = () => '${name}';` }),
        `${name}.tar.gz`,
        {
          public: String(pub),
        },
      );
      expect(r.status).toBe(201);
    };
    await form('open-fn', true);
    await form('closed-fn', false);
  }, 120_000);
  afterAll(async () => local?.stop());

  it("serves this machine's own requests and refuses a page of another site, changing nothing", async () => {
    const calls = async (): Promise<number> => json<unknown[]>(await send('GET', '/calls?format=list', { api: local })).length;
    const before = await calls();
    const foreign: Record<string, string>[] = [
      { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'null' },
      { host: 'rebound.evil.example' },
      { host: `evil.example:${local.port}` },
    ];
    for (const headers of foreign) {
      const a = await send('POST', '/invokeFunction', { api: local, headers, body: { funcName: 'closed-fn', params: {} } });
      expect(a.status, JSON.stringify(headers)).toBe(403);
      expect(a.body).toMatch(/this API has no token: it answers only requests of this machine's own/);
      expect((await send('GET', '/functions', { api: local, headers })).status).toBe(403);
      expect((await send('POST', '/function/closed-fn', { api: local, headers })).status).toBe(403);
      // A public function's web path answers anyone, a page of another site too, as it would with a token.
      const pub = await send('GET', '/function/open-fn', { api: local, headers });
      expect([pub.status, pub.body], JSON.stringify(headers)).toEqual([200, 'open-fn']);
    }
    await waitFor('the public calls to end', async () => {
      const list = json<{ status: string }[]>(await send('GET', '/calls?format=list', { api: local }));
      return list.every((c) => ['DONE', 'ERROR', 'TIMEOUT'].includes(c.status)) ? true : undefined;
    });
    expect(await calls()).toBe(before + 6); // the public function's calls, and nothing else
    // This machine's own: no Origin, or the page's own origin, on a loopback name.
    expect((await send('POST', '/invokeFunction', { api: local, body: { funcName: 'closed-fn', params: {} } })).status).toBe(202);
    const own = { origin: `http://127.0.0.1:${local.port}`, 'sec-fetch-site': 'same-origin' };
    expect((await send('GET', '/functions', { api: local, headers: own })).status).toBe(200);
    expect((await send('GET', '/functions', { api: local, headers: { host: `localhost:${local.port}` } })).status).toBe(200);
  }, 60_000);
});
