// Unit tests of the CLI's client side: params, config precedence, reply checking and error mapping.
// (The commands themselves are tested end to end in test/cli.e2e.test.ts.)
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from './api.js';
import { configPath, normalizeApi, resolveConfig, writeConfigFile } from './config.js';
import { ApiError, EXIT, UnreachableError, UsageError, describeFailure, printable } from './errors.js';
import { bytes, firstLine, msSetting, prettyResult, preview, until } from './format.js';
import { renderTable } from './output.js';
import { ignoreLines } from '../pack/ignore.js';
import { parsePair, readParams } from './params.js';
import { multipartBody } from './upload.js';

const noStdin = (): Readable & { isTTY?: boolean } => Object.assign(Readable.from([]), { isTTY: true });
const stdinOf = (text: string): Readable & { isTTY?: boolean } => Object.assign(Readable.from([Buffer.from(text)]), { isTTY: false });

describe('params', () => {
  it('parses key=value pairs, JSON when they are JSON', () => {
    expect(parsePair('n=3')).toEqual(['n', 3]);
    expect(parsePair('s=abc')).toEqual(['s', 'abc']);
    expect(parsePair('e=')).toEqual(['e', '']);
    expect(parsePair('q="3"')).toEqual(['q', '3']);
    expect(parsePair('a=x=y')).toEqual(['a', 'x=y']);
    expect(() => parsePair('=v')).toThrow(UsageError);
  });

  it('takes one source, merges pairs into objects, and treats a TTY stdin as no params', async () => {
    expect(await readParams({ words: [], stdin: noStdin() })).toEqual({});
    expect(await readParams({ params: '[1,2]', words: [], stdin: noStdin() })).toEqual([1, 2]);
    expect(await readParams({ params: '{"a":1}', words: ['b=2'], stdin: noStdin() })).toEqual({ a: 1, b: 2 });
    expect(await readParams({ words: [], stdin: stdinOf('"text"') })).toBe('text');
    expect(await readParams({ words: [], stdin: stdinOf('') })).toEqual({});
    // Pairs alone do not read a piped stdin.
    expect(await readParams({ words: ['k=v'], stdin: stdinOf('{"ignored":1}') })).toEqual({ k: 'v' });
    await expect(readParams({ params: '[1]', words: ['k=v'], stdin: noStdin() })).rejects.toThrow(/only be added to a JSON object/);
    await expect(readParams({ params: '{}', words: ['-'], stdin: noStdin() })).rejects.toThrow(/one way/);
    await expect(readParams({ params: '{x', words: [], stdin: noStdin() })).rejects.toMatchObject({ exitCode: EXIT.USAGE });
  });

  it('refuses params the API would refuse before sending them: too deep, too large', async () => {
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`;
    expect(await readParams({ params: `${'['.repeat(64)}${']'.repeat(64)}`, words: [], stdin: noStdin() })).toBeInstanceOf(Array);
    await expect(readParams({ params: deep, words: [], stdin: noStdin() })).rejects.toThrow(/nests more than 64 levels/);
    await expect(readParams({ words: ['-'], stdin: stdinOf(deep) })).rejects.toMatchObject({ exitCode: EXIT.USAGE });
    await expect(readParams({ words: ['-'], stdin: stdinOf(JSON.stringify('x'.repeat(1024 * 1024))) })).rejects.toThrow(
      /larger than 1 MiB/,
    );
  });
});

describe('printable', () => {
  it('shows control characters escaped, keeping line breaks only where asked', () => {
    expect(printable('function "a\nb" not found')).toBe('function "a\\nb" not found');
    expect(printable('\x1b[2Jred\u2028')).toBe('\\u001b[2Jred\\u2028');
    expect(printable('line 1\n\tline 2\x07', false)).toBe('line 1\n\tline 2\\u0007');
    expect(printable('café ok')).toBe('café ok');
  });
});

describe('config', () => {
  let dir: string;
  afterAll(async () => dir && rm(dir, { recursive: true, force: true }));

  it('normalizes API addresses', () => {
    expect(normalizeApi('localhost:3000')).toBe('http://localhost:3000');
    expect(normalizeApi('https://faas.example/')).toBe('https://faas.example');
    expect(() => normalizeApi('ftp://x')).toThrow(UsageError);
  });

  it('prefers the flag, then the environment, then the file, then the default', async () => {
    dir = await mkdtemp(join(tmpdir(), 'zfaas-cfg-'));
    const file = join(dir, 'sub', 'config.json');
    expect(configPath({ ZFAAS_CONFIG: file })).toBe(file);
    expect(configPath({ XDG_CONFIG_HOME: '/x' })).toBe('/x/zfaas/config.json');
    expect(configPath({ HOME: '/h' })).toBe('/h/.config/zfaas/config.json');

    expect(await resolveConfig({}, { ZFAAS_CONFIG: file })).toMatchObject({
      api: 'http://127.0.0.1:3000',
      apiFrom: 'default',
      token: undefined,
    });
    await writeConfigFile(file, { api: 'http://file:1', token: 'ft' });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ api: 'http://file:1', token: 'ft' });
    expect(await resolveConfig({}, { ZFAAS_CONFIG: file })).toMatchObject({ api: 'http://file:1', apiFrom: 'file', token: 'ft' });
    expect(await resolveConfig({}, { ZFAAS_CONFIG: file, ZFAAS_API: 'http://env:2', ZFAAS_TOKEN: 'et' })).toMatchObject({
      api: 'http://env:2',
      apiFrom: 'env',
      token: 'et',
    });
    expect(await resolveConfig({ api: 'http://flag:3', token: 'tt' }, { ZFAAS_CONFIG: file, ZFAAS_API: 'http://env:2' })).toMatchObject({
      api: 'http://flag:3',
      apiFrom: 'flag',
      token: 'tt',
    });
  });
});

describe('ApiClient', () => {
  const reply =
    (status: number, body: unknown, seen?: { url?: string; init?: RequestInit }): typeof fetch =>
    async (url, init) => {
      if (seen) Object.assign(seen, { url: String(url), init });
      return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
    };

  it('sends the token as a bearer and checks replies against their schema', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(
      'http://x',
      'tok',
      reply(200, [{ name: 'node', image: 'zfaas/node:latest', path: '/ws', dependencies: '', run: 'r' }], seen),
    );
    expect((await api.runtimes())[0]?.name).toBe('node');
    expect(seen.url).toBe('http://x/runtimes?detail=true');
    expect((seen.init?.headers as Record<string, string>).authorization).toBe('Bearer tok');

    const wrong = new ApiClient('http://x', undefined, reply(200, [{ name: 5 }]));
    await expect(wrong.runtimes()).rejects.toThrow(/unexpected reply from http:\/\/x to GET \/runtimes \(0\.name/);
  });

  it('follows a waited call in rounds until it ends, or until the API stops waiting for it', async () => {
    const call = (status: string): object => ({
      callNum: 7,
      funcName: 'slow',
      version: 1,
      params: {},
      status,
      result: status === 'DONE' ? '1' : '',
      attempts: 1,
      createdAt: '2026-11-23T00:00:00.000Z',
    });
    const script = (answers: [number, string, string?][]): { fetch: typeof fetch; urls: string[]; bodies: unknown[] } => {
      const urls: string[] = [];
      const bodies: unknown[] = [];
      return {
        urls,
        bodies,
        fetch: async (url, init) => {
          urls.push(String(url));
          bodies.push(init?.body ? JSON.parse(String(init.body)) : undefined);
          const [status, state, left] = answers.shift()!;
          return new Response(JSON.stringify(call(state)), { status, headers: left === undefined ? {} : { 'x-zfaas-wait-left': left } });
        },
      };
    };
    // A long call: the POST's round and a first GET round end before it does; the second GET sees it end.
    const long = script([
      [202, 'RUNNING'],
      [202, 'RUNNING', '500'],
      [200, 'DONE', '400'],
    ]);
    expect(await new ApiClient('http://x', undefined, long.fetch).invoke('slow', {}, true)).toMatchObject({
      finished: true,
      call: { status: 'DONE' },
    });
    expect(long.bodies[0]).toMatchObject({ wait: 240 }); // each round well inside fetch's five minutes
    expect(long.urls.slice(1)).toEqual(['http://x/call/7?wait=240', 'http://x/call/7?wait=240']);
    // A call nobody runs (no node): the API's budget runs out and the client stops with it.
    const stuck = script([
      [202, 'PENDING'],
      [202, 'PENDING', '0'],
    ]);
    expect(await new ApiClient('http://x', undefined, stuck.fetch).invoke('slow', {}, true)).toMatchObject({
      finished: false,
      call: { status: 'PENDING' },
    });
    // --async: one request, no waiting.
    const async = script([[202, 'PENDING']]);
    expect(await new ApiClient('http://x', undefined, async.fetch).invoke('slow', {}, false)).toMatchObject({ finished: false });
    expect(async.urls).toHaveLength(1);
  });

  it("maps the API's errors and unreachable hosts to their exit codes", async () => {
    const notFound = new ApiClient('http://x', undefined, reply(404, { error: 'function f not found' }));
    const e = await notFound.fn('f').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(describeFailure(e)).toEqual({ message: 'function f not found', exitCode: EXIT.FAILURE });
    expect(await notFound.fnIfExists('f')).toBeNull();

    const auth = new ApiClient('http://x', undefined, reply(401, 'nope'));
    expect(describeFailure(await auth.nodes().catch((x: unknown) => x))).toEqual({ message: 'nope', exitCode: EXIT.AUTH });

    const refused: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    };
    const down = await new ApiClient('http://x:9', undefined, refused).nodes().catch((x: unknown) => x);
    expect(down).toBeInstanceOf(UnreachableError);
    expect(describeFailure(down)).toMatchObject({
      exitCode: EXIT.UNREACHABLE,
      message: expect.stringMatching(/^cannot reach the zfaas API at http:\/\/x:9 \(connection refused\)/),
    });
  });

  it('uploads the archive as the multipart field "module" after the settings', async () => {
    const { bytes: body, contentType } = await multipartBody([['env', 'A=1']], new Uint8Array([1, 2, 3]), 'f.tar.gz');
    const text = Buffer.from(body).toString('latin1');
    expect(contentType).toMatch(/^multipart\/form-data; boundary=/);
    expect(text.indexOf('name="env"')).toBeLessThan(text.indexOf('name="module"; filename="f.tar.gz"'));
  });
});

describe('formatting', () => {
  it('pretty-prints JSON results and leaves the rest alone', () => {
    expect(prettyResult('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(prettyResult('plain text\n')).toBe('plain text');
    expect(prettyResult('')).toBe('');
  });

  it('first lines, times to come and millisecond settings', () => {
    expect(firstLine('\n Error: boom\n    at f (x.js:1:1)')).toBe('Error: boom');
    expect(firstLine('x'.repeat(20), 5)).toBe('xxxx…');
    expect(firstLine('\x1b[2Jred')).toBe('\\u001b[2Jred');
    expect(firstLine(undefined)).toBe('');
    const now = Date.parse('2026-11-23T12:00:00Z');
    expect(until('2026-11-23T12:00:30Z', now)).toBe('in 30s');
    expect(until('2026-11-23T12:05:00Z', now)).toBe('in 5m');
    expect(until('2026-11-23T11:59:00Z', now)).toBe('due');
    expect(msSetting(500)).toBe('500ms');
    expect(msSetting(1500)).toBe('1.5s');
    expect(msSetting(120_000)).toBe('2m');
    expect(msSetting(90_000)).toBe('1m30s');
  });

  it('sizes, previews, tables and ignore files', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(1536)).toBe('1.5 kB');
    expect(bytes(50 * 1024 * 1024)).toBe('50 MB');
    expect(preview('a\n  b', 10)).toBe('a b');
    expect(preview('x'.repeat(20), 5)).toBe('xxxx…');
    expect(renderTable(['A', 'LONG'], [['1', '2']], false)).toBe('A   LONG\n1   2');
    expect(ignoreLines('# comment\n\nnode_modules/.cache\n\\#hash\n  *.log  \n')).toEqual(['node_modules/.cache', '#hash', '*.log']);
  });
});
