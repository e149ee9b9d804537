// The loader conformance suite: runs every loader on this machine over its stdin/stdout line (the same
// lines it speaks on the node's socket; no Docker) and checks that it speaks protocol/loader.ts: hello
// first with this node's version, each request answered by the reply the node expects, every reply one the
// node's schemas declare (no field they do not know), a call's env for that call only, output captured
// into logs, failures as failed replies, web calls in the lambda convention, secrets as files, and
// requests it cannot read answered with `error` while it carries on. A loader for another language is one
// more entry in LOADERS, with its two functions in runtimes/conformance/LANG (see the README there).
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CANCELLED,
  CONCURRENT_PROTOCOL,
  ENV_VIEW_PROTOCOL,
  HttpResponseSchema,
  LOADER_PROTOCOL,
  STREAM_CHUNK_LIMIT,
  TOOK_PROTOCOL,
  type HttpRequest,
} from '../protocol/loader.js';
import { spawnLoader, type Reply, type Speaker } from './conformance/speaker.js';

const HERE = resolve(import.meta.dirname);
const JAVA_CLASSES = join(tmpdir(), `zfaas-java-loader-${process.pid}`);
const GSON_JAR = '/usr/share/java/gson.jar';
const GO_BUILT = join(tmpdir(), `zfaas-go-loader-${process.pid}`);
const run = promisify(execFile);
// The go loader is built with this machine's go (Debian's golang-go, as in its image); without go its
// entry is left out, and the test below says why.
const HAVE_GO = await run('go', ['version']).then(
  () => true,
  () => false,
);

interface LoaderUnderTest {
  name: string;
  command: string[]; // the loader in warm mode, without ZFAAS_LINE: it speaks on stdin/stdout
  functions: string; // its folder of conformance functions (echo, web)
  webHandler: string; // the web function's handler, FILE.EXPORT
  protocol: number; // the version it says in hello
  took?: boolean; // says `took` in its results though it speaks an older version (one call at a time)
  steady?: boolean; // says `steady` in its hello: an older version whose process calls do not grow
  stream?: { format: 'lambda' | 'gcf'; handler: string }; // its streaming function (version 3)
}

const LOADERS: LoaderUnderTest[] = [
  {
    name: 'node',
    command: [process.execPath, join(HERE, 'node/loader.js')],
    functions: join(HERE, 'conformance/node'),
    webHandler: 'index.handler',
    protocol: LOADER_PROTOCOL,
    stream: { format: 'lambda', handler: 'index.handler' },
  },
  {
    name: 'python',
    command: ['python3', join(HERE, 'python/loader.py')],
    functions: join(HERE, 'conformance/python'),
    webHandler: 'handler.handler',
    protocol: LOADER_PROTOCOL,
    stream: { format: 'gcf', handler: 'handler.handler' },
  },
  {
    name: 'java',
    // compiled from runtimes/java/*.java before the suite (the image compiles the same sources)
    command: ['java', '--add-opens', 'java.base/java.util=ALL-UNNAMED', '-cp', `${JAVA_CLASSES}:${GSON_JAR}`, 'zfaas.Loader'],
    functions: join(HERE, 'conformance/java'),
    webHandler: 'Handler.handleRequest',
    protocol: 2, // one call at a time
    took: true,
    steady: true,
  },
  ...(HAVE_GO
    ? [
        {
          name: 'go',
          // the image's generic loader, which execs each function's binary on load; both built before the suite
          command: [join(GO_BUILT, 'loader')],
          functions: join(GO_BUILT, 'functions'),
          webHandler: 'web.Handler',
          protocol: 2, // one call at a time
          took: true,
          steady: true,
        },
      ]
    : []),
];

it.skipIf(HAVE_GO)('checks the go loader (skipped: this machine has no go; apt-get install golang-go)', () => undefined);

// The Java loader, built as its image builds it (javac against Debian's gson, which the test command installs).
beforeAll(async () => {
  await mkdir(JAVA_CLASSES, { recursive: true });
  const sources = (await readdir(join(HERE, 'java'))).filter((f) => f.endsWith('.java')).map((f) => join(HERE, 'java', f));
  await run('javac', ['-nowarn', '-cp', GSON_JAR, '-d', JAVA_CLASSES, ...sources]);
}, 120_000);
// The Go loader and its functions, built as the image and the runtime's dependencies step build them.
beforeAll(async () => {
  if (!HAVE_GO) return;
  const go = join(HERE, 'go');
  const env = { ...process.env, CGO_ENABLED: '0', GOPROXY: 'off', GOFLAGS: '-mod=mod' };
  await mkdir(join(GO_BUILT, 'functions'), { recursive: true });
  await run('go', ['build', '-o', join(GO_BUILT, 'loader'), './cmd/loader'], { cwd: go, env });
  await run('go', ['build', '-o', join(GO_BUILT, 'build'), './cmd/build'], { cwd: go, env });
  for (const fn of ['echo', 'web']) {
    await cp(join(HERE, 'conformance/go', fn), join(GO_BUILT, 'functions', fn), { recursive: true });
    await run(join(GO_BUILT, 'build'), ['-src', join(GO_BUILT, 'functions', fn), '-lib', join(go, 'zfaasrt')], { env });
  }
}, 300_000);
afterAll(async () => {
  await rm(JAVA_CLASSES, { recursive: true, force: true });
  await rm(GO_BUILT, { recursive: true, force: true });
});

const started: Speaker[] = [];

function start(l: LoaderUnderTest): Speaker {
  const s = spawnLoader(l.command, l.functions);
  started.push(s);
  return s;
}

// A loader said hello; the function `fn` loaded (format `format`).
async function loaded(l: LoaderUnderTest, fn: 'echo' | 'web', format: 'json' | 'lambda'): Promise<Speaker> {
  const s = start(l);
  expect((await s.next()).op).toBe('hello');
  const r = await s.ask({ op: 'load', dir: join(l.functions, fn), handler: fn === 'web' ? l.webHandler : null, env: {}, format });
  expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format });
  return s;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const webRequest = (path: string, query = ''): HttpRequest => ({
  method: 'GET',
  path,
  query,
  headers: { host: 'example.test', accept: 'text/plain' },
  body: '',
  sourceIp: '127.0.0.1',
});

afterEach(async () => {
  for (const s of started.splice(0)) await s.end();
});

describe.each(LOADERS)('the $name loader', (l) => {
  it('says hello first, with the version this node speaks and its pid, and exits 0 when its input ends', async () => {
    const s = start(l);
    const hello = await s.next();
    expect(hello).toEqual({ op: 'hello', v: l.protocol, pid: expect.any(Number), ...(l.steady ? { steady: true } : {}) });
    expect(await s.ask({ op: 'ping' })).toEqual({ op: 'pong' });
    started.splice(started.indexOf(s), 1);
    expect(await s.end()).toBe(0);
  });

  it("calls the function with the call's env for that call only, its output in the call's logs", async () => {
    const s = await loaded(l, 'echo', 'json');
    const first = await s.ask({ op: 'call', id: 1, params: { n: 3 }, env: { ZFAAS_CALL: '1', GREETING: 'hi' } });
    expect(first).toMatchObject({ op: 'result', id: 1, ok: true });
    expect(first.op === 'result' && JSON.parse(first.result ?? 'null')).toEqual({ n: 3, call: '1', greeting: 'hi' });
    expect(first.op === 'result' && first.logs).toContain('echo 3');
    const second = await s.ask({ op: 'call', id: 2, params: { n: 4 }, env: { ZFAAS_CALL: '2' } });
    expect(second.op === 'result' && JSON.parse(second.result ?? 'null')).toEqual({ n: 4, call: '2', greeting: null });
  });

  it('answers a failing call with a failed result, and the next call as usual', async () => {
    const s = await loaded(l, 'echo', 'json');
    const failed = await s.ask({ op: 'call', id: 1, params: { fail: true }, env: {} });
    expect(failed).toMatchObject({ op: 'result', id: 1, ok: false, error: expect.stringContaining('boom') });
    expect(failed).not.toHaveProperty('fault'); // the function failed, not its response
    expect(await s.ask({ op: 'call', id: 2, params: { n: 1 }, env: {} })).toMatchObject({ id: 2, ok: true });
  });

  it('says so when a call comes before a function is loaded, or the function is not there', async () => {
    const s = start(l);
    await s.next();
    expect(await s.ask({ op: 'call', id: 1, params: {}, env: {} })).toMatchObject({ op: 'result', id: 1, ok: false });
    const missing = await s.ask({ op: 'load', dir: join(l.functions, 'nowhere'), handler: null, env: {} });
    expect(missing).toMatchObject({ op: 'loaded', ok: false, error: expect.any(String) });
  });

  it('answers a web call in the lambda convention with the response the function chose', async () => {
    const s = await loaded(l, 'web', 'lambda');
    const r = await s.ask({ op: 'call', id: 1, params: {}, env: {}, http: webRequest('/hello', 'name=ana') });
    expect(r).toMatchObject({ op: 'result', id: 1, ok: true });
    const http = HttpResponseSchema.parse(r.op === 'result' && r.http);
    expect(http.status).toBe(201);
    expect(http.headers).toMatchObject({ 'content-type': 'text/plain', 'x-path': '/hello' });
    expect(Buffer.from(http.body, 'base64').toString()).toBe('hello ana');
    const bad = await s.ask({ op: 'call', id: 2, params: {}, env: {}, http: webRequest('/bad') });
    // The response was what failed, not the function: the node answers its web caller 502 by this.
    expect(bad).toMatchObject({ op: 'result', id: 2, ok: false, fault: 'response', error: expect.stringMatching(/^malformed response:/) });
  });

  it.skipIf(!l.stream)('streams a web answer: the head, each write as a chunk in order, then a result without a body', async () => {
    const st = l.stream!;
    const s = start(l);
    await s.next();
    const dir = join(l.functions, 'stream');
    expect(await s.ask({ op: 'load', dir, handler: st.handler, env: {}, format: st.format })).toMatchObject({ ok: true });
    s.send({ op: 'call', id: 7, params: {}, env: {}, http: webRequest('/', 'big') });
    expect(await s.next()).toEqual({ op: 'head', id: 7, status: 202, headers: { 'content-type': expect.stringMatching(/^text\/plain/) } });
    const chunks: Buffer[] = [];
    let r = await s.next();
    for (; r.op === 'chunk'; r = await s.next()) {
      expect(r.id).toBe(7);
      chunks.push(Buffer.from(r.data, 'base64'));
    }
    expect(chunks.slice(0, 3).map(String)).toEqual(['one ', 'two ', 'three']);
    // 300 KiB is more than one chunk carries: it came in pieces, none over the limit
    expect(chunks.length).toBeGreaterThan(4);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThanOrEqual(STREAM_CHUNK_LIMIT);
    const total = Buffer.concat(chunks);
    expect(total.length).toBe(13 + 300 * 1024);
    expect(r).toMatchObject({ op: 'result', id: 7, ok: true, streamed: total.length, http: { status: 202, body: '' } });
    // a call without http (not a web call) gets the whole answer in its result: no head, no chunk
    const plain = await s.ask({ op: 'call', id: 8, params: {}, env: {} });
    expect(plain).toMatchObject({ op: 'result', id: 8, ok: true, result: 'one two three' }); // what it wrote, gathered
    expect(plain).not.toHaveProperty('streamed');
    // a function that fails after its head: the result says so (the node then breaks off the answer)
    s.send({ op: 'call', id: 9, params: {}, env: {}, http: webRequest('/', 'fail') });
    expect(await s.next()).toMatchObject({ op: 'head', id: 9 });
    let last = await s.next();
    while (last.op === 'chunk') last = await s.next();
    expect(last).toMatchObject({ op: 'result', id: 9, ok: false, error: expect.stringContaining('boom') });
  });

  it.skipIf(!l.stream)('answers a streaming function in one piece when its container takes several calls at once', async () => {
    const st = l.stream!;
    const s = start(l);
    await s.next();
    const dir = join(l.functions, 'stream');
    expect(await s.ask({ op: 'load', dir, handler: st.handler, env: {}, format: st.format, concurrency: 2 })).toMatchObject({ ok: true });
    const r = await s.ask({ op: 'call', id: 4, params: {}, env: {}, http: webRequest('/') });
    expect(r).toMatchObject({ op: 'result', id: 4, ok: true, http: { status: 202 } });
    expect(r).not.toHaveProperty('streamed');
    expect(Buffer.from(HttpResponseSchema.parse(r.op === 'result' && r.http).body, 'base64').toString()).toBe('one two three');
  });

  describe('secrets', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), `zfaas-conformance-${l.name}-`));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('writes each secret as a file, and removes the files not kept', async () => {
      const s = start(l);
      await s.next();
      await writeFile(join(dir, 'old'), 'x');
      const set = await s.ask({
        op: 'secrets',
        dir,
        files: { 'db-password': b64('s3cret'), token: b64('t') },
        keep: ['db-password', 'token'],
      });
      expect(set).toEqual({ op: 'secretsSet', ok: true });
      expect((await readdir(dir)).sort()).toEqual(['db-password', 'token']);
      expect(await readFile(join(dir, 'db-password'), 'utf8')).toBe('s3cret');
      expect(await s.ask({ op: 'secrets', dir, files: {}, keep: ['token'] })).toEqual({ op: 'secretsSet', ok: true });
      expect(await readdir(dir)).toEqual(['token']);
      // a name that could leave the folder is a request it cannot read
      s.send({ op: 'secrets', dir, files: { '../escape': b64('x') }, keep: ['../escape'] });
      expect(await s.next()).toMatchObject({ op: 'error' });
      expect(await readdir(dir)).toEqual(['token']);
    });
  });

  describe.runIf(l.protocol >= CONCURRENT_PROTOCOL)('several calls at once', () => {
    // The `waits` function loaded to take up to four calls at once.
    async function concurrent(): Promise<Speaker> {
      const s = start(l);
      expect((await s.next()).op).toBe('hello');
      const r = await s.ask({ op: 'load', dir: join(l.functions, 'waits'), handler: null, env: {}, format: 'json', concurrency: 4 });
      expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'json' });
      return s;
    }
    const call = (id: number, params: Record<string, unknown>): Record<string, unknown> => ({
      op: 'call',
      id,
      params: { n: id, ...params },
      env: { ZFAAS_CALL: `call-${id}` },
    });
    const valueOf = (r: Reply): unknown => (r.op === 'result' ? JSON.parse(r.result ?? 'null') : r);

    it('runs overlapping calls at once, each with its own env and logs, answered by id as each ends', async () => {
      const s = await concurrent();
      s.send(call(1, { ms: 400 }));
      s.send(call(2, { ms: 20 }));
      const first = await s.next();
      const second = await s.next();
      // the short call ends first though it came second: they ran at once
      expect(first).toMatchObject({ op: 'result', id: 2, ok: true });
      expect(second).toMatchObject({ op: 'result', id: 1, ok: true });
      expect(valueOf(first)).toEqual({ n: 2, call: 'call-2' });
      expect(valueOf(second)).toEqual({ n: 1, call: 'call-1' });
      const logs = (r: Reply): string => (r.op === 'result' ? (r.logs ?? '') : '');
      expect(logs(first)).toBe('start 2 call-2\nend 2 call-2\n');
      expect(logs(second)).toBe('start 1 call-1\nend 1 call-1\n');
    });

    it('fails a call that throws alone, and ends a cancelled call alone', async () => {
      const s = await concurrent();
      s.send(call(1, { ms: 5000 }));
      s.send(call(2, { ms: 800 }));
      s.send(call(3, { ms: 10, fail: true }));
      expect(await s.next()).toMatchObject({ op: 'result', id: 3, ok: false, error: expect.stringContaining('boom 3') });
      s.send({ op: 'cancel', id: 1 });
      // The cancelled call and call 2 end in either order on a busy machine; each with its own reply.
      const [a, b] = [await s.next(), await s.next()];
      const byId = new Map([a, b].map((r) => [(r as { id: number }).id, r]));
      expect(byId.get(1)).toMatchObject({ op: 'result', id: 1, ok: false, error: CANCELLED });
      const two = byId.get(2);
      expect(two).toMatchObject({ op: 'result', id: 2, ok: true });
      expect(valueOf(two!)).toEqual({ n: 2, call: 'call-2' });
      // a cancel of a call that has ended is not answered: the next reply is the ping's
      s.send({ op: 'cancel', id: 2 });
      expect(await s.ask({ op: 'ping' })).toEqual({ op: 'pong' });
    });
  });

  it('answers what it cannot read with an error, and carries on', async () => {
    const s = start(l);
    await s.next();
    for (const bad of ['not json', '{"op":"fly"}', '[1,2]', JSON.stringify({ op: 'call', id: 1, params: {}, env: { '1BAD': 'x' } })]) {
      s.send(bad);
      expect(await s.next(), bad).toMatchObject({ op: 'error', error: expect.any(String) });
    }
    expect(await s.ask({ op: 'ping' })).toEqual({ op: 'pong' });
  });
});

// A loader of ENV_VIEW_PROTOCOL is kept warm for as long as it is used, so a call's variables must not grow
// it; and a process the call starts still inherits them.
const GROWTH_PROBE: Record<string, { file: string; handler: string | null; source: string[] }> = {
  node: {
    file: 'index.js',
    handler: null,
    source: [
      "const { execFileSync } = require('child_process');",
      'module.exports = async (p) => ({',
      '  rss: process.memoryUsage().rss,',
      '  call: process.env.ZFAAS_CALL ?? null,',
      "  child: p.child ? execFileSync('sh', ['-c', 'printf %s \"$ZFAAS_CALL\"']).toString() : null,",
      '});',
    ],
  },
  python: {
    file: 'probe.py',
    handler: 'probe.main',
    source: [
      'import os, subprocess',
      'def main(p):',
      '    with open("/proc/self/status") as f:',
      '        rss = int([l for l in f if l.startswith("VmRSS")][0].split()[1]) * 1024',
      '    child = None',
      '    if p.get("child"):',
      '        child = subprocess.run(["sh", "-c", \'printf %s "$ZFAAS_CALL"\'], capture_output=True, text=True).stdout',
      '    return {"rss": rss, "call": os.environ.get("ZFAAS_CALL"), "child": child}',
    ],
  },
};

describe.each(LOADERS.filter((l) => l.protocol >= ENV_VIEW_PROTOCOL))('the $name loader, kept warm', (l) => {
  it("gives a process a call starts the call's variables, and does not grow with the values calls set", async () => {
    const probe = GROWTH_PROBE[l.name];
    expect(probe, `a growth probe in ${l.name}`).toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'zfaas-envview-'));
    try {
      await writeFile(join(dir, probe!.file), probe!.source.join('\n') + '\n');
      const s = start({ ...l, functions: dir });
      expect((await s.next()).op).toBe('hello');
      expect(await s.ask({ op: 'load', dir, handler: probe!.handler, env: {}, format: 'json' }), s.stderr).toMatchObject({ ok: true });
      const value = async (id: number, params: object, env: Record<string, string>) => {
        const r = await s.ask({ op: 'call', id, params, env });
        expect(r, s.stderr).toMatchObject({ op: 'result', id, ok: true });
        return JSON.parse(r.op === 'result' ? (r.result ?? 'null') : 'null') as { rss: number; call: string | null; child: string | null };
      };
      expect(await value(1, { child: true }, { ZFAAS_CALL: '1' })).toMatchObject({ call: '1', child: '1' });
      expect(await value(2, { child: true }, {})).toMatchObject({ call: null, child: '' });
      // 400 calls each setting new values of 100 KB (a variable and the params): 80 MB if they stayed (a
      // garbage-collected heap may grow meanwhile by less)
      const big = 'x'.repeat(100_000);
      for (let i = 3; i < 20; i++) await value(i, { big: big + i }, { ZFAAS_CALL: String(i), BIG: big + i });
      const before = (await value(20, {}, {})).rss;
      for (let i = 21; i < 420; i++) await value(i, { big: big + i }, { ZFAAS_CALL: String(i), BIG: big + i });
      const after = (await value(420, {}, {})).rss;
      expect(after - before).toBeLessThan(40 * 1024 * 1024); // half of what the values weigh
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// From version 5 a result says `took` (and the loaders of one call at a time say it too): the µs from the
// loader reading the call to its result, which the node compares with the round trip it saw
// (instance/pace.ts). It must cover the function's own time and no more than the round trip, one call at a
// time and, where a loader runs several, for calls that run at once.
const tookOf = (r: Reply): number => (r.op === 'result' && typeof r.took === 'number' ? r.took : NaN);
describe.each(LOADERS.filter((l) => l.protocol >= TOOK_PROTOCOL || l.took))('the $name loader, timing a call', (l) => {
  const timed = async (s: Speaker, m: Parameters<Speaker['ask']>[0]): Promise<{ r: Reply; us: number }> => {
    const t0 = performance.now();
    const r = await s.ask(m);
    return { r, us: (performance.now() - t0) * 1000 };
  };

  it("says in each result how long the call took inside it, the function's time included", async () => {
    const s = start(l);
    expect((await s.next()).op).toBe('hello');
    const early = await s.ask({ op: 'call', id: 1, params: {}, env: {} }); // no function loaded: a result too
    expect(Number.isInteger(tookOf(early)), JSON.stringify(early)).toBe(true);
    const r = await s.ask({ op: 'load', dir: join(l.functions, 'echo'), handler: null, env: {}, format: 'json' });
    expect(r, s.stderr).toMatchObject({ op: 'loaded', ok: true });
    const slow = await timed(s, { op: 'call', id: 2, params: { n: 2, ms: 150 }, env: {} });
    expect(slow.r, s.stderr).toMatchObject({ op: 'result', id: 2, ok: true });
    expect(tookOf(slow.r)).toBeGreaterThanOrEqual(150_000);
    expect(tookOf(slow.r)).toBeLessThanOrEqual(slow.us);
    const quick = await timed(s, { op: 'call', id: 3, params: { n: 3 }, env: {} });
    expect(Number.isInteger(tookOf(quick.r)) && tookOf(quick.r) >= 0).toBe(true);
    expect(tookOf(quick.r)).toBeLessThanOrEqual(quick.us);
    const failed = await s.ask({ op: 'call', id: 4, params: { n: 4, fail: true }, env: {} });
    expect(failed).toMatchObject({ op: 'result', id: 4, ok: false });
    expect(Number.isInteger(tookOf(failed))).toBe(true);
  });
});

describe.each(LOADERS.filter((l) => l.protocol >= TOOK_PROTOCOL))('the $name loader, timing its calls', (l) => {
  it('times calls that run at once each on its own', async () => {
    const s = start(l);
    expect((await s.next()).op).toBe('hello');
    const r = await s.ask({ op: 'load', dir: join(l.functions, 'waits'), handler: null, env: {}, format: 'json', concurrency: 4 });
    expect(r, s.stderr).toMatchObject({ op: 'loaded', ok: true });
    s.send({ op: 'call', id: 1, params: { n: 1, ms: 300 }, env: {} });
    s.send({ op: 'call', id: 2, params: { n: 2, ms: 20 }, env: {} });
    const first = await s.next();
    const second = await s.next();
    expect(first).toMatchObject({ op: 'result', id: 2, ok: true });
    expect(tookOf(first)).toBeGreaterThanOrEqual(20_000);
    expect(tookOf(first)).toBeLessThan(300_000);
    expect(tookOf(second)).toBeGreaterThanOrEqual(300_000);
  });
});
