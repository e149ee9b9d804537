// The web form of `zfaas invoke`: flags into a fetch request (and the refusals, before anything is sent),
// the answer printed raw with -i's head first, and the exit codes X-Zfaas-Status and the API's refusals
// map to. No API: fetch is a fake that records what it was asked.
import { Command } from 'commander';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { STATUS_CODES } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invokeCommand } from '../commands/invoke.js';
import { makeDeps } from '../commands/common.js';
import { ApiError, EXIT, UnreachableError, UsageError, describeFailure } from './errors.js';
import type { Output } from './output.js';
import {
  formatHead,
  isWebForm,
  planWebRequest,
  printWebAnswer,
  readWebBody,
  sendWeb,
  toFetchRequest,
  type ByteSink,
  type WebFlags,
} from './web.js';

const API = 'http://127.0.0.1:3000';
const noStdin = (): Readable => Readable.from([]);
const stdinOf = (...chunks: Buffer[]): Readable => Readable.from(chunks);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zfaas-web-'));
});
afterAll(async () => dir && rm(dir, { recursive: true, force: true }));

/** planWebRequest + body + toFetchRequest, as `zfaas invoke` does them. */
async function request(target: string, flags: WebFlags, o: { token?: string; stdin?: Readable; api?: string } = {}) {
  const plan = planWebRequest(target, flags);
  const body = await readWebBody(plan.data, o.stdin ?? noStdin());
  const { url, init } = toFetchRequest(o.api ?? API, o.token, plan, body);
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  const sent = init.body === undefined ? undefined : Buffer.from(await new Response(init.body).arrayBuffer());
  return { url: url.toString(), method: init.method, headers, body: sent, redirect: init.redirect };
}

const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
};

describe('the web request', () => {
  it('is made by any of --method, --path, -q, -H, -d (not by -i alone)', () => {
    expect(isWebForm({})).toBe(false);
    expect(isWebForm({ include: true })).toBe(false);
    for (const f of [{ method: 'GET' }, { path: '/' }, { query: ['a=1'] }, { header: ['A: b'] }, { data: '' }])
      expect(isWebForm(f)).toBe(true);
  });

  it('goes to /function/NAME[@VERSION]/PATH?QUERY: GET without data, POST with it', async () => {
    expect(await request('hello', { path: '/' })).toEqual({
      url: `${API}/function/hello/`,
      method: 'GET',
      headers: {},
      body: undefined,
      redirect: 'manual',
    });
    expect(await request('hello', { query: ['name=ana'] })).toMatchObject({ url: `${API}/function/hello?name=ana`, method: 'GET' });
    const r = await request('api@2', {
      path: '/users/1',
      query: ['fields=name,email', 'tag=a b', 'tag=ü&x', 'empty='],
      data: '{"name":"ana"}',
      header: ['Content-Type: application/json', 'X-Tag: one', 'x-tag:two', 'X-Empty:'],
    });
    expect(r).toMatchObject({
      url: `${API}/function/api@2/users/1?fields=name%2Cemail&tag=a%20b&tag=%C3%BC%26x&empty=`,
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-tag': 'one, two', 'x-empty': '' },
    });
    expect(r.body?.toString()).toBe('{"name":"ana"}');
    expect((await request('f', { method: 'put', data: '' })).method).toBe('PUT');
    expect((await request('f', { method: 'delete' })).method).toBe('DELETE');
    expect((await request('f', { method: 'PATCH', data: 'x' })).method).toBe('PATCH');
  });

  it('keeps a query written in --path, and encodes what a URL path cannot hold', async () => {
    expect((await request('f', { path: '/search?q=1&r', query: ['s=2'] })).url).toBe(`${API}/function/f/search?q=1&r&s=2`);
    expect((await request('f', { path: '/a b/ü/%41/50%/x#y\\z' })).url).toBe(`${API}/function/f/a%20b/%C3%BC/%41/50%25/x%23y%5Cz`);
    expect((await request('f', { path: '//double/.hidden/...' })).url).toBe(`${API}/function/f//double/.hidden/...`);
    // Below an API that has a path of its own.
    expect((await request('f', { path: '/x' }, { api: 'https://faas.example/zfaas' })).url).toBe('https://faas.example/zfaas/function/f/x');
  });

  it('sends the token as always, unless -H gives an Authorization of its own; header values go as UTF-8', async () => {
    expect((await request('f', { path: '/' }, { token: 'tok' })).headers).toEqual({ authorization: 'Bearer tok' });
    expect((await request('f', { header: ['Authorization: Basic YTpi'] }, { token: 'tok' })).headers).toEqual({
      authorization: 'Basic YTpi',
    });
    const h = (await request('f', { header: ['X-Name: José'] })).headers['x-name'] ?? '';
    expect(Buffer.from(h, 'latin1').toString('utf8')).toBe('José');
  });

  it('takes -d as text, @FILE or @- (stdin), byte for byte', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    const file = join(dir, 'body.bin');
    await writeFile(file, bytes);
    expect((await request('f', { data: `@${file}` })).body).toEqual(bytes);
    expect((await request('f', { data: '@-' }, { stdin: stdinOf(bytes.subarray(0, 3), bytes.subarray(3)) })).body).toEqual(bytes);
    expect((await request('f', { data: 'héllo\n' })).body).toEqual(Buffer.from('héllo\n'));
    expect((await request('f', { data: '' })).body).toEqual(Buffer.alloc(0));
    // Stdin is read only when -d @- asks for it.
    expect((await request('f', { path: '/' }, { stdin: stdinOf(Buffer.from('ignored')) })).body).toBeUndefined();
  });

  it('refuses bad flags as usage errors, before anything is read or sent', async () => {
    expect(usage(() => planWebRequest('f', { path: 'users' }))).toBe(
      '--path: expected a path starting with "/", such as /users/1, got "users"',
    );
    expect(usage(() => planWebRequest('f', { path: '/a/../runtimes' }))).toMatch(/^--path: "\." and "\.\." segments cannot be sent/);
    expect(usage(() => planWebRequest('f', { path: '/a/%2E%2e' }))).toMatch(/segments cannot be sent/);
    expect(usage(() => planWebRequest('f', { path: '/.' }))).toMatch(/segments cannot be sent/);
    expect(usage(() => planWebRequest('f', { query: ['name'] }))).toBe('-q: expected key=value, got "name"');
    expect(usage(() => planWebRequest('f', { query: ['=v'] }))).toBe('-q: expected key=value, got "=v"');
    expect(usage(() => planWebRequest('f', { header: ['X-Tag one'] }))).toBe('-H: expected "Name: value", got "X-Tag one"');
    expect(usage(() => planWebRequest('f', { header: [': v'] }))).toBe('-H: expected "Name: value", got ": v"');
    expect(usage(() => planWebRequest('f', { header: ['Bad Name: v'] }))).toMatch(/^-H: "Bad Name" is not a header name/);
    expect(usage(() => planWebRequest('f', { header: ['X-A: one\ntwo'] }))).toBe(
      '-H: the value of X-A holds a line break or another control character',
    );
    expect(usage(() => planWebRequest('f', { header: ['Content-Length: 3'] }))).toBe(
      '-H: Content-Length is set by the HTTP connection itself, not by -H',
    );
    expect(usage(() => planWebRequest('f', { header: ['Host: other'] }))).toMatch(/^-H: Host is set by the HTTP connection/);
    expect(usage(() => planWebRequest('f', { method: 'GET /x' }))).toMatch(
      /^--method: expected an HTTP method such as GET, .*got "GET \/x"$/,
    );
    expect(usage(() => planWebRequest('f', { method: 'CONNECT' }))).toMatch(/^--method: expected an HTTP method/);
    expect(usage(() => planWebRequest('f', { method: 'GET', data: 'x' }))).toMatch(/^-d: a GET request carries no body/);
    expect(usage(() => planWebRequest('f', { data: '@' }))).toBe('-d @FILE: name the file after "@" ("@-" for stdin)');
    expect(usage(() => planWebRequest('../x', { path: '/' }))).toBe('invalid function "../x": expected NAME or NAME@VERSION');
    expect(usage(() => planWebRequest('f@0', { path: '/' }))).toMatch(/^invalid function "f@0"/);

    const missing = join(dir, 'missing.bin');
    const e = await readWebBody(planWebRequest('f', { data: `@${missing}` }).data, noStdin()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe(`cannot read -d @${missing}: ENOENT`);
    await expect(readWebBody({ from: 'file', file: dir }, noStdin())).rejects.toThrow(/: EISDIR$/);
  });

  it('maps a failure to connect to the unreachable exit code', async () => {
    const refused: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    };
    const e = await sendWeb(
      refused,
      'http://x:9',
      toFetchRequest('http://x:9', undefined, planWebRequest('f', { path: '/' }), undefined),
    ).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UnreachableError);
    expect(describeFailure(e).exitCode).toBe(EXIT.UNREACHABLE);
  });

  it("follows the API's own redirect to the functions' origin once, with the same request; never a function's", async () => {
    const asked: { url: string; method?: string; auth: string | null; body?: string }[] = [];
    const fake =
      (answers: Response[]): typeof fetch =>
      async (input, init) => {
        asked.push({
          url: String(input),
          method: init?.method,
          auth: new Headers(init?.headers).get('authorization'),
          body: init?.body ? Buffer.from(init.body as Uint8Array).toString() : undefined,
        });
        return answers.shift()!;
      };
    const req = toFetchRequest(API, 'tok', planWebRequest('f', { path: '/x', query: ['a=1'], data: '{"n":1}' }), Buffer.from('{"n":1}'));
    const moved = new Response(null, { status: 308, headers: { location: 'http://127.0.0.1:3001/function/f/x?a=1' } });
    const res = await sendWeb(fake([moved, fnResponse('ok', 200)]), API, req);
    expect(await res.text()).toBe('ok');
    expect(asked).toEqual([
      { url: `${API}/function/f/x?a=1`, method: 'POST', auth: 'Bearer tok', body: '{"n":1}' },
      { url: 'http://127.0.0.1:3001/function/f/x?a=1', method: 'POST', auth: 'Bearer tok', body: '{"n":1}' },
    ]);
    // The function's own 308 (it has X-Zfaas-Status) is its answer, shown as it is.
    asked.length = 0;
    const own = fnResponse(null, 308, { location: 'http://elsewhere.example/' });
    expect((await sendWeb(fake([own]), API, req)).status).toBe(308);
    expect(asked).toHaveLength(1);
  });
});

/** A sink that keeps the bytes, and the answer printed to it with the notes and the exit code (or failure). */
async function answer(res: Response, include = false) {
  const chunks: Buffer[] = [];
  const sink: ByteSink = { write: async (c) => void chunks.push(Buffer.from(c)) };
  const notes: string[] = [];
  const code = await printWebAnswer(res, sink, { include, note: (t) => void notes.push(t) }).catch((e: unknown) => describeFailure(e));
  return { code, out: Buffer.concat(chunks), notes };
}

const fnResponse = (body: BodyInit | null, status: number, headers: Record<string, string> = {}): Response =>
  new Response(body, { status, statusText: STATUS_CODES[status], headers: { 'x-zfaas-status': 'DONE', 'x-zfaas-call': '7', ...headers } });

describe('the answer', () => {
  it('is the body as it came: binary-safe, nothing added, exit 0 whatever status the function chose', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0xff, 10]);
    expect(await answer(fnResponse(png, 200, { 'content-type': 'image/png' }))).toEqual({ code: 0, out: png, notes: [] });
    expect(await answer(fnResponse('no route /x', 404))).toEqual({ code: 0, out: Buffer.from('no route /x'), notes: [] });
    expect(await answer(fnResponse(null, 204))).toEqual({ code: 0, out: Buffer.alloc(0), notes: [] });
    // A redirect the function chose is shown, not followed.
    expect((await answer(fnResponse('moved', 302, { location: '/elsewhere' }))).code).toBe(0);
  });

  it('starts with the status line and headers under -i, as curl -i prints them', async () => {
    const res = fnResponse('hello ana', 201, { 'Content-Type': 'text/plain', 'X-Served-By': 'hello' });
    res.headers.append('set-cookie', 'a=1; Path=/');
    res.headers.append('set-cookie', 'b=2');
    const r = await answer(res, true);
    expect(r.code).toBe(0);
    expect(r.out.toString()).toBe(
      [
        'HTTP/1.1 201 Created',
        'content-type: text/plain',
        'set-cookie: a=1; Path=/',
        'set-cookie: b=2',
        'x-served-by: hello',
        'x-zfaas-call: 7',
        'x-zfaas-status: DONE',
        '',
        'hello ana',
      ].join('\r\n') + '\n', // the body's line ended, so the shell's prompt starts on its own line
    );
    // A body that ends its line already, or an empty one, gets nothing more; without -i nothing is added.
    expect((await answer(fnResponse('done\n', 200), true)).out.toString()).toMatch(/\r\n\r\ndone\n$/);
    expect((await answer(fnResponse(null, 204), true)).out.toString()).toMatch(/\r\n\r\n$/);
    expect((await answer(fnResponse('hello ana', 200))).out.toString()).toBe('hello ana');
    expect(formatHead(418, "I'm a Teapot", new Headers())).toBe("HTTP/1.1 418 I'm a Teapot\r\n\r\n");
    expect(formatHead(299, '', new Headers({ 'x-a': 'b' }))).toBe('HTTP/1.1 299\r\nx-a: b\r\n\r\n');
    expect(formatHead(200, 'Fine', new Headers({ 'x-c': 'caf\u009b' }))).toBe('HTTP/1.1 200 Fine\r\nx-c: caf\\u009b\r\n\r\n');
  });

  it('exits 3 for ERROR and 4 for TIMEOUT, saying why on stderr (and showing the answer with -i)', async () => {
    const failed = (status: string, code: number): Response =>
      new Response(JSON.stringify({ error: `Error: ${status.toLowerCase()} on purpose\n    at handler`, status, callNum: 9 }), {
        status: code,
        statusText: STATUS_CODES[code],
        headers: { 'content-type': 'application/json', 'x-zfaas-status': status, 'x-zfaas-call': '9' },
      });
    expect(await answer(failed('ERROR', 500))).toEqual({
      code: EXIT.CALL_ERROR,
      out: Buffer.alloc(0),
      notes: ['zfaas: call 9 ended in ERROR: Error: error on purpose\n    at handler'],
    });
    expect(await answer(failed('TIMEOUT', 504))).toMatchObject({
      code: EXIT.CALL_TIMEOUT,
      notes: [expect.stringMatching(/^zfaas: call 9 ended in TIMEOUT: /)],
    });
    const shown = await answer(failed('ERROR', 502), true);
    expect(shown.code).toBe(EXIT.CALL_ERROR);
    expect(shown.out.toString()).toMatch(/^HTTP\/1\.1 502 Bad Gateway\r\n[^]*x-zfaas-status: ERROR\r\n\r\n\{"error":[^\n]*\}\n$/);
    expect((await answer(new Response('', { status: 500, headers: { 'x-zfaas-status': 'ERROR' } }))).notes).toEqual([
      'zfaas: the call ended in ERROR: no error text',
    ]);
  });

  it("turns the API's refusals (no X-Zfaas-Status) into one line and exit 1 (77 for the token)", async () => {
    const refusal = (status: number, error: string, headers: Record<string, string> = {}): Response =>
      new Response(JSON.stringify({ error }), { status, headers: { 'content-type': 'application/json', ...headers } });
    expect(await answer(refusal(404, 'function nope not found'))).toEqual({
      code: { message: 'function nope not found', exitCode: EXIT.FAILURE },
      out: Buffer.alloc(0),
      notes: [],
    });
    expect((await answer(refusal(413, 'request body too large'))).code).toEqual({
      message: 'request body too large',
      exitCode: EXIT.FAILURE,
    });
    expect((await answer(refusal(429, 'rate limited', { 'retry-after': '1' }))).code).toEqual({
      message: 'rate limited (retry after 1 s)',
      exitCode: EXIT.FAILURE,
    });
    expect((await answer(refusal(401, 'missing or wrong token'))).code).toEqual({ message: 'missing or wrong token', exitCode: EXIT.AUTH });
    expect((await answer(new Response('Bad Gateway', { status: 502 }))).code).toEqual({ message: 'Bad Gateway', exitCode: EXIT.FAILURE });
    // The API stopped waiting for a call it started: not finished yet, as for the key=value form.
    expect((await answer(refusal(504, 'call 9 has not finished yet; poll GET /call/9', { 'x-zfaas-call': '9' }))).code).toEqual({
      message: 'call 9 has not finished yet; poll GET /call/9',
      exitCode: EXIT.CALL_PENDING,
    });
    const e = await printWebAnswer(refusal(404, 'x'), { write: async () => undefined }, { note: () => undefined }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
  });
});

describe('zfaas invoke, web form', () => {
  async function invoke(
    args: string[],
    reply?: Response,
    stdin: Readable & { isTTY?: boolean } = Object.assign(noStdin(), { isTTY: true }),
  ) {
    let code = 0;
    const notes: string[] = [];
    const printed: string[] = [];
    const chunks: Buffer[] = [];
    const asked: Array<{ url: string; init?: RequestInit }> = [];
    const out: Output = {
      print: (t) => void printed.push(t),
      note: (t) => void notes.push(t),
      json: (v) => void printed.push(JSON.stringify(v)),
      table: () => undefined,
      fields: () => undefined,
      progress: () => undefined,
    };
    const fetchFn: typeof fetch = async (url, init) => {
      asked.push({ url: String(url), init });
      if (!reply) throw new Error('nothing may be sent');
      return reply;
    };
    const p = new Command('zfaas');
    p.option('--api <url>').option('--token <token>');
    const deps = makeDeps({
      out,
      env: { ZFAAS_CONFIG: join(dir, 'none.json'), ZFAAS_TOKEN: 'tok' },
      stdin,
      fetchFn,
      setExitCode: (c) => (code = c),
    });
    invokeCommand(p, deps, { fetchFn, stdout: { write: async (c) => void chunks.push(Buffer.from(c)) } });
    await p.parseAsync(['invoke', ...args], { from: 'user' });
    return { code, notes, printed, out: Buffer.concat(chunks), asked };
  }

  it('sends the request and prints the raw answer, with -i its head first', async () => {
    const r = await invoke(['api', '--path', '/hello', '-q', 'name=ana', '-H', 'Accept: text/plain', '-i'], fnResponse('hello ana', 201));
    expect(r.code).toBe(0);
    expect(r.asked).toHaveLength(1);
    expect(r.asked[0]?.url).toBe(`${API}/function/api/hello?name=ana`);
    expect(r.asked[0]?.init?.method).toBe('GET');
    expect(Object.fromEntries(new Headers(r.asked[0]?.init?.headers).entries())).toEqual({
      accept: 'text/plain',
      authorization: 'Bearer tok',
    });
    expect(r.out.toString()).toMatch(/^HTTP\/1\.1 201 Created\r\n[^]*\r\n\r\nhello ana\n$/);
    expect(r.printed).toEqual([]);

    const piped = await invoke(
      ['api', '-d', '@-'],
      fnResponse('ok', 200),
      Object.assign(stdinOf(Buffer.from([1, 2, 3])), { isTTY: false }),
    );
    expect(piped.asked[0]?.init?.method).toBe('POST');
    expect(piped.out.toString()).toBe('ok');
  });

  it('exits with the call outcome', async () => {
    const failed = new Response('{"error":"boom"}', { status: 500, headers: { 'x-zfaas-status': 'ERROR', 'x-zfaas-call': '3' } });
    expect(await invoke(['api', '--path', '/fail'], failed)).toMatchObject({
      code: EXIT.CALL_ERROR,
      notes: ['zfaas: call 3 ended in ERROR: boom'],
    });
    const gone = new Response('{"error":"function api not found"}', { status: 404 });
    expect(await invoke(['api', '--path', '/'], gone)).toMatchObject({ code: EXIT.FAILURE, notes: ['zfaas: function api not found'] });
  });

  it('refuses bad or mixed flags with exit 2, sending nothing', async () => {
    for (const [args, note] of [
      [['api', '--path', 'x'], 'zfaas: --path: expected a path starting with "/", such as /users/1, got "x"'],
      [['api', '-H', 'nocolon'], 'zfaas: -H: expected "Name: value", got "nocolon"'],
      [['api', '-q', 'k'], 'zfaas: -q: expected key=value, got "k"'],
      [['api', '-d', `@${join(dir, 'missing')}`], `zfaas: cannot read -d @${join(dir, 'missing')}: ENOENT`],
      [
        ['api', '--path', '/', 'name=ana', '--json'],
        'zfaas: a web request (--method, --path, -q, -H, -d) takes no key=value words, --json: drop them, or the web flags',
      ],
      [
        ['api', '-d', 'x', '--batch', 'f.jsonl'],
        'zfaas: a web request (--method, --path, -q, -H, -d) takes no --batch: drop them, or the web flags',
      ],
      [['api', '-i'], 'zfaas: -i shows the answer to a web request: add --path / (or --method, -q, -H, -d)'],
    ] as Array<[string[], string]>) {
      const r = await invoke(args);
      expect(r, args.join(' ')).toMatchObject({ code: EXIT.USAGE, notes: [note], asked: [] });
    }
  });

  it('without web flags, invokes as before (POST /invokeFunction, the result printed)', async () => {
    const call = {
      callNum: 1,
      funcName: 'hello',
      version: 1,
      params: { name: 'ana' },
      status: 'DONE',
      result: '{"hello":"ana"}',
      attempts: 1,
      createdAt: '2026-12-01T00:00:00.000Z',
    };
    const r = await invoke(['hello', 'name=ana'], new Response(JSON.stringify(call), { status: 200 }));
    expect(r.code).toBe(0);
    expect(r.asked[0]?.url).toBe(`${API}/invokeFunction`);
    expect(JSON.parse(String(r.asked[0]?.init?.body))).toMatchObject({ funcName: 'hello', params: { name: 'ana' } });
    expect(r.printed).toEqual(['{\n  "hello": "ana"\n}']);
    expect(r.out.length).toBe(0);
  });
});
