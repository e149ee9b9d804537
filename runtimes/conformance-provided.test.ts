// The provided loader on this machine (no Docker), over its stdin/stdout line: it serves the Lambda Runtime
// API to a bootstrap written in bash with curl (runtimes/fixtures/provided-sh, and small ones written here)
// on a free loopback port instead of the container's 9001. Each call is one invocation whose response is
// the result; an error posted fails the call; a runtime that posts to init/error, exits before asking for
// work, or is not there fails the load saying why; one that exits between calls is started again.
import { chmod, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpResponseSchema } from '../protocol/loader.js';
import { spawnLoader, type Reply, type Speaker } from './conformance/speaker.js';

const HERE = resolve(import.meta.dirname);
const LOADER = [process.execPath, join(HERE, 'provided/loader.js')];
let root = '';
const started: Speaker[] = [];
// The loader's Runtime API port; TMPDIR the test's folder, so that what a bootstrap makes there (a
// bootstrap ended while it waits for its next invocation keeps its temp file) goes with it.
const loaderEnv = (port: number): Record<string, string> => ({ ZFAAS_RUNTIME_API_PORT: String(port), TMPDIR: root });

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

// A folder holding `bootstrap` with this script (executable unless told).
async function runtime(name: string, script: string, executable = true): Promise<string> {
  const dir = join(root, name);
  await cp(join(HERE, 'fixtures', 'provided-sh'), dir, { recursive: true });
  if (script) await writeFile(join(dir, 'bootstrap'), script);
  await chmod(join(dir, 'bootstrap'), executable ? 0o755 : 0o644);
  return dir;
}

async function load(dir: string, handler: string | null = null): Promise<{ s: Speaker; r: Reply }> {
  const s = spawnLoader(LOADER, dir, loaderEnv(await freePort()));
  started.push(s);
  expect((await s.next()).op).toBe('hello');
  return { s, r: await s.ask({ op: 'load', dir, handler, env: { ZFAAS_FUNCTION: 'fn' } }) };
}

let ids = 0;
const call = (s: Speaker, params: unknown, env: Record<string, string> = {}): Promise<Reply> =>
  s.ask({ op: 'call', id: ++ids, params, env });
const resultOf = (r: Reply): Record<string, unknown> => JSON.parse(r.op === 'result' ? (r.result ?? '') : '') as Record<string, unknown>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'zfaas-provided-'));
});
afterEach(async () => {
  for (const s of started.splice(0)) await s.end();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the provided loader', () => {
  it('serves invocation/next with the request id, deadline and ARN headers, and takes the response as the result', async () => {
    const { s, r } = await load(await runtime('sh', ''), 'function.handler');
    expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'json' });
    const first = await call(s, { a: 1 }, { ZFAAS_DEADLINE: '1999999999999' });
    expect(first, s.stderr).toMatchObject({ op: 'result', ok: true });
    const v = resultOf(first);
    expect(v).toMatchObject({
      count: 1,
      deadline: 1999999999999,
      arn: 'arn:aws:lambda:local:000000000000:function:fn',
      handler: 'function.handler',
      event: { a: 1 },
    });
    expect(first.op === 'result' && first.logs).toContain(`invocation ${String(v.requestId)} (1)`);
    const second = resultOf(await call(s, [1, 2]));
    expect(second).toMatchObject({ count: 2, event: [1, 2] }); // the same runtime, warm
    expect(second.requestId).not.toBe(v.requestId);
  });

  it('gives a web call to a lambda-format runtime as an API Gateway event, and makes the response of its answer', async () => {
    const dir = await runtime('sh-lambda', '');
    const s = spawnLoader(LOADER, dir, loaderEnv(await freePort()));
    started.push(s);
    await s.next();
    expect(await s.ask({ op: 'load', dir, handler: null, env: {}, format: 'lambda' })).toEqual({
      op: 'loaded',
      ok: true,
      format: 'lambda',
    });
    const http = {
      method: 'GET',
      path: '/users/1',
      query: 'name=ana',
      headers: { host: 'fn.example.test' },
      body: '',
      sourceIp: '127.0.0.1',
    };
    const r = await s.ask({ op: 'call', id: ++ids, params: {}, env: {}, http });
    expect(r, s.stderr).toMatchObject({ op: 'result', ok: true });
    const res = HttpResponseSchema.parse(r.op === 'result' && r.http);
    expect(res.status).toBe(200); // an answer without statusCode: its JSON is the body (payload 2.0)
    const event = (JSON.parse(Buffer.from(res.body, 'base64').toString('utf8')) as { event: Record<string, unknown> }).event;
    expect(event).toMatchObject({ version: '2.0', rawPath: '/users/1', queryStringParameters: { name: 'ana' } });
    expect(event.requestContext).toMatchObject({ http: { method: 'GET', path: '/users/1' } });
  });

  it('fails a call whose runtime posted to invocation/ID/error with its type and message, and serves the next', async () => {
    const { s } = await load(await runtime('sh-error', ''));
    const failed = await call(s, { fail: true });
    expect(failed).toMatchObject({ ok: false, error: 'HandlerError: the shell runtime failed on purpose' });
    expect(resultOf(await call(s, { b: 2 }))).toMatchObject({ count: 2, event: { b: 2 } });
  });

  it('fails the load of a runtime that posts to init/error, saying what it posted', async () => {
    const dir = await runtime(
      'init-error',
      '#!/bin/bash\ncurl -sS -X POST "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error" -d \'{"errorMessage":"no config","errorType":"InitError"}\'\nexec sleep 60\n',
    );
    const { r } = await load(dir);
    expect(r).toMatchObject({ op: 'loaded', ok: false, error: expect.stringContaining('InitError: no config') });
  });

  it('fails the load of a runtime that ends before asking for work, or cannot start', async () => {
    const quits = await load(await runtime('quits', '#!/bin/bash\necho bye\nexit 3\n'));
    expect(quits.r).toMatchObject({ ok: false, error: expect.stringContaining('exit code 3') });
    const plain = await load(await runtime('not-executable', '', false));
    expect(plain.r).toMatchObject({ ok: false, error: expect.stringContaining('not executable') });
    const none = await load(root);
    expect(none.r).toMatchObject({ ok: false, error: expect.stringContaining('no bootstrap') });
  });

  it('starts a runtime again for the next call after it ended in one', async () => {
    const dir = await runtime(
      'ends',
      [
        '#!/bin/bash',
        'API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"',
        'H="$(mktemp)"; EVENT="$(curl -sS -D "$H" "$API/invocation/next")"',
        'ID="$(grep -Fi Lambda-Runtime-Aws-Request-Id "$H" | tr -d \'[:space:]\' | cut -d: -f2)"',
        '[[ "$EVENT" == *crash* ]] && exit 9',
        'curl -sS -X POST "$API/invocation/$ID/response" -d "{\\"pid\\":$$}" >/dev/null',
        'exec sleep 60',
        '',
      ].join('\n'),
    );
    const { s, r } = await load(dir);
    expect(r, s.stderr).toMatchObject({ ok: true });
    expect(await call(s, { crash: true })).toMatchObject({ ok: false, error: expect.stringContaining('exit code 9') });
    expect(resultOf(await call(s, {}))).toHaveProperty('pid');
  });
});
