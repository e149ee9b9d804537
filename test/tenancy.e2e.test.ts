// Many teams on one zfaas (`zfaas up` with an operator token): two namespaces each with a function named
// `hello`, keys of every role, and what each key may do. Every route is tried with each role, with the
// other namespace's key, with no key and a wrong one (a table below), and nothing is changed by a refusal;
// a revoked key stops within a second; 10,000 guessed keys change nothing and are slowed down; a
// namespace's quotas refuse past their limits, and one flooding its running limit does not hold up its
// neighbour's calls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, sleep, startUp, upload, waitFor, type Platform, type Reply } from './helpers/platform.js';

const OP = 'operator-token-0123456789';
let p: Platform;

interface Key {
  id: string;
  key: string;
  role: string;
  namespace: string;
}
interface CallRecord {
  callNum: number;
  funcName: string;
  status: string;
  result: string;
  error?: string;
  by?: string;
  startedAt?: string;
  finishedAt?: string;
  createdAt: string;
}

// A request as `auth` (a key or the operator's token; none: anonymous).
const req = <T = unknown>(method: string, path: string, auth?: string, body?: unknown, headers: Record<string, string> = {}) =>
  http<T>(method, `${p.api}${path}`, body, auth ? { ...headers, authorization: `Bearer ${auth}` } : headers);

const keys: Record<string, Key> = {}; // "a-admin", "b-invoker", ...

async function makeKey(ns: string, role: string, auth = OP): Promise<Key> {
  const r = await req<Key>('POST', `/namespaces/${ns}/keys`, auth, { role });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body.key).toMatch(/^zfk_[a-f0-9]{16}_/);
  return r.body;
}

async function deploy(auth: string, name: string, source: string, fields: Record<string, string> = {}): Promise<Reply<{ error?: string }>> {
  return upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': source }), `${name}.tar.gz`, fields, {
    authorization: `Bearer ${auth}`,
  });
}

const invoke = (auth: string, funcName: string, params: unknown = {}, wait = true) =>
  req<CallRecord>('POST', '/invokeFunction', auth, { funcName, params, wait });

const ended = (auth: string, n: number): Promise<CallRecord> =>
  waitFor(`call ${n}`, async () => {
    const r = await req<CallRecord>('GET', `/call/${n}`, auth);
    // Final as recorded (a result the API has heard of may be answered before the store has it).
    return ['DONE', 'ERROR', 'TIMEOUT'].includes(r.body.status) && r.body.finishedAt ? r.body : undefined;
  });

let callA = 0; // a call of team-a's hello, made by its developer key
let callB = 0;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: OP });
  for (const ns of ['team-a', 'team-b']) {
    const r = await req('POST', '/namespaces', OP, { name: ns });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    for (const role of ['admin', 'developer', 'invoker']) keys[`${ns.slice(-1)}-${role}`] = await makeKey(ns, role);
  }
  expect((await deploy(keys['a-developer']!.key, 'hello', "module.exports = () => 'from A';")).status).toBe(201);
  expect((await deploy(keys['b-developer']!.key, 'hello', "module.exports = () => 'from B';")).status).toBe(201);
  expect((await deploy(keys['b-developer']!.key, 'only-b', "module.exports = () => 'b only';")).status).toBe(201);
  const a = await invoke(keys['a-developer']!.key, 'hello');
  const b = await invoke(keys['b-developer']!.key, 'hello');
  expect([a.body.result, b.body.result]).toEqual(['from A', 'from B']);
  callA = a.body.callNum;
  callB = b.body.callNum;
}, 180_000);
afterAll(async () => p?.stop());

describe('namespaces', () => {
  it('are made by the operator only, with names that are DNS labels', async () => {
    expect((await req('POST', '/namespaces', OP, { name: 'team-a' })).status).toBe(409);
    expect((await req<{ error: string }>('POST', '/namespaces', OP, { name: 'Team_A' })).body.error).toMatch(/lower-case/);
    expect((await req('POST', '/namespaces', keys['a-admin']!.key, { name: 'team-c' })).status).toBe(403);
    const list = (await req<{ name: string }[]>('GET', '/namespaces', OP)).body.map((n) => n.name);
    expect(list).toEqual(expect.arrayContaining(['default', 'team-a', 'team-b']));
    expect((await req('GET', '/whoami', keys['a-invoker']!.key)).body).toEqual({
      namespace: 'team-a',
      role: 'invoker',
      keyId: keys['a-invoker']!.id,
    });
  });

  it('give each key only its own functions and calls, under the same names', async () => {
    for (const [k, mine, theirs, want] of [
      ['a-developer', callA, callB, ['hello']],
      ['b-developer', callB, callA, ['hello', 'only-b']],
    ] as const) {
      const key = keys[k]!.key;
      expect((await req<string[]>('GET', '/functions', key)).body.sort()).toEqual(want);
      const own = await req<CallRecord>('GET', `/call/${mine}`, key);
      expect(own.status).toBe(200);
      expect(own.body.funcName).toBe('hello'); // shown bare
      expect((await req('GET', `/call/${theirs}`, key)).status).toBe(404);
      const calls = (await req<CallRecord[]>('GET', '/calls?format=list', key)).body.map((c) => c.callNum);
      expect(calls).toContain(mine);
      expect(calls).not.toContain(theirs);
    }
    // The operator's default namespace has no hello at all.
    expect((await req('GET', '/functions/hello', OP)).status).toBe(404);
    expect((await req<string[]>('GET', '/functions', OP, undefined, { 'x-zfaas-namespace': 'team-b' })).body.sort()).toEqual([
      'hello',
      'only-b',
    ]);
    // Keys never carry their secret part in a listing.
    const listed = JSON.stringify((await req('GET', '/namespaces/team-a/keys', keys['a-admin']!.key)).body);
    for (const k of Object.values(keys)) expect(listed).not.toContain(k.key.slice(22));
    expect(listed).not.toMatch(/"hash"|"salt"/);
  });

  it('let an invoker run functions and read only the calls it made', async () => {
    const inv = keys['a-invoker']!.key;
    const mine = await invoke(inv, 'hello');
    expect(mine.body.result).toBe('from A');
    expect(mine.body.by).toBe(keys['a-invoker']!.id);
    expect((await req('GET', `/call/${mine.body.callNum}`, inv)).status).toBe(200);
    expect((await req('GET', `/call/${callA}`, inv)).status).toBe(404); // the developer's call
    const listed = (await req<CallRecord[]>('GET', '/calls?format=list', inv)).body.map((c) => c.callNum);
    expect(listed).toEqual([mine.body.callNum]);
    const web = await fetch(`${p.api}/function/hello`, { headers: { authorization: `Bearer ${inv}` } });
    expect(await web.text()).toBe('from A');
  });

  it("keep the event stream and the metrics to the key's namespace", async () => {
    const ac = new AbortController();
    const { ticket } = (await req<{ ticket: string }>('POST', '/events/ticket', keys['b-developer']!.key)).body;
    const stream = await fetch(`${p.api}/events?ticket=${ticket}`, { signal: ac.signal });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    let seen = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        seen += Buffer.from(value).toString();
      }
    })().catch(() => undefined);
    await sleep(200);
    const a = await invoke(keys['a-developer']!.key, 'hello');
    const b = await invoke(keys['b-developer']!.key, 'only-b');
    await waitFor(
      'b event',
      async () => (seen.includes(`"callNum":${b.body.callNum},`) && seen.includes('"DONE"') ? true : undefined),
      20_000,
    );
    ac.abort();
    await reading;
    expect(seen).not.toContain(`"callNum":${a.body.callNum},`);
    expect(seen).not.toContain('team-');
    const metricsA = (await req<string>('GET', '/metrics', keys['a-developer']!.key)).body;
    expect(metricsA).toContain('function="hello"');
    expect(metricsA).not.toContain('only-b');
    expect(metricsA).not.toContain('team-');
    expect((await req<string>('GET', '/metrics', OP)).body).toContain('function="team-b~only-b"');
    const fns = (await req<Record<string, unknown>>('GET', '/metrics/functions', keys['a-developer']!.key)).body;
    expect(Object.keys(fns)).toEqual(['hello']);
  });
});

// Each route, as each caller: the status it gets. `A`: team-a's admin, developer, invoker keys; `B`:
// team-b's admin key (the other namespace), `none`: no credentials, `bad`: a key that does not exist.
describe('every route with every caller', () => {
  const routes: [string, string, unknown, Record<string, number>][] = [
    ['GET', '/functions', undefined, { admin: 200, developer: 200, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['GET', '/functions/hello', undefined, { admin: 200, developer: 200, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['GET', '/functions/only-b', undefined, { admin: 404, developer: 404, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['DELETE', '/functions/only-b', undefined, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['POST', '/functions/only-b/rollback', {}, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/functions/only-b/schedules', undefined, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['POST', '/functions/only-b/schedules', { cron: '0 0 1 1 *' }, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['POST', '/invokeFunction', { funcName: 'only-b' }, { admin: 404, developer: 404, invoker: 404, none: 401, bad: 401 }],
    ['GET', '/function/only-b', undefined, { admin: 404, developer: 404, invoker: 404, none: 401, bad: 401 }],
    ['POST', '/batch/only-b', [{}], { admin: 404, developer: 404, invoker: 404, none: 401, bad: 401 }],
    ['GET', '/call/CALLB', undefined, { admin: 404, developer: 404, invoker: 404, B: 200, none: 401, bad: 401 }],
    ['DELETE', '/call/CALLB', undefined, { admin: 404, developer: 404, invoker: 404, none: 401, bad: 401 }],
    ['GET', '/calls', undefined, { admin: 200, developer: 200, invoker: 200, none: 401, bad: 401 }],
    ['GET', '/dead-letters', undefined, { admin: 200, developer: 200, invoker: 403, none: 401, bad: 401 }],
    ['POST', '/dead-letters/CALLB/replay', {}, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['DELETE', '/dead-letters/CALLB', undefined, { admin: 404, developer: 404, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/runtimes', undefined, { admin: 200, developer: 200, invoker: 403, none: 401, bad: 401 }],
    [
      'POST',
      '/registerRuntime',
      { name: 'mine', image: 'zfaas-node', run: 'true' },
      { admin: 201, developer: 201, invoker: 403, none: 401, bad: 401 },
    ],
    ['DELETE', '/runtime/node', undefined, { admin: 403, developer: 403, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/nodes', undefined, { admin: 403, developer: 403, invoker: 403, B: 403, none: 401, bad: 401 }],
    ['GET', '/namespaces', undefined, { admin: 403, developer: 403, invoker: 403, B: 403, none: 401, bad: 401 }],
    ['GET', '/namespaces/team-b', undefined, { admin: 404, developer: 403, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['PUT', '/namespaces/team-b/quotas', { running: 1 }, { admin: 403, developer: 403, invoker: 403, B: 403, none: 401, bad: 401 }],
    ['GET', '/namespaces/team-b/keys', undefined, { admin: 404, developer: 403, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['POST', '/namespaces/team-b/keys', { role: 'admin' }, { admin: 404, developer: 403, invoker: 403, none: 401, bad: 401 }],
    ['DELETE', '/namespaces/team-b/keys/KEYB', undefined, { admin: 404, developer: 403, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/secrets', undefined, { admin: 200, developer: 403, invoker: 403, B: 200, none: 401, bad: 401 }],
    ['POST', '/secrets', { name: 'x', value: 'y' }, { developer: 403, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/events', undefined, { none: 401, bad: 401 }],
    ['GET', '/metrics', undefined, { admin: 200, developer: 200, invoker: 403, none: 401, bad: 401 }],
    ['GET', '/health', undefined, { admin: 200, invoker: 200, none: 200, bad: 200 }],
  ];

  it('answers each as designed, and a refusal changes nothing', async () => {
    const before = JSON.stringify([
      (await req('GET', '/functions?detail=true', keys['b-admin']!.key)).body,
      (await req('GET', `/call/${callB}`, keys['b-admin']!.key)).body,
      (await req('GET', '/namespaces/team-b/keys', keys['b-admin']!.key)).body,
      (await req('GET', '/namespaces', OP)).body,
    ]);
    const who: Record<string, string | undefined> = {
      admin: keys['a-admin']!.key,
      developer: keys['a-developer']!.key,
      invoker: keys['a-invoker']!.key,
      B: keys['b-admin']!.key,
      none: undefined,
      bad: 'zfk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    };
    const wrong: string[] = [];
    for (const [method, raw, body, want] of routes) {
      const path = raw.replace('CALLB', String(callB)).replace('KEYB', keys['b-invoker']!.id);
      for (const [caller, status] of Object.entries(want)) {
        const r = await req(method, path, who[caller], body);
        if (r.status !== status)
          wrong.push(`${method} ${path} as ${caller}: ${r.status}, want ${status} ${JSON.stringify(r.body).slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
    const after = JSON.stringify([
      (await req('GET', '/functions?detail=true', keys['b-admin']!.key)).body,
      (await req('GET', `/call/${callB}`, keys['b-admin']!.key)).body,
      (await req('GET', '/namespaces/team-b/keys', keys['b-admin']!.key)).body,
      (await req('GET', '/namespaces', OP)).body,
    ]);
    expect(after).toBe(before);
    // The private runtime team-a registered is its own: team-b does not see it.
    expect((await req<string[]>('GET', '/runtimes', keys['a-developer']!.key)).body).toContain('mine');
    expect((await req<string[]>('GET', '/runtimes', keys['b-developer']!.key)).body).not.toContain('mine');
    expect((await req<string[]>('GET', '/runtimes', OP)).body).not.toContain('mine');
  }, 120_000);
});

describe('keys', () => {
  it('stop within a second of being revoked, and rotate to a new secret', async () => {
    const k = await makeKey('team-a', 'developer', keys['a-admin']!.key);
    expect((await req('GET', '/functions', k.key)).status).toBe(200);
    const t0 = Date.now();
    expect((await req('DELETE', `/namespaces/team-a/keys/${k.id}`, keys['a-admin']!.key)).status).toBe(200);
    const refused = await req('GET', '/functions', k.key);
    console.log(`revoked key refused after ${Date.now() - t0} ms`);
    expect(refused.status).toBe(401);
    const r = await makeKey('team-a', 'invoker', keys['a-admin']!.key);
    expect((await req('GET', '/calls', r.key)).status).toBe(200);
    const rotated = await req<Key>('POST', `/namespaces/team-a/keys/${r.id}/rotate`, keys['a-admin']!.key);
    expect(rotated.status).toBe(200);
    expect(rotated.body.id).toBe(r.id);
    expect((await req('GET', '/calls', r.key)).status).toBe(401);
    expect((await req('GET', '/calls', rotated.body.key)).status).toBe(200);
  });

  it('10,000 guessed keys change nothing and are slowed down', async () => {
    const before = JSON.stringify((await req('GET', '/namespaces/team-a/keys', keys['a-admin']!.key)).body);
    const counts: Record<number, number> = {};
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < 10_000) {
          const i = next++;
          const guess = `zfk_${keys['a-admin']!.id}_${Buffer.from(String(i).padStart(32, '0')).toString('base64url').slice(0, 43)}`;
          const r = await fetch(`${p.api}/functions`, { headers: { authorization: `Bearer ${guess}` } });
          await r.arrayBuffer();
          counts[r.status] = (counts[r.status] ?? 0) + 1;
        }
      }),
    );
    console.log(`10,000 guesses in ${Date.now() - t0} ms: ${JSON.stringify(counts)}`);
    expect(Object.keys(counts).sort()).toEqual(['401', '429']);
    expect(counts[429]).toBeGreaterThan(9_000); // past the first few, no guess was even checked
    expect(JSON.stringify((await req('GET', '/namespaces/team-a/keys', keys['a-admin']!.key)).body)).toBe(before);
    // A key in use keeps working from the same address.
    expect((await req('GET', '/functions', keys['a-developer']!.key)).status).toBe(200);
    // The operator's token shares the address's budget: it may have to wait, like any credential, for room.
    await waitFor('the budget to refill', async () => ((await req('GET', '/namespaces', OP)).status === 200 ? true : undefined));
  }, 120_000);
});

describe('quotas', () => {
  it('refuse calls past the minute, and deploys past functions, bytes or memory', async () => {
    const b = keys['b-developer']!.key;
    expect((await req('PUT', '/namespaces/team-b/quotas', OP, { perMinute: 3, memory: 128, functions: 2 })).status).toBe(200);
    await sleep(3100); // quotas are read again after 3 s
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const r = await invoke(b, 'hello', {}, false);
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    expect(statuses.filter((s) => s === 202).length).toBeLessThanOrEqual(3);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // team-a is not limited by team-b's quota.
    expect((await invoke(keys['a-developer']!.key, 'hello', {}, false)).status).toBe(202);
    const big = await deploy(b, 'only-b', "module.exports = () => 'x';", { memory: '256m' });
    expect(big.status).toBe(400);
    expect(big.body.error).toMatch(/at most 128 MiB/);
    const third = await deploy(b, 'third', "module.exports = () => 'x';", { memory: '64m' });
    expect(third.status).toBe(403);
    expect(third.body.error).toMatch(/at most 2 functions/);
    expect((await req('PUT', '/namespaces/team-b/quotas', OP, { archiveBytes: 10 })).status).toBe(200);
    await sleep(3100);
    const bytes = await deploy(b, 'only-b', "module.exports = () => 'x';");
    expect(bytes.status).toBe(413);
    expect((await req('PUT', '/namespaces/team-b/quotas', OP, {})).status).toBe(200);
  }, 60_000);

  it('a namespace flooding its running limit does not hold up its neighbour', async () => {
    const b = keys['b-developer']!.key;
    const a = keys['a-developer']!.key;
    expect((await req('PUT', '/namespaces/team-b/quotas', OP, { running: 1 })).status).toBe(200);
    await sleep(3100);
    expect((await deploy(b, 'only-b', 'module.exports = () => new Promise((r) => setTimeout(() => r("slow"), 1500));')).status).toBe(201);
    await invoke(b, 'only-b'); // its container warm
    const flood = await Promise.all(Array.from({ length: 12 }, () => invoke(b, 'only-b', {}, false)));
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await invoke(a, 'hello');
      latencies.push(performance.now() - t0);
      expect(r.body.result, JSON.stringify(r.body)).toBe('from A');
    }
    // While the neighbour's calls ran, team-b still had calls waiting: the neighbour went past them.
    const pendingB = (await req<CallRecord[]>('GET', '/calls?format=list&status=PENDING', b)).body.length;
    expect(pendingB).toBeGreaterThan(0);
    const bCalls = await Promise.all(flood.map((r) => ended(b, r.body.callNum)));
    expect(bCalls.every((c) => c.status === 'DONE')).toBe(true);
    // Never two of team-b's calls running at once.
    const spans = bCalls.map((c) => [Date.parse(c.startedAt!), Date.parse(c.finishedAt!)] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1] - 50);
    latencies.sort((x, y) => x - y);
    console.log(
      `neighbour while team-b floods: p50 ${latencies[9]!.toFixed(1)} ms, p99 ${latencies[19]!.toFixed(1)} ms; team-b pending ${pendingB}`,
    );
    expect((await req('PUT', '/namespaces/team-b/quotas', OP, {})).status).toBe(200);
  }, 120_000);
});

describe('web paths and the end of a namespace', () => {
  it('a public function of a namespace answers anonymous callers at /ns/NAMESPACE/function/NAME', async () => {
    const dev = keys['a-developer']!.key;
    expect((await deploy(dev, 'pub', "module.exports = () => 'public A';", { public: 'true' })).status).toBe(201);
    const anonymous = await fetch(`${p.api}/ns/team-a/function/pub`);
    expect([anonymous.status, await anonymous.text()]).toEqual([200, 'public A']);
    expect((await fetch(`${p.api}/function/pub`)).status).toBe(401); // the default namespace has no such function
    expect((await fetch(`${p.api}/ns/team-a/function/hello`)).status).toBe(401); // not public
    const own = await fetch(`${p.api}/ns/team-a/function/hello`, { headers: { authorization: `Bearer ${keys['a-invoker']!.key}` } });
    expect(await own.text()).toBe('from A');
    const other = await fetch(`${p.api}/ns/team-a/function/pub`, { headers: { authorization: `Bearer ${keys['b-invoker']!.key}` } });
    expect(other.status).toBe(404); // a key reaches its own namespace only
    expect((await req('DELETE', '/functions/pub', dev)).status).toBe(200);
  });

  it('a namespace is removed by the operator once empty, with its keys and secrets', async () => {
    expect((await req('POST', '/namespaces', OP, { name: 'team-c' })).status).toBe(201);
    const admin = await makeKey('team-c', 'admin');
    expect((await deploy(admin.key, 'f', "module.exports = () => 'c';")).status).toBe(201);
    expect((await req('POST', '/secrets', admin.key, { name: 's', value: 'v' })).status).toBe(201);
    expect((await req('DELETE', '/namespaces/team-c', admin.key)).status).toBe(403);
    const busy = await req<{ error: string }>('DELETE', '/namespaces/team-c', OP);
    expect([busy.status, busy.body.error]).toEqual([409, expect.stringMatching(/still has 1 function\(s\) \(f\)/)]);
    expect((await req('DELETE', '/functions/f', admin.key)).status).toBe(200);
    expect((await req('DELETE', '/namespaces/team-c', OP)).body).toEqual({ deleted: 'team-c', keys: 1, calls: 0, idempotencyKeys: 0 });
    expect((await req('GET', '/functions', admin.key)).status).toBe(401); // its keys went with it
    expect((await req<{ name: string }[]>('GET', '/namespaces', OP)).body.map((n) => n.name)).not.toContain('team-c');
    expect((await req('DELETE', '/namespaces/team-c', OP)).status).toBe(404);
    expect((await req('DELETE', '/namespaces/default', OP)).status).toBe(409);
    // A namespace made again under the name starts empty: no secret of the old one comes back.
    expect((await req('POST', '/namespaces', OP, { name: 'team-c' })).status).toBe(201);
    const again = await makeKey('team-c', 'admin');
    expect((await req('GET', '/secrets', again.key)).body).toEqual([]);
  });
});
