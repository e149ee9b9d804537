// Issue 6 item 4: hostile input. A fuzzer over every endpoint of the REST API (malformed and oversized
// bodies, wrong types and content types, unknown and odd names, odd bytes), a corpus of crafted archives,
// and the CLI given hostile input. Always a 4xx with a clear JSON message (never a 5xx, never a hang), the
// service stays up, nothing is written outside its data dir, its memory stays bounded.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, realpath, rm, writeFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveError, inspectArchive } from '../common/archive/index.js';
import { NAME_RE, RuntimeInputSchema } from '../common/model.js';
import { NodeSettingsSchema } from '../protocol/broker.js';
import { packFiles } from './helpers/archives.js';
import { neutralizedArchive, refusedCorpus, tar, tgz, zip } from './helpers/corpus.js';
import { CLI, http, labelledContainers, startUp, tempDir, type Platform } from './helpers/platform.js';

let p: Platform;
let nodeId: string;
let isolated: { tmp: string; home: string };
const MARK = `zfuzz${randomBytes(4).toString('hex')}`;
const accepted = new Set<string>(); // digests of the archives the API stored

interface Answer {
  status: number;
  type: string;
  text: string;
  json?: { error?: unknown };
}

/** One request; a reply that takes more than 20 s is a hang and fails the test. */
async function send(method: string, path: string, init: { body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Answer> {
  const r = await fetch(`${p.api}${path}`, { method, body: init.body, headers: init.headers, signal: AbortSignal.timeout(20_000) });
  const text = await r.text();
  let json: Answer['json'];
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    json = undefined;
  }
  return { status: r.status, type: r.headers.get('content-type') ?? '', text, json };
}

/** A refusal as the README promises it: 4xx, JSON {"error": "..."} with a short readable message. */
function refusal(a: Answer, what: string): string | null {
  if (a.status < 400 || a.status > 499) return `${what}: status ${a.status} ${a.text.slice(0, 300)}`;
  if (!a.type.startsWith('application/json')) return `${what}: ${a.status} is not JSON (${a.type}): ${a.text.slice(0, 200)}`;
  const e = a.json?.error;
  if (typeof e !== 'string' || e.length === 0 || e.length > 2000)
    return `${what}: ${a.status} without a clear error: ${a.text.slice(0, 300)}`;
  if (/\n\s+at /.test(e)) return `${what}: a stack trace in the error: ${e.slice(0, 300)}`;
  return null;
}

function expectRefused(a: Answer, what: string, status?: number): void {
  expect(refusal(a, what), what).toBeNull();
  if (status !== undefined) expect(a.status, `${what}: ${a.text.slice(0, 200)}`).toBe(status);
}

const json = (v: unknown): { body: string; headers: Record<string, string> } => ({
  body: typeof v === 'string' ? v : JSON.stringify(v),
  headers: { 'content-type': 'application/json' },
});

function form(archive: Buffer | null, fields: [string, string][] = [], filename = 'fn.tar.gz', field = 'module'): FormData {
  const f = new FormData();
  if (archive) f.append(field, new Blob([new Uint8Array(archive)]), filename);
  for (const [k, v] of fields) f.append(k, v);
  return f;
}

// --- what is watched outside the data dir -------------------------------------------------------------

async function listing(dir: string, depth = 3): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, level: number): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const full = join(d, n);
      out.push(full);
      if (
        level < depth &&
        (await lstat(full).then(
          (s) => s.isDirectory(),
          () => false,
        ))
      )
        await walk(full, level + 1);
    }
  };
  await walk(dir, 1);
  return out.sort();
}

async function treeRss(root: number): Promise<{ mib: number; fds: number }> {
  const procs = new Map<number, number>();
  const rss = new Map<number, number>();
  for (const n of await readdir('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    const status = await readFile(`/proc/${n}/status`, 'utf8').catch(() => '');
    procs.set(Number(n), Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0));
    rss.set(Number(n), Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0));
  }
  let kib = 0;
  for (const [pid, ppid0] of procs) {
    let cur = pid;
    let ppid = ppid0;
    for (let hops = 0; cur !== root && cur > 1 && hops < 64; hops++) [cur, ppid] = [ppid, procs.get(ppid) ?? 0];
    if (cur === root) kib += rss.get(pid) ?? 0;
  }
  const fds = (await readdir(`/proc/${root}/fd`).catch(() => [])).length;
  return { mib: Math.round(kib / 1024), fds };
}

const before: { tmp: string[]; home: string[]; rss: number; fds: number } = { tmp: [], home: [], rss: 0, fds: 0 };

beforeAll(async () => {
  isolated = { tmp: await tempDir('zfaas-fuzz-tmp-'), home: await tempDir('zfaas-fuzz-home-') };
  // The service gets a TMPDIR and a HOME of its own, watched for anything written there.
  p = await startUp(['--miniworkers', '2'], { TMPDIR: isolated.tmp, HOME: isolated.home });
  nodeId = await p.nodeId();
  const echo = await packFiles({ 'index.js': 'module.exports = (p) => ({ echo: p });' });
  const r = await send('POST', '/registerFunction/node/echo', { body: form(echo, [['policy', 'function']]) });
  expect(r.status, r.text).toBe(201);
  accepted.add(createHash('sha256').update(echo).digest('hex'));
  expect((await http('POST', `${p.api}/function/echo`, { x: 1 })).body).toEqual({ echo: { x: 1 } });
  before.tmp = await listing(isolated.tmp);
  before.home = await listing(isolated.home);
  const m = await treeRss(p.proc.child.pid!);
  before.rss = m.mib;
  before.fds = m.fds;
});

afterAll(async () => {
  if (!p) return;
  await p.proc.stop();
  expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
  // Nothing stored: the DB holds exactly the archives the API accepted, none of the refused ones.
  const db = new Level<string, Buffer>(join(p.data, 'db'), { valueEncoding: 'buffer' });
  const keys = await db.sublevel<string, Buffer>('ar', { valueEncoding: 'buffer' }).keys().all();
  await db.close();
  expect(new Set(keys)).toEqual(accepted);
  await rm(p.data, { recursive: true, force: true });
  for (const d of Object.values(isolated ?? {})) await rm(d, { recursive: true, force: true });
});

// --- the REST API -------------------------------------------------------------------------------------

// Names that no route can take: fail NAME_RE, or valid and unknown, or odd on the wire.
const badName = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !NAME_RE.test(s) && s.length > 0),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }).filter((s) => !NAME_RE.test(s)),
  fc.constantFrom(
    '..',
    '.',
    '../../etc/passwd',
    '-x',
    '_x',
    ' ',
    'a b',
    'ä',
    'x'.repeat(129),
    'x'.repeat(6000),
    '__proto__',
    'a/b',
    'a\\b',
    '\u0000',
    'a\u202eb',
    'a@b',
    '@1',
    '\r\nX-Injected: 1',
  ),
);
const unknownName = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9._-]{0,30}$/).map((s) => `${MARK}-${s}`),
  fc.constantFrom('constructor', 'toString', 'valueOf', 'hasOwnProperty', 'prototype', 'isPrototypeOf', 'length', '0', '1e9'),
);
// (not %2e%2e: the client itself resolves it as ".." before sending)
const rawPath = fc.constantFrom('%', '%zz', '%ff', '%c0%ae%c0%ae', '%00', '..%2f..%2fetc%2fpasswd', 'a%2fb', '%E2%80%AE', '%2e%2e%2f');

type Route = {
  method: string;
  path: (n: string) => string;
  unknown: number;
  body?: () => { body?: BodyInit; headers?: Record<string, string> };
};
let smallArchive: Buffer;
const ROUTES: Route[] = [
  { method: 'GET', path: (n) => `/runtime/${n}`, unknown: 404 },
  { method: 'DELETE', path: (n) => `/runtime/${n}`, unknown: 404 },
  { method: 'GET', path: (n) => `/functions/${n}`, unknown: 404 },
  { method: 'DELETE', path: (n) => `/functions/${n}`, unknown: 404 },
  { method: 'POST', path: (n) => `/functions/${n}/rollback`, unknown: 404, body: () => json({}) },
  { method: 'POST', path: (n) => `/function/${n}`, unknown: 404, body: () => json({ a: 1 }) },
  { method: 'POST', path: (n) => `/registerFunction/${n}/fn`, unknown: 404, body: () => ({ body: form(smallArchive) }) },
  { method: 'GET', path: (n) => `/call/${n}`, unknown: 400 },
  { method: 'PUT', path: (n) => `/node/${n}`, unknown: 404, body: () => json({ miniworkers: 2 }) },
];

describe('the REST API under a fuzzer', () => {
  beforeAll(async () => {
    smallArchive = await packFiles({ 'index.js': 'module.exports = () => 1;' });
  });

  it('every route refuses bad and unknown names with a 4xx and a JSON message', async () => {
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.oneof(
          badName.filter((n) => n !== '.' && n !== '..').map((n) => ({ n: encodeURIComponent(n), known: false })),
          unknownName.map((n) => ({ n, known: true })),
          rawPath.map((n) => ({ n, known: false })),
        ),
        async (route, { n, known }) => {
          const path = route.path(n);
          const a = await send(route.method, path, route.body?.());
          const bad = refusal(a, `${route.method} ${path.slice(0, 120)}`);
          if (bad) failures.push(bad);
          // A well-formed unknown name is "not found" (a number is expected for /call/).
          else if (known && a.status !== route.unknown)
            failures.push(`${route.method} ${path}: ${a.status} (expected ${route.unknown}) ${a.text.slice(0, 200)}`);
        },
      ),
      { numRuns: 400 },
    );
    expect(failures).toEqual([]);
  });

  it('refuses new functions with bad names or under unknown runtimes, storing nothing', async () => {
    await fc.assert(
      fc.asyncProperty(badName, async (n) => {
        fc.pre(n !== '.' && n !== '..'); // a client resolves these path segments before sending
        const a = await send('POST', `/registerFunction/node/${encodeURIComponent(n)}`, { body: form(smallArchive) });
        expectRefused(a, `function name ${JSON.stringify(n).slice(0, 80)}`);
      }),
      { numRuns: 60 },
    );
    expect((await http<string[]>('GET', `${p.api}/functions`)).body).toEqual(['echo']);
  });

  it('JSON endpoints refuse malformed, mistyped and wrongly typed bodies', async () => {
    const targets = [
      { path: '/registerRuntime', valid: (v: unknown) => RuntimeInputSchema.safeParse(v).success },
      { path: '/invokeFunction', valid: (v: unknown) => JSON.stringify(v ?? null).includes('"echo') },
      { path: `/functions/${MARK}-nope/rollback`, valid: () => false },
      { path: `/node/${nodeId}`, method: 'PUT', valid: (v: unknown) => NodeSettingsSchema.safeParse(v).success },
      { path: `/function/${MARK}-nope`, valid: () => false },
    ];
    const contentType = fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/xml',
      'multipart/form-data; boundary=zz',
      'application/json; charset=utf-16',
      'application/json; charset=bogus',
      '*/*',
      '',
    );
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      // the right keys with the wrong types
      fc
        .record({
          funcName: fc.oneof(
            fc.integer(),
            fc.boolean(),
            fc.constant(null),
            fc.array(fc.string()),
            fc.object(),
            fc.string({ maxLength: 300 }),
          ),
          params: fc.jsonValue({ maxDepth: 3 }),
          wait: fc.jsonValue({ maxDepth: 1 }),
        })
        .map((v) => Buffer.from(JSON.stringify(v))),
      fc
        .record(
          {
            image: fc.jsonValue({ maxDepth: 2 }),
            path: fc.jsonValue({ maxDepth: 2 }),
            run: fc.jsonValue({ maxDepth: 2 }),
            name: fc.jsonValue({ maxDepth: 1 }),
          },
          { requiredKeys: [] },
        )
        .map((v) => Buffer.from(JSON.stringify(v))),
      fc
        .record(
          { miniworkers: fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double(), fc.string()), bogus: fc.jsonValue({ maxDepth: 1 }) },
          { requiredKeys: [] },
        )
        .map((v) => Buffer.from(JSON.stringify(v))),
      // valid JSON broken by one cut
      fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat()).map(([v, cut]) => {
        const s = JSON.stringify(v) ?? 'null';
        return Buffer.from(s.slice(0, cut % Math.max(1, s.length)));
      }),
      // prototype pollution attempts
      fc
        .constantFrom(
          '{"__proto__": {"admin": true}}',
          '{"constructor": {"prototype": {"admin": true}}}',
          '{"funcName": "__proto__", "params": {}}',
          '{"funcName": {"__proto__": 1}}',
        )
        .map((s) => Buffer.from(s)),
    );
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...targets), body, contentType, async (t, b, type) => {
        let parsed: unknown;
        try {
          parsed = b.length === 0 ? {} : JSON.parse(b.toString()); // an empty body reads as no fields
        } catch {
          parsed = undefined;
        }
        if (parsed !== undefined && t.valid(parsed)) return; // a valid request is not hostile input
        // PUT /node/:id reads a body of another type as no settings at all (202, nothing changes); UTF-16
        // bodies are read as UTF-16, so their validity is not judged here
        if (t.method === 'PUT' && !/^application\/json(; charset=utf-8)?$/.test(type)) return;
        const headers: Record<string, string> = type ? { 'content-type': type } : {};
        const a = await send(t.method ?? 'POST', t.path, { body: new Uint8Array(b), headers });
        const bad = refusal(a, `${t.method ?? 'POST'} ${t.path} (${type}) ${b.toString('utf8').slice(0, 100)}`);
        if (bad) failures.push(bad);
      }),
      { numRuns: 500 },
    );
    expect(failures).toEqual([]);
    // No pollution reached anything: the API still answers and lists what it did.
    expect((await http<string[]>('GET', `${p.api}/runtimes`)).body).toEqual(['go', 'java', 'node', 'provided', 'python']);
  });

  it('params of every JSON shape reach the function and come back intact', async () => {
    await fc.assert(
      // (top-level null is read as "no params" by the API: {} — api/calls.ts)
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: 6 }).filter((v) => v !== null),
        async (v) => {
          const sent = JSON.parse(JSON.stringify(v)) as unknown; // -0 and the like, as JSON carries them
          const a = await send('POST', '/function/echo', json(JSON.stringify(v)));
          expect(a.status, a.text.slice(0, 300)).toBe(200);
          expect(JSON.parse(a.text)).toEqual({ echo: sent });
        },
      ),
      { numRuns: 120 },
    );
  });

  it('oversized, bombed, deep and oddly encoded bodies are refused', async () => {
    const twoMiB = JSON.stringify({ funcName: 'echo', params: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n);
    // 64 MiB of JSON in 64 KiB: gzip members may be concatenated
    const aMiB = gzipSync(Buffer.alloc(1024 * 1024, 'a'), { level: 9 });
    const gzipBomb = Buffer.concat([gzipSync('{"funcName":"'), ...Array.from({ length: 64 }, () => aMiB), gzipSync('"}')]);
    const cases: [string, string, string, { body?: BodyInit; headers?: Record<string, string> }, number][] = [
      ['2 MiB JSON', 'POST', '/invokeFunction', json(twoMiB), 413],
      ['2 MiB JSON', 'POST', '/registerRuntime', json(twoMiB), 413],
      ['2 MiB params', 'POST', '/function/echo', json(twoMiB), 413],
      [
        'a gzip bomb (64 MiB of JSON)',
        'POST',
        '/invokeFunction',
        { body: new Uint8Array(gzipBomb), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
        413,
      ],
      [
        'a gzip bomb as params',
        'POST',
        '/function/echo',
        { body: new Uint8Array(gzipBomb), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
        413,
      ],
      [
        'an unknown content encoding',
        'POST',
        '/invokeFunction',
        { body: '{}', headers: { 'content-type': 'application/json', 'content-encoding': 'zstd-bogus' } },
        415,
      ],
      [
        'a broken gzip body',
        'POST',
        '/invokeFunction',
        { body: 'not gzip', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } },
        400,
      ],
      ['params nested 300,000 deep', 'POST', '/function/echo', json(deep(300_000)), 400],
      ['params nested 65 deep', 'POST', '/invokeFunction', json(`{"funcName":"echo","params":${deep(65)}}`), 400],
      ['a runtime nested deep', 'POST', '/registerRuntime', json(`{"image":${deep(200_000)}}`), 400],
      ['node settings nested deep', 'PUT', `/node/${nodeId}`, json(`{"miniworkers":${deep(200_000)}}`), 400],
      [
        'JSON in Latin-1',
        'POST',
        '/invokeFunction',
        {
          body: new Uint8Array(Buffer.from('{"funcName":"ech\u00f6"}', 'latin1')),
          headers: { 'content-type': 'application/json; charset=latin1' },
        },
        415,
      ],
      ['a lone surrogate in a name', 'POST', '/invokeFunction', json('{"funcName":"\\ud800"}'), 400],
      ['NUL in a name', 'POST', '/invokeFunction', json('{"funcName":"echo\\u0000"}'), 400],
      ['a version that does not exist', 'POST', '/invokeFunction', json('{"funcName":"echo@99999999999999999999"}'), 404],
      ['a call number past 2^53', 'GET', '/call/99999999999999999999', {}, 400],
      ['a call number of 0', 'GET', '/call/0', {}, 400],
      ['a fractional call number', 'GET', '/call/1.5', {}, 400],
      ['an Arabic digit', 'GET', `/call/${encodeURIComponent('\u0663')}`, {}, 400],
      ['calls: a negative limit', 'GET', '/calls?limit=-1', {}, 400],
      ['calls: two limits', 'GET', '/calls?limit=1&limit=2', {}, 400],
      ['calls: a bad status', 'GET', '/calls?status=done%00', {}, 400],
      ['calls: a bad function name', 'GET', `/calls?funcName=${encodeURIComponent('../x')}`, {}, 400],
      ['calls: an unknown format', 'GET', '/calls?format=xml', {}, 400],
      ['an unknown route', 'GET', `/${MARK}`, {}, 404],
      ['an unknown method', 'PATCH', '/runtimes', json({}), 404],
      ['POST to a GET route', 'POST', '/health', json({}), 404],
      ['DELETE on the call store', 'DELETE', '/calls', {}, 404],
      ['a bad percent escape in the path', 'GET', '/%zz', {}, 404],
      ['a bad percent escape in a name', 'GET', '/functions/%zz', {}, 400],
      ['a 12 KB path', 'GET', `/functions/${'a'.repeat(12_000)}`, {}, 400],
    ];
    const failures: string[] = [];
    for (const [what, method, path, init, status] of cases) {
      const a = await send(method, path, init);
      const bad = refusal(a, what) ?? (a.status === status ? null : `${what}: ${a.status}, expected ${status}: ${a.text.slice(0, 200)}`);
      if (bad) failures.push(bad);
    }
    expect(failures).toEqual([]);
  });

  it('multipart uploads: bad settings, broken forms and oversized files are refused, nothing stored', async () => {
    const ok = smallArchive;
    const n = (): string => `${MARK}-m${randomBytes(3).toString('hex')}`;
    const cases: [string, () => { body?: BodyInit; headers?: Record<string, string> }, number][] = [
      ['timeout=abc', () => ({ body: form(ok, [['timeout', 'abc']]) }), 400],
      ['memory=-1', () => ({ body: form(ok, [['memory', '-1']]) }), 400],
      ['memory=99999999', () => ({ body: form(ok, [['memory', '99999999']]) }), 400],
      ['cpus=0', () => ({ body: form(ok, [['cpus', '0']]) }), 400],
      ['pids=1', () => ({ body: form(ok, [['pids', '1']]) }), 400],
      ['policy=evil', () => ({ body: form(ok, [['policy', 'evil']]) }), 400],
      ['network=maybe', () => ({ body: form(ok, [['network', 'maybe']]) }), 400],
      ['handler outside the tree', () => ({ body: form(ok, [['handler', '../../etc/passwd.x']]) }), 400],
      ['an absolute handler', () => ({ body: form(ok, [['handler', '/etc/passwd.x']]) }), 400],
      ['env without =', () => ({ body: form(ok, [['env', 'NOEQUALS']]) }), 400],
      ['env with a bad key', () => ({ body: form(ok, [['env', '{"1BAD": "x"}']]) }), 400],
      ['env with an object value', () => ({ body: form(ok, [['env', '{"A": {"b": 1}}']]) }), 400],
      ['env nested 30,000 deep', () => ({ body: form(ok, [['env', `{"A": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`]]) }), 400],
      ['env of broken JSON', () => ({ body: form(ok, [['env', '{"A": ']]) }), 400],
      ['settings in the query, wrong', () => ({ body: form(ok) }), 400],
      [
        'two archives',
        () => {
          const f = form(ok);
          f.append('module', new Blob([new Uint8Array(ok)]), 'b.tar.gz');
          return { body: f };
        },
        400,
      ],
      ['the archive under another field', () => ({ body: form(ok, [], 'fn.tar.gz', 'file') }), 400],
      ['no archive at all', () => ({ body: form(null, [['timeout', '3']]) }), 400],
      [
        '100 fields',
        () => ({
          body: form(
            ok,
            Array.from({ length: 100 }, (_, i) => [`f${i}`, 'x'] as [string, string]),
          ),
        }),
        400,
      ],
      ['a 100 KB field', () => ({ body: form(ok, [['env', `A=${'x'.repeat(100_000)}`]]) }), 400],
      [
        'a multipart body without its end',
        () => ({
          body: '--zz\r\nContent-Disposition: form-data; name="module"; filename="a.tar.gz"\r\n\r\nabc',
          headers: { 'content-type': 'multipart/form-data; boundary=zz' },
        }),
        400,
      ],
      ['a multipart type without a boundary', () => ({ body: 'abc', headers: { 'content-type': 'multipart/form-data' } }), 400],
      ['JSON instead of a form', () => json({ module: 'x' }), 400],
      [
        'a 51 MiB archive',
        () => ({ body: form(Buffer.concat([tgz([{ name: 'index.js', data: 'x' }]), randomBytes(51 * 1024 * 1024)])) }),
        413,
      ],
      ['a filename climbing out', () => ({ body: form(Buffer.from('not an archive'), [], `../../../../tmp/${MARK}-upload`) }), 400],
    ];
    const failures: string[] = [];
    for (const [what, init, status] of cases) {
      const name = n();
      const q = what.includes('query') ? '?timeout=-3&memory=lots' : '';
      const a = await send('POST', `/registerFunction/node/${name}${q}`, init());
      const bad = refusal(a, what) ?? (a.status === status ? null : `${what}: ${a.status}, expected ${status}: ${a.text.slice(0, 200)}`);
      if (bad) failures.push(bad);
      if ((await send('GET', `/functions/${name}`)).status !== 404) failures.push(`${what}: function ${name} exists`);
    }
    expect(failures).toEqual([]);
  });

  it('malformed HTTP is refused by the server without disturbing it', async () => {
    const raw = (text: string): Promise<string> =>
      new Promise((res, rej) => {
        const s = connect(p.port, '127.0.0.1');
        let got = '';
        s.setTimeout(10_000, () => {
          s.destroy();
          rej(new Error(`no answer to ${JSON.stringify(text.slice(0, 60))}`));
        });
        s.on('data', (b) => (got += b.toString('latin1')));
        s.on('end', () => res(got));
        s.on('close', () => res(got));
        s.on('error', () => res(got));
        s.end(text);
      });
    const cases = [
      'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'POST /invokeFunction HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nabcde',
      'POST /invokeFunction HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      'POST /invokeFunction HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
      'GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n',
      'NOT A REQUEST\r\n\r\n',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    ];
    for (const c of cases) {
      const answer = await raw(c);
      // Node's HTTP parser answers these itself (400 Bad Request, 431 for headers over 16 KiB).
      expect(answer, JSON.stringify(c.slice(0, 80))).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    expect((await send('GET', '/health')).status).toBe(200);
  });
});

// --- crafted archives ---------------------------------------------------------------------------------

describe('a corpus of crafted archives', () => {
  const corpus = refusedCorpus();
  it(`refuses all ${corpus.length} with 400 and a clear reason, storing nothing`, async () => {
    const failures: string[] = [];
    for (const [i, item] of corpus.entries()) {
      const name = `corpus${i}`;
      const a = await send('POST', `/registerFunction/node/${name}`, { body: form(item.bytes(), [], item.filename) });
      const bad = refusal(a, item.what);
      if (bad) failures.push(bad);
      else if (a.status !== 400) failures.push(`${item.what}: ${a.status} ${a.text.slice(0, 200)}`);
      else if (!/^bad archive: /.test(String(a.json?.error)) || (item.error && !item.error.test(String(a.json?.error))))
        failures.push(`${item.what}: unexpected reason: ${String(a.json?.error).slice(0, 300)}`);
      if ((await send('GET', `/functions/${name}`)).status !== 404) failures.push(`${item.what}: function ${name} was stored`);
    }
    expect(failures).toEqual([]);
    expect((await http<string[]>('GET', `${p.api}/functions`)).body).toEqual(['echo']);
  });

  it('neutralizes what it accepts: setuid and odd modes, root owners, locked directories', async () => {
    const arc = neutralizedArchive();
    const r = await send('POST', '/registerFunction/node/neutral', { body: form(arc, [['policy', 'none']]) });
    expect(r.status, r.text).toBe(201);
    accepted.add(createHash('sha256').update(arc).digest('hex'));
    const out = await http<Record<string, unknown>>('POST', `${p.api}/function/neutral`, {});
    expect(out.status).toBe(200);
    expect(out.body).toEqual({
      index: '755',
      tool: '755',
      locked: '755',
      secret: 'readable after all',
      names: ['español 日本.txt', 'index.js', 'locked', 'tool.sh'],
    });
  });

  it('mutated archives never make the checker fail other than with a clear refusal', async () => {
    const seeds = [
      tgz([
        { name: 'index.js', data: 'module.exports = () => 1;' },
        { name: 'lib', type: '5' },
        { name: 'lib/a.js', data: 'x'.repeat(3000) },
        { name: 'l', type: '2', linkname: 'lib/a.js' },
      ]),
      tar([
        { name: 'index.js', data: 'module.exports = () => 1;' },
        { name: 'h', type: '1', linkname: 'index.js' },
      ]),
      zip([
        { name: 'index.js', data: 'module.exports = () => 1;' },
        { name: 'lib/', data: '' },
        { name: 'lib/b.js', data: 'y'.repeat(2000) },
        { name: 's', data: 'index.js', mode: 0o120777, method: 0 },
      ]),
    ];
    const mutation = fc.tuple(
      fc.constantFrom(...seeds.keys()),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      fc.option(fc.nat(), { nil: undefined }),
    );
    const mutate = ([which, flips, cut]: [number, [number, number][], number | undefined]): Buffer => {
      const b = Buffer.from(seeds[which]!);
      for (const [at, v] of flips) b[at % b.length] = v;
      return cut === undefined ? b : b.subarray(0, cut % b.length);
    };
    // In process: many cases, fast. A non-ArchiveError would be a 500 from the API.
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        try {
          await inspectArchive(mutate(m));
        } catch (e) {
          if (!(e instanceof ArchiveError)) throw new Error(`not an ArchiveError: ${String(e)}`);
        }
      }),
      { numRuns: 1500 },
    );
    // Through the API: 201 (a mutation that is still a good archive) or 400, never anything else.
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        const arc = mutate(m);
        const a = await send('POST', `/registerFunction/node/mutant`, { body: form(arc, [['policy', 'none']]) });
        if (a.status === 201) accepted.add(createHash('sha256').update(arc).digest('hex'));
        else expectRefused(a, 'a mutated archive', 400);
      }),
      { numRuns: 40 },
    );
  });
});

// --- the service after all that -----------------------------------------------------------------------

describe('after the fuzzing', () => {
  it('is up, still runs calls, wrote nothing outside its data dir, and its memory and files are bounded', async () => {
    expect((await http<{ ok: boolean }>('GET', `${p.api}/health`)).body.ok).toBe(true);
    expect((await http('POST', `${p.api}/function/echo`, { still: 'here' })).body).toEqual({ echo: { still: 'here' } });
    // Its own TMPDIR and HOME are as they were.
    expect(await listing(isolated.tmp)).toEqual(before.tmp);
    expect(await listing(isolated.home)).toEqual(before.home);
    // No file named after the fuzz's marker anywhere it could have climbed to.
    for (const dir of ['/tmp', resolve(p.data, '..'), '/']) {
      const hits = (await listing(dir, dir === '/' ? 1 : 2)).filter((f) => f.includes(MARK));
      expect(hits, dir).toEqual([]);
    }
    // Everything in the data dir stays in it (no link leads out).
    const data = await realpath(p.data);
    for (const f of await listing(p.data, 12)) {
      const st = await lstat(f).catch(() => null);
      if (!st?.isSymbolicLink()) continue;
      const target = await realpath(f).catch(async () => resolve(join(f, '..'), await readlink(f)));
      expect(target.startsWith(data + '/'), `${f} -> ${target}`).toBe(true);
    }
    // Memory and open files stay bounded (50 MiB uploads and gzip bombs went through it).
    const after = await treeRss(p.proc.child.pid!);
    console.log(
      `fuzz: RSS of zfaas up and its miniworkers ${before.rss} MiB before, ${after.mib} MiB after; open files ${before.fds} -> ${after.fds}`,
    );
    expect(after.mib).toBeLessThan(Math.max(600, before.rss + 250));
    expect(after.fds).toBeLessThan(before.fds + 50);
  });
});

// --- the CLI ------------------------------------------------------------------------------------------

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], input = ''): Promise<Run> {
  const env: Record<string, string> = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('ZFAAS_')),
  );
  env.ZFAAS_API = p.api;
  env.ZFAAS_CONFIG = join(isolated.home, 'no-config.json');
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A clean refusal: exit 1 (the API said no) or 2 (bad usage), one line saying why, no stack trace. */
function cleanFailure(r: Run, what: string, lines = 1): string | null {
  if (r.code !== 1 && r.code !== 2) return `${what}: exit ${r.code}: ${r.stderr.slice(0, 300)}`;
  const text = r.stderr.trim();
  if (!/^(zfaas|error): /.test(text)) return `${what}: no clear message: ${text.slice(0, 300)}`;
  if (/\n\s+at |node:internal|TypeError|ReferenceError/.test(r.stderr)) return `${what}: a stack trace: ${text.slice(0, 500)}`;
  if (text.split('\n').length > lines) return `${what}: ${text.split('\n').length} lines: ${text.slice(0, 300)}`;
  return null;
}

describe('the CLI given hostile input', () => {
  let files: string;
  beforeAll(async () => {
    files = join(isolated.home, 'cli');
    await mkdir(files, { recursive: true });
  });

  it('refuses odd names, bad params and missing or hostile files with one line and exit 1 or 2', async () => {
    const put = async (name: string, data: string | Buffer): Promise<string> => {
      const f = join(files, name);
      await writeFile(f, data);
      return f;
    };
    const bomb = await put(
      'bomb.tar.gz',
      refusedCorpus()
        .find((c) => c.what.includes('4 GiB'))!
        .bytes(),
    );
    const traversal = await put(
      'evil.tar.gz',
      tgz([
        { name: 'index.js', data: 'x' },
        { name: '../../evil.js', data: 'x' },
      ]),
    );
    const deep = await put('deep.json', `{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}`);
    const huge = await put('huge.json', JSON.stringify({ pad: 'x'.repeat(3 * 1024 * 1024) }));
    const badRuntime = await put('runtime.json', '{"image": 5, "run": ["x"]}');
    const deepBatch = await put('deep.jsonl', `{"n":1}\n{"a":${'['.repeat(50_000)}${']'.repeat(50_000)}}\n`);
    const cases: [string, string[], string?][] = [
      ['a traversal name', ['invoke', '../../etc/passwd']],
      ['a 5,000-character name', ['invoke', 'n'.repeat(5000)]],
      ['a terminal escape as a name', ['invoke', '\x1b[2J\x1b[31mred']],
      ['an empty name', ['invoke', '']],
      ['a bad version', ['invoke', 'echo@abc']],
      ['an unknown function', ['invoke', `${MARK}-ghost`]],
      ['bad JSON params', ['invoke', 'echo', '--params', '{"a":']],
      ['params nested 50,000 deep', ['invoke', 'echo', '--file', deep]],
      ['3 MiB of params', ['invoke', 'echo', '--file', huge]],
      ['a missing params file', ['invoke', 'echo', '--file', join(files, 'missing.json')]],
      ['a directory as params file', ['invoke', 'echo', '--file', files]],
      ['binary params on stdin', ['invoke', 'echo'], '\x00\x01\xff\xfe'],
      ['a pair without a value', ['invoke', 'echo', 'novalue']],
      ['deploy: a missing path', ['deploy', 'x', join(files, 'nope'), '--runtime', 'node']],
      ['deploy: a bad name', ['deploy', '../x', files, '--runtime', 'node']],
      ['deploy: a zip bomb', ['deploy', `${MARK}-b`, bomb, '--runtime', 'node']],
      ['deploy: a traversal archive', ['deploy', `${MARK}-t`, traversal, '--runtime', 'node']],
      ['deploy: an unknown runtime', ['deploy', `${MARK}-r`, traversal, '--runtime', `${MARK}`]],
      ['deploy: env of an object', ['deploy', `${MARK}-e`, traversal, '--runtime', 'node', '--env', '{"A":{"b":1}}']],
      ['register-runtime: a bad file', ['register-runtime', '--file', badRuntime]],
      ['register-runtime: a bad image', ['register-runtime', 'x', '--image', '../../Evil Image', '--run', 'true']],
      ['call: not a number', ['call', '1e99']],
      ['call: negative', ['call', '-5']],
      ['call: unknown', ['call', '987654321']],
      ['logs: unknown', ['logs', '987654321']],
      ['delete: unknown', ['delete', `${MARK}-x`]],
      ['a bad API address', ['--api', 'http://[::1', 'functions']],
      ['endless params', ['invoke', 'echo', '--file', '/dev/zero']],
      ['an endless batch', ['invoke', 'echo', '--batch', '/dev/zero']],
      ['a batch item nested 50,000 deep', ['invoke', 'echo', '--batch', deepBatch]],
    ];
    const runs = await Promise.all(cases.map(([, args, input]) => cli(args, input)));
    const failures = runs.map((r, i) => cleanFailure(r, cases[i]![0])).filter((f): f is string => f !== null);
    expect(failures).toEqual([]);
    // What the API would refuse anyway is caught before sending, with what is wrong and exit 2.
    const said = (what: string): Run => runs[cases.findIndex((c) => c[0] === what)]!;
    for (const what of ['params nested 50,000 deep', 'a batch item nested 50,000 deep'])
      expect(said(what)).toMatchObject({ code: 2, stderr: expect.stringMatching(/nests more than 64 levels/) });
    expect(said('a terminal escape as a name').stderr).not.toContain('\x1b');
    for (const what of ['endless params', 'an endless batch'])
      expect(said(what)).toMatchObject({ code: 2, stderr: expect.stringMatching(/larger than \d+ MiB/) });
    // None of it reached the platform.
    expect((await http<string[]>('GET', `${p.api}/functions`)).body.filter((f) => f.startsWith(MARK))).toEqual([]);
  });

  it('random words as a function name and params: a clean refusal every time', async () => {
    const word = fc.string({ unit: 'grapheme', maxLength: 60 }).filter((s) => !s.includes('\0') && !s.startsWith('-'));
    await fc.assert(
      fc.asyncProperty(word, fc.array(word, { maxLength: 3 }), async (name, params) => {
        fc.pre(name !== 'echo' && !name.startsWith('echo@'));
        const r = await cli(['invoke', name, ...params]);
        // Line breaks and escape sequences in what is echoed back are shown escaped: one line, no control bytes.
        const bad =
          cleanFailure(r, `invoke ${JSON.stringify(name)} ${JSON.stringify(params)}`) ??
          // eslint-disable-next-line no-control-regex -- looking for control characters
          (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/.test(r.stderr)
            ? `invoke ${JSON.stringify(name)}: a control character on stderr: ${JSON.stringify(r.stderr)}`
            : null);
        if (bad) throw new Error(bad);
      }),
      { numRuns: 24 },
    );
  });
});
