// The REST API fuzzed from its own OpenAPI document (api/openapi.json) with fast-check, under each kind of
// caller: the invoker, developer and admin keys of namespace A, the admin key of namespace B, no
// credentials, a wrong token, and the operator. Each request is one operation of the document with its path
// parameters, query, headers and body drawn from the document's schemas (and sometimes from just outside
// them: other names, wrong types, stray fields), or names of what exists in either namespace. Every answer
// must be below 500 (a function's own failure on its web path excepted, which says so in X-Zfaas-Status),
// an answer to a caller of namespace A or to an anonymous one never names what only namespace B holds,
// and every call an answer accepted ends in a final state. A failure prints fast-check's seed and path.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, ROOT, startUp, upload, waitFor, type Platform } from './helpers/platform.js';

const OP = `fuzz-operator-${randomBytes(8).toString('hex')}`;
const B_MARK = `bsecret${randomBytes(3).toString('hex')}`; // in every name only namespace B holds
// Only inside what namespace B holds (a secret's value, a runtime's command, a call's params), never in a
// request: an answer that carries it has shown B's data to someone else.
const B_HIDDEN = `bhidden${randomBytes(3).toString('hex')}`;
const RUNS = Number(process.env.ZFAAS_FUZZ_RUNS ?? 2000);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
interface Schema {
  $ref?: string;
  type?: string | string[];
  enum?: Json[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  oneOf?: Schema[];
  anyOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  additionalProperties?: boolean | Schema;
}
interface Parameter {
  $ref?: string;
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: Schema;
}
interface Operation {
  method: string;
  path: string;
  parameters: Parameter[];
  body?: { type: string; schema?: Schema };
}

let p: Platform;
let doc: {
  paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content: Record<string, { schema?: Schema }> } }>>;
  components: { schemas: Record<string, Schema>; parameters: Record<string, Parameter> };
};
let ops: Operation[];
const keys: Record<string, string> = {};
const accepted = new Set<number>();
// Words holding B_MARK that a caller outside B wrote into its own namespace (a request it made that was
// accepted, e.g. an image named so): its own data, which its answers may quote back.
const planted = new Set<string>();
const MARKED = new RegExp(`[^"\\s/?&=]*${B_MARK}[^"\\s/?&=]*`, 'g');
// Names that exist, to be drawn as path parameters: A's and B's (B's carry B_MARK).
const NAMES = { a: ['hello-a', 'fuzz-rt-a', 'a-secret'], b: [`${B_MARK}-fn`, `${B_MARK}-rt`, `${B_MARK}-sec`] };

const resolve = <T extends { $ref?: string }>(x: T): T => {
  if (!x.$ref) return x;
  const [, , kind, name] = x.$ref.split('/');
  return resolve((doc.components as unknown as Record<string, Record<string, T>>)[kind!]![name!]!);
};

// A value for a schema: mostly within it, sometimes just outside (another type, a stray field).
function valueOf(schema: Schema | undefined, depth = 0): fc.Arbitrary<Json> {
  const s = schema ? resolve(schema) : {};
  const loose = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(...NAMES.a, ...NAMES.b),
  );
  if (depth > 3) return loose;
  const within = ((): fc.Arbitrary<Json> => {
    if (s.enum) return fc.constantFrom(...s.enum);
    const alts = s.oneOf ?? s.anyOf;
    if (alts) return fc.oneof(...alts.map((x) => valueOf(x, depth + 1)));
    if (s.allOf) return valueOf(s.allOf[0], depth + 1);
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    switch (type) {
      case 'integer':
        return fc.integer({ min: s.minimum ?? -5, max: Math.min(s.maximum ?? 100_000, 100_000) });
      case 'number':
        return fc.double({ min: s.minimum ?? -5, max: s.maximum ?? 1000, noNaN: true });
      case 'boolean':
        return fc.boolean();
      case 'string':
        return fc.oneof(fc.constantFrom(...NAMES.a, ...NAMES.b), fc.stringMatching(/^[A-Za-z0-9._-]{1,16}$/), fc.string({ maxLength: 20 }));
      case 'array':
        return fc.array(valueOf(s.items, depth + 1), { maxLength: 3 });
      case 'object': {
        const props = Object.entries(s.properties ?? {});
        if (!props.length) return fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), loose, { maxKeys: 3 });
        return fc.record(Object.fromEntries(props.map(([k, v]) => [k, valueOf(v, depth + 1)])), {
          requiredKeys: (s.required ?? []).filter((k) => s.properties?.[k]),
        }) as fc.Arbitrary<Json>;
      }
      default:
        return fc.oneof(loose, fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), loose, { maxKeys: 3 }));
    }
  })();
  return fc.oneof({ weight: 5, arbitrary: within }, { weight: 1, arbitrary: loose });
}

const CALLERS = ['a-invoker', 'a-developer', 'a-admin', 'b-admin', 'none', 'bad', 'operator'] as const;
type Caller = (typeof CALLERS)[number];
// Wrong tokens spend the guessing budget of the address they come from (all of these come from one): a few
// show the refusal without locking every other caller out.
const callerArb: fc.Arbitrary<Caller> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...CALLERS.filter((c) => c !== 'bad')) },
  { weight: 1, arbitrary: fc.constant('bad' as const) },
);
const authOf = (c: Caller): Record<string, string> =>
  c === 'none' ? {} : { authorization: `Bearer ${c === 'operator' ? OP : c === 'bad' ? 'fuzz-wrong-token-0123456789abcdef' : keys[c]!}` };

interface Req {
  caller: Caller;
  op: Operation;
  path: Record<string, Json>;
  query: Record<string, Json>;
  headers: Record<string, Json>;
  body: Json;
}

// Calls of functions that exist (in A, B and the operator's default namespace), by any caller, through
// /invokeFunction and the web path, with random params: so that many requests are accepted and run.
const invokeArb = (): fc.Arbitrary<Req> =>
  fc
    .record({
      caller: callerArb,
      fn: fc.constantFrom(NAMES.a[0]!, NAMES.b[0]!, 'hello-d'),
      params: valueOf(undefined),
      web: fc.boolean(),
      wait: fc.boolean(),
    })
    .map(({ caller, fn, params, web, wait }): Req => {
      const op = ops.find((o) => (web ? o.method === 'POST' && o.path === '/function/{target}' : o.path === '/invokeFunction'))!;
      return web
        ? { caller, op, path: { target: fn }, query: {}, headers: {}, body: params }
        : { caller, op, path: {}, query: {}, headers: {}, body: { funcName: fn, params, ...(wait ? { wait: 5 } : {}) } as Json };
    });

const reqArb = (): fc.Arbitrary<Req> => fc.oneof({ weight: 3, arbitrary: docArb() }, { weight: 1, arbitrary: invokeArb() });

const docArb = (): fc.Arbitrary<Req> =>
  fc.nat(ops.length - 1).chain((i) => {
    const op = ops[i]!;
    const params = (where: Parameter['in']) =>
      fc.record(
        Object.fromEntries(
          op.parameters.filter((x) => x.in === where && x.name !== 'authorization').map((x) => [x.name, valueOf(x.schema, 1)]),
        ),
        { requiredKeys: op.parameters.filter((x) => x.in === where && (x.required || where === 'path')).map((x) => x.name) },
      ) as fc.Arbitrary<Record<string, Json>>;
    return fc.record({
      caller: callerArb,
      op: fc.constant(op),
      path: params('path'),
      query: params('query'),
      headers: params('header'),
      body: op.body ? valueOf(op.body.schema) : fc.constant(null),
    });
  });

// What a request with these values looks like on the wire.
function urlOf(r: Req): string {
  let path = r.op.path.replace(/\{([^}]+)\}/g, (_, k: string) => encodeURIComponent(String(r.path[k] ?? 'x')));
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(r.query)) if (v !== undefined) q.set(k, typeof v === 'string' ? v : JSON.stringify(v));
  if ([...q].length) path += `?${q.toString()}`;
  return path;
}

async function send(r: Req): Promise<{ status: number; text: string; headers: Headers }> {
  const headers: Record<string, string> = { ...authOf(r.caller) };
  for (const [k, v] of Object.entries(r.headers))
    if (v !== undefined && k.toLowerCase() !== 'content-length') headers[k] = String(v).replace(/[^\x20-\x7e]/g, '');
  let body: BodyInit | undefined;
  if (r.op.body?.type === 'application/json') {
    body = JSON.stringify(r.body);
    headers['content-type'] = 'application/json';
  } else if (r.op.body?.type === 'multipart/form-data') {
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': 'module.exports = (p) => p;' }))]), 'f.tar.gz');
    if (r.body && typeof r.body === 'object' && !Array.isArray(r.body))
      for (const [k, v] of Object.entries(r.body)) form.append(k, String(v));
    body = form;
  } else if (r.op.body) {
    body = JSON.stringify(r.body);
    headers['content-type'] = r.op.body.type;
  }
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  try {
    const res = await fetch(`${p.api}${urlOf(r)}`, { method: r.op.method, headers, body, signal: ac.signal });
    if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      await res.body?.cancel();
      return { status: res.status, text: '', headers: res.headers };
    }
    return { status: res.status, text: await res.text(), headers: res.headers };
  } finally {
    clearTimeout(timer);
  }
}

beforeAll(async () => {
  doc = JSON.parse(await readFile(join(ROOT, 'api', 'openapi.json'), 'utf8')) as typeof doc;
  ops = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, o] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const content = Object.entries(o.requestBody?.content ?? {})[0];
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: (o.parameters ?? []).map((x) => resolve(x)),
        ...(content ? { body: { type: content[0], schema: content[1].schema } } : {}),
      });
    }
  }
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: OP });
  const op = { authorization: `Bearer ${OP}`, 'content-type': 'application/json' };
  for (const ns of ['team-a', B_MARK]) expect((await http('POST', `${p.api}/namespaces`, { name: ns }, op)).status).toBe(201);
  for (const [ns, role, name] of [
    ['team-a', 'invoker', 'a-invoker'],
    ['team-a', 'developer', 'a-developer'],
    ['team-a', 'admin', 'a-admin'],
    [B_MARK, 'admin', 'b-admin'],
  ] as const) {
    const k = await http<{ key: string }>('POST', `${p.api}/namespaces/${ns}/keys`, { role }, op);
    keys[name] = k.body.key;
  }
  const dfn = await packFiles({ 'index.js': 'module.exports = (p) => ({ echo: p });' });
  expect((await upload(`${p.api}/registerFunction/node/hello-d`, dfn, 'f.tar.gz', {}, { authorization: `Bearer ${OP}` })).status).toBe(201);
  // What each namespace holds: a function, a private runtime and a secret; B's all carry B_MARK.
  const fn = await packFiles({ 'index.js': 'module.exports = (p) => ({ echo: p });' });
  for (const [who, names] of [
    ['a-admin', NAMES.a],
    ['b-admin', NAMES.b],
  ] as const) {
    const auth = { authorization: `Bearer ${keys[who]}` };
    const hidden = who === 'b-admin' ? B_HIDDEN : 'a';
    const rt = await http(
      'POST',
      `${p.api}/registerRuntime`,
      {
        name: names[1],
        image: 'zfaas/node:latest',
        path: '/ws',
        run: `node /opt/zfaas/loader.js --once # ${hidden}`,
        loader: 'node /opt/zfaas/loader.js',
      },
      auth,
    );
    expect(rt.status, JSON.stringify(rt.body)).toBe(201);
    expect((await upload(`${p.api}/registerFunction/node/${names[0]}`, fn, 'f.tar.gz', { public: 'true' }, auth)).status).toBe(201);
    expect((await http('POST', `${p.api}/secrets`, { name: names[2], value: `${hidden}-value` }, auth)).status).toBe(201);
    const call = await http<{ callNum: number }>(
      'POST',
      `${p.api}/invokeFunction`,
      { funcName: names[0], params: { n: hidden }, wait: true },
      auth,
    );
    expect(call.status).toBe(200);
  }
}, 240_000);

afterAll(async () => p?.stop());

it(`answers ${RUNS} requests drawn from the OpenAPI document, under every caller, below 500 and within each namespace`, async () => {
  const counts: Record<string, number> = {};
  await fc.assert(
    fc.asyncProperty(reqArb(), async (r) => {
      const a = await send(r);
      counts[`${a.status}`] = (counts[`${a.status}`] ?? 0) + 1;
      const what = `${r.caller} ${r.op.method} ${urlOf(r)} -> ${a.status} ${a.text.slice(0, 300)}`;
      if (r.op.path.startsWith('/node/') && a.status < 300) console.log(`node changed: ${JSON.stringify(r.body)}`);
      // A function's own failure on its web path is its answer, not the platform's.
      if (!a.headers.get('x-zfaas-status')) expect(a.status, what).toBeLessThan(500);
      if (r.caller !== 'b-admin' && r.caller !== 'operator') {
        expect(a.text.includes(B_HIDDEN), `shows namespace B's data: ${what}`).toBe(false);
        // B's names only where the request itself named them (a refusal that quotes what was asked)
        const request = JSON.stringify([urlOf(r), r.headers, r.body]);
        const asked = request.includes(B_MARK);
        const own = [...planted].reduce((t, w) => t.split(w).join(''), a.text);
        if (!asked) expect(own.includes(B_MARK), `names namespace B: ${what}`).toBe(false);
        if (asked && a.status < 300) for (const w of request.match(MARKED) ?? []) planted.add(w);
      }
      const call = Number(a.headers.get('x-zfaas-call') ?? NaN);
      if (Number.isInteger(call) && call > 0) accepted.add(call);
      if (r.op.path === '/invokeFunction' && (a.status === 200 || a.status === 202)) {
        const n = (JSON.parse(a.text) as { callNum?: number }).callNum;
        if (n) accepted.add(n);
      }
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  console.log(`statuses: ${JSON.stringify(counts)}; ${accepted.size} calls accepted`);
  // Every call an answer accepted ends in a final state.
  const op = { authorization: `Bearer ${OP}` };
  for (const n of accepted) {
    let last: unknown;
    await waitFor(
      `call ${n} to be final`,
      async () => {
        // the operator reads a namespace's calls in that namespace
        for (const ns of ['default', 'team-a', B_MARK]) {
          const c = await http<{ status: string }>('GET', `${p.api}/call/${n}`, undefined, { ...op, 'x-zfaas-namespace': ns });
          if (c.status !== 200) continue;
          last = c.body;
          return ['DONE', 'ERROR', 'TIMEOUT'].includes(c.body.status) ? true : undefined;
        }
        return undefined;
      },
      120_000,
    ).catch(async (e: Error) => {
      const nodes = (await http('GET', `${p.api}/nodes`, undefined, op)).body;
      throw new Error(`${e.message}: ${JSON.stringify(last)}; nodes ${JSON.stringify(nodes)}\n${p.proc.output().slice(-3000)}`);
    });
  }
  expect((await http<{ ok: boolean }>('GET', `${p.api}/health`)).body.ok).toBe(true);
}, 900_000);
