// The built-in `provided` runtime, against the real services: a function whose archive holds a `bootstrap`
// (a custom runtime) finds AWS_LAMBDA_RUNTIME_API set and is served the Lambda Runtime API's invocation/next,
// response, error and init/error with the request id, deadline and function ARN headers; warm, one
// invocation at a time per container. The custom runtimes are a bash script using curl
// (runtimes/fixtures/provided-sh) and a Go program using only the standard library's HTTP client
// (runtimes/fixtures/provided-go, built here with Debian's golang-go).
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../cli/pack/pack.js';
import { ROOT, startUp, tempDir, upload, type CallView, type Platform } from './helpers/platform.js';

const run = promisify(execFile);
const TOKEN = 'provided-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
let p: Platform;
let goDir = '';

async function deploy(name: string, dir: string, fields: Record<string, string> = {}): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/provided/${name}`, await packDirectory(dir), `${name}.tar.gz`, fields, auth);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

async function invoke(funcName: string, params: unknown): Promise<CallView> {
  const r = await fetch(`${p.api}/invokeFunction`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ funcName, params, wait: true }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as CallView;
}

const parsed = (c: CallView): Record<string, unknown> => JSON.parse(c.result) as Record<string, unknown>;

beforeAll(async () => {
  // The Go runtime, built as Lambda's docs build one: a static binary named bootstrap.
  goDir = await tempDir('zfaas-provided-go-');
  const env = { ...process.env, CGO_ENABLED: '0', GOCACHE: join(goDir, '.cache'), GOFLAGS: '-mod=mod' };
  await run('go', ['build', '-o', join(goDir, 'fn', 'bootstrap'), '.'], {
    cwd: join(ROOT, 'runtimes', 'fixtures', 'provided-go'),
    env,
  }).catch((e: Error) => {
    throw new Error(`cannot build the Go runtime (scripts/ensure-go.sh installs go): ${e.message}`);
  });
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: TOKEN });
  await deploy('sh-runtime', join(ROOT, 'runtimes', 'fixtures', 'provided-sh'), { handler: 'function.handler' });
  await deploy('sh-web', join(ROOT, 'runtimes', 'fixtures', 'provided-sh'), { format: 'lambda' });
  await deploy('go-runtime', join(goDir, 'fn'));
  await deploy('go-init-fails', join(goDir, 'fn'), { env: JSON.stringify({ FAIL_INIT: '1' }) });
  await deploy('no-bootstrap', join(ROOT, 'runtimes', 'fixtures', 'provided-go'));
});

afterAll(async () => {
  await p?.stop();
  if (goDir) await rm(goDir, { recursive: true, force: true });
});

describe('a custom runtime in bash and curl', () => {
  it('gets each call as an invocation with its request id, deadline, ARN and handler, and stays warm', async () => {
    const before = Date.now();
    const first = await invoke('sh-runtime', { a: 1 });
    expect(first.status, first.error).toBe('DONE');
    const r = parsed(first);
    expect(r.event).toEqual({ a: 1 });
    expect(r.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(r.deadline)).toBeGreaterThan(before);
    expect(r.arn).toBe('arn:aws:lambda:local:000000000000:function:sh-runtime');
    expect(r.handler).toBe('function.handler');
    expect(r.shell).toBe('/bin/bash');
    expect(first.logs).toContain(`invocation ${String(r.requestId)}`);
    const second = parsed(await invoke('sh-runtime', { a: 2 }));
    expect(second.requestId).not.toBe(r.requestId);
    expect(second.count).toBe(2); // the same bootstrap process served it
  });

  it('ends a call in ERROR with what the runtime posted to invocation/ID/error, and serves the next', async () => {
    const failed = await invoke('sh-runtime', { fail: true });
    expect(failed.status).toBe('ERROR');
    expect(failed.error).toContain('HandlerError: the shell runtime failed on purpose');
    const next = await invoke('sh-runtime', { a: 3 });
    expect(next.status).toBe('DONE');
    expect(parsed(next).event).toEqual({ a: 3 });
  });
});

describe('a custom runtime whose format is lambda, through the web path', () => {
  it("gets API Gateway's event, and its answer becomes the response", async () => {
    const r = await fetch(`${p.api}/function/sh-web/users/1?name=ana`, { headers: auth });
    expect(r.status).toBe(200);
    const event = ((await r.json()) as { event: Record<string, unknown> }).event;
    expect(event).toMatchObject({ version: '2.0', rawPath: '/users/1', queryStringParameters: { name: 'ana' } });
  });
});

describe('a custom runtime in Go with the standard library only', () => {
  it('answers its invocations, warm, and through the web path', async () => {
    const one = await invoke('go-runtime', { name: 'ana' });
    expect(one.status, one.error).toBe('DONE');
    expect(parsed(one)).toMatchObject({ greeting: 'hello ana', function: 'go-runtime' });
    const two = parsed(await invoke('go-runtime', { name: 'bo' }));
    expect(two.count).toBe(Number(parsed(one).count) + 1);
    const web = await fetch(`${p.api}/function/go-runtime`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: '{"name":"web"}',
    });
    expect(web.status).toBe(200);
    expect(((await web.json()) as Record<string, unknown>).greeting).toBe('hello web');
  });

  it('fails a call whose runtime posted to init/error, saying what it posted', async () => {
    const c = await invoke('go-init-fails', {});
    expect(c.status).toBe('ERROR');
    expect(c.error).toContain('InitError: the go runtime refused to start');
  });

  it('fails a call of a function without a bootstrap, saying what it needs', async () => {
    const c = await invoke('no-bootstrap', {});
    expect(c.status).toBe('ERROR');
    expect(c.error).toContain('no bootstrap');
  });
});
