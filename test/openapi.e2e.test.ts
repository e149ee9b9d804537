// The OpenAPI description: it is valid OpenAPI 3.1, it names every route the handlers serve, and real
// responses of a running platform match its schemas (validated with ajv).
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, ROOT, startUp, upload, waitFor, type Platform, type Reply } from './helpers/platform.js';

interface Spec {
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, { schema?: unknown }> }> }>>;
  components: { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> };
}

let p: Platform;
let spec: Spec;
const ajv = new Ajv2020({ strict: false, allErrors: true });
formats.default(ajv);
const checked = new Set<string>();

beforeAll(async () => {
  p = await startUp(['--miniworkers', '1']);
  spec = (await http<Spec>('GET', `${p.api}/openapi.json`)).body;
  ajv.addSchema(spec as object, 'zfaas');
});
afterAll(async () => p?.stop());

const pointer = (...parts: string[]): string => parts.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

/** Validates a real reply against the schema the document gives for (path, method, status). */
function expectDocumented(method: string, path: string, r: Reply, type = 'application/json'): void {
  const op = spec.paths[path]?.[method.toLowerCase()];
  expect(op, `${method} ${path} is not in the document`).toBeDefined();
  const status = String(r.status);
  const response = op!.responses[status];
  expect(response, `${method} ${path} answered ${status}, which the document does not list`).toBeDefined();
  const named = response!.$ref?.replace('#/components/responses/', '');
  const where = named ? ['components', 'responses', named] : ['paths', path, method.toLowerCase(), 'responses', status];
  const content = named ? spec.components.responses[named]!.content : response!.content;
  expect(content?.[type], `${method} ${path} ${status}: no ${type} content`).toBeDefined();
  const validate = ajv.getSchema(`zfaas#/${pointer(...where, 'content', type, 'schema')}`)!;
  const ok = validate(r.body);
  expect(ok, `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(r.body).slice(0, 600)}`).toBe(true);
  checked.add(`${method} ${path}`);
}

it('is a valid OpenAPI 3.1 document', async () => {
  const v = new Validator();
  const res = await v.validate(structuredClone(spec) as unknown as Parameters<Validator['validate']>[0]);
  expect(res.errors ?? []).toEqual([]);
  expect(res.valid).toBe(true);
  expect(v.version).toBe('3.1');
});

it('describes every route the handlers serve', async () => {
  const dir = join(ROOT, 'api', 'handlers');
  const routes: string[] = [];
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.ts'))) {
    const src = await readFile(join(dir, f), 'utf8');
    // route(r, 'METHOD', PATH, RULE, ...): every route is registered with its rule (api/routes.ts).
    for (const m of src.matchAll(/route\(\s*r,\s*'(GET|POST|PUT|DELETE)',\s*(\[[^\]]*\]|'[^']+')/g)) {
      for (const path of m[2]!.match(/'[^']+'/g)!) routes.push(`${m[1]!.toLowerCase()} ${path.slice(1, -1)}`);
    }
  }
  expect(routes.length).toBeGreaterThan(20);
  // Express ":name" and OpenAPI "{name}" are the same slot, whatever each calls it.
  const shape = (path: string): string => path.replace(/:[^/]+|\{[^}]+\}/g, '{}');
  const documented = new Set(Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${shape(path)}`)));
  // The dashboard's own files are not the API.
  const missing = routes.filter((r) => r !== 'get /index.html' && !r.startsWith('get /ui/')).filter((r) => !documented.has(shape(r)));
  expect(missing).toEqual([]);
});

it('matches the real responses of a running platform', async () => {
  const api = p.api;
  const call = async (method: string, path: string, tpl: string, body?: unknown): Promise<Reply> => {
    const r = await http(method, `${api}${path}`, body);
    expectDocumented(method, tpl, r);
    return r;
  };

  // runtimes
  await call('POST', '/registerRuntime', '/registerRuntime', {
    image: 'zfaas/node:latest',
    name: 'node2',
    path: '/ws',
    run: 'node /opt/zfaas/loader.js --once',
  });
  await call('GET', '/runtimes', '/runtimes');
  await call('GET', '/runtimes?detail=true', '/runtimes');
  await call('GET', '/runtime/node', '/runtime/{name}');
  await call('GET', '/runtime/nope', '/runtime/{name}');
  await call('POST', '/registerRuntime', '/registerRuntime', { image: 'x', run: 'y', bogus: 1 });

  // functions: two versions, one that fails
  const code = 'module.exports = (p) => { if (p.fail) throw new Error("asked to fail"); console.log("seen", p.n); return { n: p.n }; };';
  const deployed = await upload(`${api}/registerFunction/node/echo?policy=function`, await packFiles({ 'index.js': code }), 'echo.tar.gz');
  expectDocumented('POST', '/registerFunction/{runtime}/{funcName}', deployed);
  expectDocumented(
    'POST',
    '/registerFunction/{runtime}/{funcName}',
    await upload(`${api}/registerFunction/node/echo`, await packFiles({ 'index.js': code }), 'echo.tar.gz', { timeout: '20' }),
  );
  expectDocumented(
    'POST',
    '/registerFunction/{runtime}/{funcName}',
    await upload(`${api}/registerFunction/nope/echo`, Buffer.from('x'), 'x.tar.gz'),
  );
  // a container-image function (stored as given; a node pulls its image at its first call), and a bad reference
  expect(
    (await call('POST', '/registerImageFunction/img', '/registerImageFunction/{funcName}', { image: 'acme/api:1', port: 9000 })).status,
  ).toBe(201);
  expect((await call('POST', '/registerImageFunction/img', '/registerImageFunction/{funcName}', { image: 'Not Valid' })).status).toBe(400);
  await call('GET', '/functions', '/functions');
  await call('GET', '/functions?detail=true', '/functions');
  await call('GET', '/functions/echo', '/functions/{name}');
  await call('POST', '/functions/echo/rollback', '/functions/{name}/rollback', {});

  // calls, every form
  const accepted = await call('POST', '/invokeFunction', '/invokeFunction', { funcName: 'echo', params: { n: 1 } });
  expect(accepted.status).toBe(202);
  expect((await call('POST', '/invokeFunction?wait=true', '/invokeFunction', { funcName: 'echo@1', params: { n: 2 } })).status).toBe(200);
  await call('POST', '/invokeFunction', '/invokeFunction', { funcName: 'nope', params: {} });
  await call('POST', '/invokeFunction', '/invokeFunction', '{bad json');
  expect((await call('POST', '/function/echo', '/function/{target}', { n: 3 })).body).toEqual({ n: 3 });
  expect((await call('GET', '/function/echo?n=3', '/function/{target}')).body).toEqual({ n: '3' });
  expect((await call('GET', '/function/echo/a/b?n=5', '/function/{target}/{path}')).body).toEqual({ n: '5' });
  expect((await call('POST', '/function/echo/a/b', '/function/{target}/{path}', { n: 4 })).body).toEqual({ n: 4 });
  expect((await call('POST', '/function/echo', '/function/{target}', { fail: true })).status).toBe(500);
  await waitFor('call 1 to finish', async () =>
    (await http<{ status: string }>('GET', `${api}/call/1`)).body.status === 'DONE' ? true : undefined,
  );
  await call('GET', '/call/1', '/call/{callNum}');
  await call('GET', '/call/999999', '/call/{callNum}');
  await call('GET', '/call/abc', '/call/{callNum}');
  await call('DELETE', '/call/1', '/call/{callNum}'); // ended: 409
  await call('DELETE', '/call/999999', '/call/{callNum}');
  await call('GET', '/calls', '/calls');
  await call('GET', '/calls?format=list&funcName=echo&limit=2', '/calls');
  await call('GET', '/calls?status=bogus', '/calls');
  await call('GET', '/dead-letters?funcName=echo', '/dead-letters');
  await call('GET', '/dead-letters?limit=0', '/dead-letters');
  await call('POST', '/dead-letters/1/replay', '/dead-letters/{callNum}/replay', {}); // not a dead letter: 409
  await call('POST', '/dead-letters/999999/replay', '/dead-letters/{callNum}/replay', {});
  await call('DELETE', '/dead-letters/1', '/dead-letters/{callNum}');

  // batches
  const b = await call('POST', '/batch/echo', '/batch/{target}', [{ n: 1 }, { n: 2 }, { fail: true }]);
  const id = (b.body as { batchId: string }).batchId;
  await waitFor('the batch to finish', async () =>
    (await http<{ state: string }>('GET', `${api}/batch/${id}`)).body.state === 'finished' ? true : undefined,
  );
  await call('GET', `/batch/${id}`, '/batch/{id}');
  await call('GET', `/batch/${id}/results`, '/batch/{id}/results');
  await call('GET', '/batches', '/batches');
  await call('GET', '/batch/00ff', '/batch/{id}');
  await call('POST', '/batch/echo', '/batch/{target}', []);

  // nodes, service
  const nodes = await call('GET', '/nodes', '/nodes');
  const nodeId = (nodes.body as { id: string }[])[0]!.id;
  await call('PUT', `/node/${nodeId}`, '/node/{id}', { miniworkers: 1 });
  await call('PUT', '/node/nope', '/node/{id}', { miniworkers: 1 });
  await call('GET', '/health', '/health');
  await call('GET', '/metrics/functions', '/metrics/functions');
  const tl = await call('GET', '/metrics/functions/timeline', '/metrics/functions/timeline');
  expect(Object.keys((tl.body as { functions: object }).functions)).toContain('echo');
  await call('GET', '/metrics/functions/timeline?funcName=echo', '/metrics/functions/timeline');
  expect((await call('GET', '/metrics/functions/timeline?funcName=a%20b', '/metrics/functions/timeline')).status).toBe(400);
  const metrics = await fetch(`${api}/metrics`);
  expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
  expectDocumented('GET', '/metrics', { status: metrics.status, body: await metrics.text(), headers: metrics.headers }, 'text/plain');
  await call('GET', '/openapi.json', '/openapi.json');
  const page = await fetch(`${api}/`);
  expectDocumented('GET', '/', { status: page.status, body: await page.text(), headers: page.headers }, 'text/html');

  // schedules (once a year: nothing fires during the test)
  const sc = await call('POST', '/functions/echo/schedules', '/functions/{name}/schedules', { cron: '0 0 1 1 *', params: { n: 9 } });
  expect(sc.status).toBe(201);
  expect((await call('POST', '/functions/echo/schedules', '/functions/{name}/schedules', { cron: 'bad' })).status).toBe(400);
  await call('POST', '/functions/nope/schedules', '/functions/{name}/schedules', { cron: '* * * * *' });
  await call('GET', '/functions/echo/schedules', '/functions/{name}/schedules');
  const scheduleId = (sc.body as { id: string }).id;
  await call('DELETE', `/functions/echo/schedules/${scheduleId}`, '/functions/{name}/schedules/{id}');
  await call('DELETE', `/functions/echo/schedules/${scheduleId}`, '/functions/{name}/schedules/{id}'); // 404
  // broker triggers (nothing listens on port 1: the trigger stays disconnected, no message comes)
  const tr = await call('POST', '/functions/echo/triggers', '/functions/{name}/triggers', {
    type: 'redis',
    url: 'redis://127.0.0.1:1',
    source: 's',
  });
  expect(tr.status).toBe(201);
  const triggerId = (tr.body as { id: string }).id;
  expect(
    (await call('POST', '/functions/echo/triggers', '/functions/{name}/triggers', { type: 'kafka', url: 'x', source: 's' })).status,
  ).toBe(400);
  await call('GET', '/functions/echo/triggers', '/functions/{name}/triggers');
  await call('GET', `/functions/echo/triggers/${triggerId}`, '/functions/{name}/triggers/{id}');
  await call('POST', `/functions/echo/triggers/${triggerId}/pause`, '/functions/{name}/triggers/{id}/pause');
  await call('POST', `/functions/echo/triggers/${triggerId}/resume`, '/functions/{name}/triggers/{id}/resume');
  await call('DELETE', `/functions/echo/triggers/${triggerId}`, '/functions/{name}/triggers/{id}');
  await call('DELETE', `/functions/echo/triggers/${triggerId}`, '/functions/{name}/triggers/{id}'); // 404

  // tenancy: namespaces, keys, whoami, secrets (a key's role and a namespace's quota too)
  const as = async (key: string, method: string, path: string, tpl: string, body?: unknown): Promise<Reply> => {
    const r = await http(method, `${api}${path}`, body, { authorization: `Bearer ${key}` });
    expectDocumented(method, tpl, r);
    return r;
  };
  await call('GET', '/whoami', '/whoami');
  expect((await call('POST', '/namespaces', '/namespaces', { name: 'team-a', quotas: { perMinute: 1 } })).status).toBe(201);
  await call('POST', '/namespaces', '/namespaces', { name: 'team-a' }); // 409
  await call('GET', '/namespaces', '/namespaces');
  await call('GET', '/namespaces/team-a', '/namespaces/{ns}');
  await call('GET', '/namespaces/nope', '/namespaces/{ns}');
  await call('PUT', '/namespaces/team-a/quotas', '/namespaces/{ns}/quotas', { perMinute: 1, functions: 5 });
  const admin = (await call('POST', '/namespaces/team-a/keys', '/namespaces/{ns}/keys', { role: 'admin' })).body as { key: string };
  const inv = (await call('POST', '/namespaces/team-a/keys', '/namespaces/{ns}/keys', { role: 'invoker' })).body as { id: string };
  await call('GET', '/namespaces/team-a/keys', '/namespaces/{ns}/keys');
  const rotated = (await call('POST', `/namespaces/team-a/keys/${inv.id}/rotate`, '/namespaces/{ns}/keys/{id}/rotate', {})).body as {
    key: string;
  };
  await as(admin.key, 'GET', '/whoami', '/whoami');
  await as(rotated.key, 'GET', '/functions', '/functions'); // 403: an invoker
  await as(admin.key, 'POST', '/secrets', '/secrets', { name: 'db', value: 'pw' });
  await as(admin.key, 'POST', '/secrets', '/secrets', { name: 'db', value: 'pw' }); // 409
  await as(admin.key, 'PUT', '/secrets/db', '/secrets/{name}', { value: 'pw2' });
  await as(admin.key, 'GET', '/secrets', '/secrets');
  expectDocumented(
    'POST',
    '/registerFunction/{runtime}/{funcName}',
    await upload(
      `${api}/registerFunction/node/echo`,
      await packFiles({ 'index.js': code }),
      'echo.tar.gz',
      { secrets: 'db' },
      {
        authorization: `Bearer ${admin.key}`,
      },
    ),
  );
  await as(rotated.key, 'POST', '/invokeFunction', '/invokeFunction', { funcName: 'echo', params: { n: 1 } }); // 202, with `by`
  await as(rotated.key, 'POST', '/invokeFunction', '/invokeFunction', { funcName: 'echo', params: { n: 2 } }); // 429: perMinute
  await as(admin.key, 'DELETE', '/secrets/db', '/secrets/{name}');
  await as(admin.key, 'DELETE', '/secrets/db', '/secrets/{name}'); // 404
  await call('DELETE', `/namespaces/team-a/keys/${inv.id}`, '/namespaces/{ns}/keys/{id}');
  await call('DELETE', `/namespaces/team-a/keys/${inv.id}`, '/namespaces/{ns}/keys/{id}'); // 404: revoked already
  await call('DELETE', '/namespaces/team-a', '/namespaces/{ns}'); // 409: it still has a function
  expect((await call('POST', '/namespaces', '/namespaces', { name: 'team-z' })).status).toBe(201);
  expect((await call('DELETE', '/namespaces/team-z', '/namespaces/{ns}')).status).toBe(200);
  // the event stream's ticket; an old version removed, never the current one
  await call('POST', '/events/ticket', '/events/ticket');
  expect((await call('DELETE', '/functions/echo/versions/2', '/functions/{name}/versions/{version}')).status).toBe(200);
  expect((await call('DELETE', '/functions/echo/versions/1', '/functions/{name}/versions/{version}')).status).toBe(409); // current, rolled back to
  expect((await call('DELETE', '/functions/echo/versions/2', '/functions/{name}/versions/{version}')).status).toBe(404);
  // deletions last
  await call('DELETE', '/functions/echo', '/functions/{name}');
  await call('DELETE', '/functions/echo', '/functions/{name}');
  await call('DELETE', '/runtime/node2', '/runtime/{name}');

  // Every operation of the document was exercised at least once, except the event stream (next test).
  const all = Object.entries(spec.paths).flatMap(([path, ops]) =>
    Object.keys(ops)
      .filter((m) => m !== 'parameters')
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
  expect(all.filter((o) => !checked.has(o) && o !== 'GET /events')).toEqual([]);
});

it('streams call events whose data matches CallEvent', async () => {
  await upload(`${p.api}/registerFunction/node/ev`, await packFiles({ 'index.js': 'module.exports = () => "ok";' }), 'ev.tar.gz');
  const ac = new AbortController();
  const res = await fetch(`${p.api}/events?funcName=ev`, { signal: ac.signal });
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const until = async (re: RegExp): Promise<void> => {
    while (!re.test(text)) text += (await reader.read()).value ?? '';
  };
  await until(/event: hello/);
  await http('POST', `${p.api}/invokeFunction`, { funcName: 'ev', params: {} });
  await until(/"status":"DONE"[^\n]*\n\n/);
  ac.abort();
  const validate = ajv.getSchema('zfaas#/components/schemas/CallEvent')!;
  const events = [...text.matchAll(/event: call\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!) as { status: string; node?: string });
  expect(events.map((e) => e.status)).toEqual(['PENDING', 'DONE']);
  for (const e of events) expect(validate(e), ajv.errorsText(validate.errors)).toBe(true);
  expect(events[1]!.node).toBe(await p.nodeId());
});
