// Functions as web endpoints, against the real services: functions written the way AWS Lambda, Apache
// OpenWhisk, OpenFaaS and Google Cloud Functions write them (runtimes/fixtures/web-*) deployed unchanged,
// called through /function/NAME/sub/path with any method, query, headers and body, answering with the
// status, headers and body they chose; a malformed answer is a 502 and never a header injected; bodies over
// the limit are refused before a container is used; hop-by-hop headers and the API token never reach a
// function; a public function answers without the token, within its rate limit.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, ROOT, startUp, tempDir, upload, type Platform } from './helpers/platform.js';

const TOKEN = 'web-test-token-0123456789';
let p: Platform;
const auth = { authorization: `Bearer ${TOKEN}` };

async function fixture(name: string): Promise<Record<string, string>> {
  const dir = join(ROOT, 'runtimes', 'fixtures', name);
  const files: Record<string, string> = {};
  for (const f of await readdir(dir)) files[f] = await readFile(join(dir, f), 'utf8');
  return files;
}

async function deploy(name: string, runtime: string, files: Record<string, string>, fields: Record<string, string> = {}): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields, auth);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

interface Got {
  status: number;
  headers: Headers;
  text: string;
  bytes: Buffer;
}

async function call(path: string, init: RequestInit & { noToken?: boolean } = {}): Promise<Got> {
  const headers = new Headers(init.headers);
  if (!init.noToken) headers.set('authorization', auth.authorization);
  const r = await fetch(`${p.api}${path}`, { ...init, headers });
  const bytes = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, text: bytes.toString('utf8'), bytes };
}

const binary = Buffer.from([0, 1, 2, 250, 255, 128, 13, 10]);
const inverted = Buffer.from(binary.map((b) => 255 - b));

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: TOKEN });
  await deploy('lam', 'node', await fixture('web-node-lambda'), { format: 'lambda', handler: 'index.handler' });
  await deploy('ow', 'node', await fixture('web-node-openwhisk')); // a plain script with main: found by auto
  await deploy('of', 'node', await fixture('web-node-openfaas'), { format: 'openfaas' });
  await deploy('gcf', 'node', await fixture('web-node-gcf'), { format: 'gcf', handler: 'index.api' });
});

afterAll(async () => {
  await p?.stop();
});

describe('node functions in each platform form, through the web path', () => {
  const forms: [string, string, string][] = [
    ['AWS Lambda (API Gateway HTTP API)', 'lam', 'x-served-by'],
    ['Apache OpenWhisk web action', 'ow', 'x-action'],
    ['OpenFaaS node template', 'of', 'x-faas'],
    ['Google Cloud Functions', 'gcf', 'x-region'],
  ];
  for (const [form, name, header] of forms) {
    describe(form, () => {
      it('chooses the status, a header and the content type, and gets the query and the sub-path', async () => {
        const r = await call(`/function/${name}/hello?name=ana`);
        expect(r.status, r.text).toBe(201);
        expect(r.headers.get(header)).toBeTruthy();
        expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(r.text).toBe('hello ana');
        expect(r.headers.get('x-zfaas-call')).toMatch(/^\d+$/);
      });

      it('gets a JSON body and answers JSON', async () => {
        const r = await call(`/function/${name}/echo?tag=a`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ x: 1, data: { x: 1 } }), // OpenWhisk's echo shows its `data` parameter
        });
        expect(r.status, r.text).toBe(200);
        expect(r.headers.get('content-type')).toMatch(/json/);
        expect(r.text).toContain('"x":1');
      });

      it('takes a binary body and answers a binary one', async () => {
        const r = await call(`/function/${name}/invert`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream' },
          body: binary,
        });
        expect(r.status, r.text).toBe(200);
        expect(r.bytes.equals(inverted)).toBe(true);
      });

      it('an error the function throws is a 500 that names the call, without its stack', async () => {
        const r = await call(`/function/${name}/fail`);
        expect(r.status).toBe(500);
        const body = JSON.parse(r.text) as { error: string; status: string; callNum: number };
        expect(body.status).toBe('ERROR');
        expect(body.error).toMatch(/failed on purpose/);
        expect(r.text).not.toMatch(/\bat .*\(|\/ws\//); // no stack frames, no paths
        // The record has the whole error, for those with the token.
        const rec = await call(`/call/${body.callNum}`);
        expect(rec.text).toMatch(/failed on purpose/);
      });

      it('a response it shapes wrongly is a 502 saying what is wrong', async () => {
        const r = await call(`/function/${name}/bad-status`);
        expect(r.status).toBe(502);
        expect(r.text).toMatch(/malformed response/);
      });
    });
  }

  it('a header with CR/LF in it is never sent: 502, and no injected header', async () => {
    for (const name of ['lam', 'gcf']) {
      const r = await call(`/function/${name}/bad-header`);
      expect(r.status).toBe(502);
      expect(r.headers.get('x-split')).toBeNull();
      expect(r.headers.get('two')).toBeNull();
    }
  });

  it('a function may answer after it returned (Cloud Functions)', async () => {
    const r = await call('/function/gcf/later');
    expect(r.status).toBe(202);
    expect(r.text).toBe('answered later');
  });

  it('the call record keeps the method, path and status', async () => {
    const r = await call('/function/lam/hello?name=bo', { method: 'GET' });
    const rec = JSON.parse((await call(`/call/${r.headers.get('x-zfaas-call')}`)).text) as {
      request: { method: string; path: string; query: string };
      response: { status: number; bytes: number };
      status: string;
    };
    expect(rec.status).toBe('DONE');
    expect(rec.request).toEqual({ method: 'GET', path: '/hello', query: 'name=bo' });
    expect(rec.response.status).toBe(201);
    expect(rec.response.bytes).toBe('hello bo'.length);
  });
});

describe('python functions in the platforms’ forms', () => {
  it('a Lambda handler (lambda_function.lambda_handler) gets the API Gateway event', async () => {
    await deploy('pylam', 'python', await fixture('web-py-lambda'));
    const r = await call('/function/pylam/items?name=ana&tag=a&tag=b', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ n: 2 }),
    });
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('x-fixture')).toBe('lambda');
    const body = JSON.parse(r.text) as { method: string; path: string; name: string; json: unknown; version: string };
    expect(body).toMatchObject({ method: 'POST', path: '/items', name: 'ana', json: { n: 2 }, version: '2.0' });
    const bin = await call('/function/pylam/binary', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: binary,
    });
    expect(bin.bytes.equals(Buffer.from([...binary].reverse()))).toBe(true);
    expect((await call('/function/pylam/malformed')).status).toBe(502);
  });

  it('an OpenFaaS python3-http handler (handle(event, context)) gets the request', async () => {
    await deploy('pyof', 'python', await fixture('web-py-openfaas'));
    const r = await call('/function/pyof/some/where?name=zoe');
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('x-fixture')).toBe('openfaas');
    expect(JSON.parse(r.text)).toMatchObject({ method: 'GET', path: '/some/where', name: 'zoe' });
    expect((await call('/function/pyof/error')).status).toBe(500);
  });
});

describe('the proxy', () => {
  it('keeps hop-by-hop headers and the API token from the function, and passes the others', async () => {
    await deploy('headers', 'node', { 'index.js': 'module.exports = (req, res) => res.json(req.headers);' });
    // fetch() will not send a Connection header: a plain request does, as any proxy in front could.
    const text = await new Promise<string>((resolve, reject) => {
      const req = request(`${p.api}/function/headers/`, {
        headers: { ...auth, connection: 'keep-alive, x-secret', 'x-secret': 'hidden', 'x-kept': 'yes', te: 'trailers' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode} ${body}`))));
      });
      req.on('error', reject);
      req.end();
    });
    const got = JSON.parse(text) as Record<string, string>;
    expect(got['x-kept']).toBe('yes');
    expect(got['x-secret']).toBeUndefined();
    expect(got.te).toBeUndefined();
    expect(got.authorization).toBeUndefined();
  });

  it('refuses a body over 6 MiB with 413 before any call is made', async () => {
    const before = JSON.parse((await call('/calls?format=list&limit=1')).text) as { callNum: number }[];
    const r = await call('/function/lam/echo', { method: 'POST', body: Buffer.alloc(6 * 1024 * 1024 + 1, 97) });
    expect(r.status).toBe(413);
    const after = JSON.parse((await call('/calls?format=list&limit=1')).text) as { callNum: number }[];
    expect(after[0]?.callNum).toBe(before[0]?.callNum);
  });

  it('a function that is not public needs the token, and an unknown one does not exist without it either', async () => {
    expect((await call('/function/lam/hello', { noToken: true })).status).toBe(401);
    expect((await call('/function/nosuchfn/x', { noToken: true })).status).toBe(401);
    expect((await call('/function/nosuchfn/x')).status).toBe(404);
  });

  it('a public function answers without the token, within its rate limit (429 with Retry-After)', async () => {
    await deploy(
      'pub',
      'node',
      { 'index.js': 'module.exports = (req, res) => res.send("public " + (req.headers.authorization || "-"));' },
      {
        format: 'gcf',
        public: 'true',
        rateLimit: '2',
      },
    );
    const first = await call('/function/pub/', { noToken: true, headers: { authorization: 'Basic dXNlcjpwdw==' } });
    expect(first.status, first.text).toBe(200);
    expect(first.text).toBe('public Basic dXNlcjpwdw=='); // the caller's own Authorization is the function's to read
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 6; i++) {
      const r = await call('/function/pub/', { noToken: true });
      statuses.push(r.status);
      if (r.status === 429) retryAfter = r.headers.get('retry-after');
    }
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Everything else still needs the token.
    expect((await call('/functions', { noToken: true })).status).toBe(401);
    expect((await call('/calls', { noToken: true })).status).toBe(401);
  });
});

describe('the CLI', () => {
  const zf = async (args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('ZFAAS_')),
    );
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env: { ...env, ZFAAS_API: p.api, ZFAAS_TOKEN: TOKEN, ZFAAS_CONFIG: join(cwd, 'no-config.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
    return { code, stdout, stderr };
  };

  for (const template of ['lambda', 'openwhisk', 'openfaas', 'gcf']) {
    it(`zfaas init --template ${template} scaffolds a function that deploys as is and answers a web invoke`, async () => {
      const dir = await tempDir('zfaas-web-cli-');
      try {
        const name = `tpl-${template}`;
        const init = await zf(['init', name, '--template', template], dir);
        expect(init.code, init.stderr).toBe(0);
        const dep = await zf(['deploy', name, join(dir, name)], dir);
        expect(dep.code, dep.stderr).toBe(0);
        const r = await zf(['invoke', name, '--path', '/', '-q', 'name=ana', '-i'], dir);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^HTTP\/1\.1 200/);
        expect(r.stdout).toMatch(/ana/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
