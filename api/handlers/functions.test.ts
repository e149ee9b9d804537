// registerFunction's settings without Docker: the forms people write read into stored numbers, and each
// refused setting answered 400 with what was expected, through the API's one error responder; the
// management routes under the plural /functions/NAME (the singular is the function's own web path); and
// what a role and the namespace's quotas allow: secrets named only by an admin, a rollback held to the
// quotas and runtime rules of today, old versions removed one by one.
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Request } from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DbClient } from '../../db/client.js';
import { packFiles } from '../../test/helpers/archives.js';
import type { FunctionMeta, Quotas as QuotaSet } from '../../common/model.js';
import { errorResponder } from '../http.js';
import { Quotas } from '../tenancy/quotas.js';
import { Scope } from '../tenancy/scope.js';
import { functionsRouter, settingsFrom } from './functions.js';

const req = (query: Record<string, unknown>, body: Record<string, unknown> = {}): Request => ({ query, body }) as unknown as Request;

describe('settingsFrom', () => {
  it('reads sizes and durations as people write them, and stores plain numbers', () => {
    expect(settingsFrom(req({ memory: '128m', timeout: '1m30s' }))).toMatchObject({ memory: 128, timeout: 90 });
    expect(settingsFrom(req({}, { memory: '1Gi', timeout: '2m' }))).toMatchObject({ memory: 1024, timeout: 120 });
    expect(settingsFrom(req({ memory: '64' }, { memory: '128MB' }))).toMatchObject({ memory: 128 }); // fields win
    expect(settingsFrom(req({}))).toEqual({
      timeout: 30,
      memory: 256,
      cpus: 1,
      pids: 128,
      network: false,
      retry: true,
      retries: 0,
      retryBackoff: 1000,
      secrets: [],
      env: {},
      public: false,
    });
  });

  it('reads the other settings as before', () => {
    const s = settingsFrom(
      req({
        cpus: '0.5',
        pids: '64',
        policy: 'function',
        network: 'yes',
        retry: '0',
        concurrency: '3',
        handler: 'lib/main.run',
        env: ['A=1', '{"B": 2, "C": true}'],
      }),
    );
    expect(s).toEqual({
      timeout: 30,
      memory: 256,
      cpus: 0.5,
      pids: 64,
      policy: 'function',
      network: true,
      retry: false,
      retries: 0,
      retryBackoff: 1000,
      secrets: [],
      concurrency: 3,
      handler: 'lib/main.run',
      env: { A: '1', B: '2', C: 'true' },
      public: false,
    });
  });

  it('reads retries and retryBackoff (no unit: seconds), and refuses what is out of range naming the setting', () => {
    expect(settingsFrom(req({ minWarm: '2', policy: 'function' }))).toMatchObject({ minWarm: 2 });
    expect(() => settingsFrom(req({ minWarm: '2', policy: 'none' }))).toThrow(
      /minWarm keeps containers loaded.*policy function or runtime/,
    );
    expect(() => settingsFrom(req({ minWarm: '-1' }))).toThrow(/minWarm: .*from 0 to 1024/);
    expect(settingsFrom(req({ retries: '3', retryBackoff: '500ms' }))).toMatchObject({ retries: 3, retryBackoff: 500 });
    expect(settingsFrom(req({ retryBackoff: '2' })).retryBackoff).toBe(2000);
    expect(settingsFrom(req({ retryBackoff: '0.25' })).retryBackoff).toBe(250);
    expect(settingsFrom(req({ retryBackoff: '1m30s' })).retryBackoff).toBe(90_000);
    expect(() => settingsFrom(req({ retries: '11' }))).toThrow(/retries: expected a whole number of retries from 0 to 10/);
    expect(() => settingsFrom(req({ retries: '-1' }))).toThrow(/retries/);
    expect(() => settingsFrom(req({ retryBackoff: '10ms' }))).toThrow(/retryBackoff: expected a duration .* which is 10 ms/);
    expect(() => settingsFrom(req({ retryBackoff: 'soon' }))).toThrow(/retryBackoff: expected a duration/);
    expect(() => settingsFrom(req({ retryBackoff: '0.0001' }))).toThrow(/not a whole number of milliseconds/);
  });

  it('reads the web settings: format, public and rateLimit', () => {
    expect(settingsFrom(req({ format: 'lambda', public: 'true', rateLimit: '200' }))).toMatchObject({
      format: 'lambda',
      public: true,
      rateLimit: 200,
    });
    expect(settingsFrom(req({}, { format: 'auto', public: 'no', rateLimit: '100000' }))).toMatchObject({
      format: 'auto',
      public: false,
      rateLimit: 100000,
    });
    for (const format of ['json', 'lambda-v1', 'openwhisk', 'openfaas', 'gcf']) expect(settingsFrom(req({ format })).format).toBe(format);
    const unset = settingsFrom(req({}));
    expect(unset.format).toBeUndefined();
    expect(unset.rateLimit).toBeUndefined();
  });
});

describe('POST /registerFunction with a bad setting', () => {
  let server: Server;
  let base: string;
  const db = {
    // The runtime exists; nothing else may be asked for: a refused setting stores nothing.
    request: async (type: string) => {
      if (type === 'getRuntime') return { name: 'node' };
      throw new Error(`unexpected DB request ${type}`);
    },
  } as unknown as DbClient;

  beforeAll(async () => {
    const app = express();
    app.use(functionsRouter(db));
    app.use(errorResponder(pino({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  async function register(fields: [string, string][], query = ''): Promise<{ status: number; error: string }> {
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array([0x1f, 0x8b])]), 'fn.tar.gz');
    for (const [k, v] of fields) form.append(k, v);
    const r = await fetch(`${base}/registerFunction/node/fn${query}`, { method: 'POST', body: form });
    return { status: r.status, error: ((await r.json()) as { error: string }).error };
  }

  const cases: [string, string, string][] = [
    ['memory', '12x', 'memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"'],
    ['memory', '16g', 'memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "16g", which is 16384 MiB'],
    [
      'timeout',
      '500ms',
      'timeout: expected a duration such as 30, 30s, 2m or 1m30s (whole seconds, 1 s to 15 min), got "500ms", which is not a whole number of seconds',
    ],
    ['timeout', 'soon', 'timeout: expected a duration such as 30, 30s, 2m or 1m30s (whole seconds, 1 s to 15 min), got "soon"'],
    ['cpus', '0', 'cpus: expected a number of CPUs such as 0.5, 1 or 2 (0.05 to 64), got "0"'],
    ['pids', '1', 'pids: expected a whole number of processes from 8 to 4096, got "1"'],
    ['policy', 'evil', `policy: expected one of none, runtime, function (unset: the node's policy), got "evil"`],
    ['network', 'maybe', 'network: expected true or false (or 1/0, yes/no), got "maybe"'],
    ['retry', 'sure', 'retry: expected true or false (or 1/0, yes/no), got "sure"'],
    ['concurrency', '0', 'concurrency: expected a whole number of calls from 1 to 10000, got "0"'],
    [
      'handler',
      '../../etc/passwd.x',
      'handler: expected FILE.EXPORT naming a file inside the function, such as index.handler or lib/main.run, got "../../etc/passwd.x"',
    ],
    ['env', 'NOEQUALS', 'env: expected KEY=VALUE (repeatable) or a JSON object such as {"KEY": "VALUE"}, got "NOEQUALS"'],
    ['env', '1BAD=x', 'env: expected a KEY of letters, digits and _, not starting with a digit, got "1BAD"'],
    ['env', '{"A": {"b": 1}}', 'env: expected the value of "A" to be a string, number or boolean, got {"b":1}'],
    ['format', 'soap', 'format: expected one of auto, json, lambda, lambda-v1, openwhisk, openfaas, gcf (unset: auto), got "soap"'],
    ['public', 'sometimes', 'public: expected true or false (or 1/0, yes/no), got "sometimes"'],
    ['rateLimit', '0', 'rateLimit: expected a whole number of web requests per second from 1 to 100000 (unset: 50), got "0"'],
    ['rateLimit', '2.5', 'rateLimit: expected a whole number of web requests per second from 1 to 100000 (unset: 50), got "2.5"'],
    ['rateLimit', '100001', 'rateLimit: expected a whole number of web requests per second from 1 to 100000 (unset: 50), got "100001"'],
  ];
  for (const [name, value, message] of cases) {
    it(`${name}=${value}: 400 saying what was expected`, async () => {
      expect(await register([[name, value]])).toEqual({ status: 400, error: `invalid function settings: ${message}` });
    });
  }

  it('words a refusal in the query the same, and quotes a repeated field whole', async () => {
    expect(await register([], '?memory=12x')).toEqual({
      status: 400,
      error: 'invalid function settings: memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"',
    });
    expect(
      await register([
        ['timeout', '30'],
        ['timeout', '60'],
      ]),
    ).toMatchObject({ status: 400, error: expect.stringMatching(/^invalid function settings: timeout: expected .*, got \["30","60"\]$/) });
  });
});

describe('the management routes under /functions/NAME', () => {
  let server: Server;
  let base: string;
  const meta = { functionName: 'fn', runtimeName: 'node', version: 2, digest: 'd'.repeat(64), size: 1, format: 'tar.gz' };
  const db = {
    request: async (type: string, content: { name?: string; version?: number }) => {
      if (type === 'getRuntime') return { name: 'node', image: 'zfaas/node', path: '/ws', run: 'true' };
      if (content.name !== 'fn') return type === 'deleteFunction' ? { deleted: false } : null;
      if (type === 'getFunction')
        return content.version === undefined || content.version <= 2 ? { ...meta, version: content.version ?? 2 } : null;
      if (type === 'listVersions') return [1, 2].map((version) => ({ ...meta, version, createdAt: 'then' }));
      if (type === 'setCurrentVersion') return content.version === 1 ? { ...meta, version: 1 } : null;
      if (type === 'deleteFunction') return { deleted: true };
      throw new Error(`unexpected DB request ${type}`);
    },
  } as unknown as DbClient;

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.use(functionsRouter(db));
    app.use((_req, res) => void res.status(404).json({ error: 'no route' }));
    app.use(errorResponder(pino({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  const send = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  };

  it('describes, rolls back and deletes a function', async () => {
    expect(await send('GET', '/functions/fn')).toMatchObject({
      status: 200,
      body: { version: 2, versions: [{ version: 1 }, { version: 2 }] },
    });
    expect(await send('POST', '/functions/fn/rollback', {})).toMatchObject({ status: 200, body: { version: 1 } });
    expect(await send('POST', '/functions/fn/rollback', { version: 5 })).toEqual({
      status: 404,
      body: { error: 'function fn has no version 5' },
    });
    expect(await send('DELETE', '/functions/fn')).toEqual({ status: 200, body: { deleted: 'fn' } });
    expect(await send('GET', '/functions/nope')).toEqual({ status: 404, body: { error: 'function nope not found' } });
    expect(await send('DELETE', '/functions/nope')).toEqual({ status: 404, body: { error: 'function nope not found' } });
  });

  it('leaves the singular /function/NAME to the web path', async () => {
    for (const [method, path] of [
      ['GET', '/function/fn'],
      ['DELETE', '/function/fn'],
      ['POST', '/function/fn/rollback'],
    ] as const)
      expect(await send(method, path, method === 'POST' ? {} : undefined)).toEqual({ status: 404, body: { error: 'no route' } });
  });
});

describe('roles and quotas at deploy and rollback', () => {
  let server: Server;
  let base: string;
  let quotas: QuotaSet = {};
  const writes: string[] = [];
  const v = (version: number, memory: number, runtimeName = 'node'): FunctionMeta =>
    ({
      functionName: 'team-a~fn',
      runtimeName,
      version,
      digest: String(version).repeat(64),
      size: 10,
      format: 'tar.gz',
      createdAt: 'then',
      settings: settingsFrom(req({ memory: String(memory) })),
    }) as FunctionMeta;
  const versions = [v(1, 512), v(2, 128), v(3, 128, 'team-a~mine')];
  const db = {
    request: async (type: string, c: { name?: string; version?: number }) => {
      if (type === 'getNamespace') return { name: 'team-a', createdAt: '', quotas };
      if (type === 'getRuntime')
        return c.name === 'team-a~mine' ? { name: 'team-a~mine', isolation: 'runsc' } : c.name === 'node' ? { name: 'node' } : null;
      if (type === 'listFunctions') return [versions[1]];
      if (type === 'listVersions') return versions;
      if (type === 'getFunction') return c.name === 'team-a~fn' ? (versions.find((x) => x.version === (c.version ?? 2)) ?? null) : null;
      writes.push(type);
      if (type === 'putArchive') return { digest: 'd', size: 1 };
      if (type === 'addFunction') return v(4, 128);
      if (type === 'setCurrentVersion') return versions.find((x) => x.version === c.version);
      if (type === 'deleteVersion') return c.version === 2 ? { deleted: false, current: true } : { deleted: c.version === 1 };
      throw new Error(`unexpected DB request ${type}`);
    },
  } as unknown as DbClient;

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    // The scope the gate would set: a key of team-a with the role the test names.
    app.use((request, res, next) => {
      res.locals.scope = new Scope('team-a', request.headers['x-role'] as 'developer' | 'admin', 'k1');
      next();
    });
    // Quotas read afresh on every request (the real ones keep them a few seconds), as each test sets its own.
    const fresh = (): Quotas => new Quotas(db);
    app.use(
      functionsRouter(db, {
        fits: (ns, st) => fresh().fits(ns, st),
        runtimeAllowed: (ns, rt, doing) => fresh().runtimeAllowed(ns, rt, doing),
        deployRoom: (ns, next, stored) => fresh().deployRoom(ns, next, stored),
      }),
    );
    app.use(errorResponder(pino({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  const as = async (role: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: { error?: string } }> => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-role': role, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as { error?: string } };
  };

  async function deploy(role: string, fields: [string, string][]): Promise<{ status: number; error?: string }> {
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': 'module.exports = () => 1;' }))]), 'fn.tar.gz');
    for (const [k, val] of fields) form.append(k, val);
    const r = await fetch(`${base}/registerFunction/node/fn`, { method: 'POST', body: form, headers: { 'x-role': role } });
    return { status: r.status, error: ((await r.json()) as { error?: string }).error };
  }

  it("lets only an admin name secrets in a deploy, as the secrets are the admin's", async () => {
    writes.length = 0;
    const dev = await deploy('developer', [['secrets', 'db-password']]);
    expect(dev.status).toBe(403);
    expect(dev.error).toMatch(/naming secrets \(db-password\) in a deploy needs the admin role/);
    expect(writes).toEqual([]); // nothing stored
    expect((await deploy('developer', [])).status).toBe(201);
    expect((await deploy('admin', [['secrets', 'db-password']])).status).toBe(201);
  });

  it("holds a deploy to the namespace's CPUs, processes and runtimes", async () => {
    quotas = { cpus: 0.5, pids: 64 };
    writes.length = 0;
    expect(
      await deploy('admin', [
        ['cpus', '1'],
        ['pids', '64'],
      ]),
    ).toMatchObject({ status: 400, error: expect.stringMatching(/0.5 CPUs/) });
    expect(
      await deploy('admin', [
        ['cpus', '0.5'],
        ['pids', '65'],
      ]),
    ).toMatchObject({ status: 400, error: expect.stringMatching(/64 processes/) });
    quotas = { runtimes: ['python'] };
    expect(await deploy('admin', [])).toMatchObject({ status: 403, error: expect.stringMatching(/only the runtimes python, not node/) });
    expect(writes).toEqual([]);
    quotas = {};
  });

  it('rolls back only to a version that fits the quotas and runtime rules of today', async () => {
    quotas = { memory: 256 };
    writes.length = 0;
    expect(await as('developer', 'POST', '/functions/fn/rollback', { version: 1 })).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/at most 256 MiB of memory \(asked: 512 MiB\)/) },
    });
    quotas = { isolation: ['kata-runtime'] };
    expect(await as('developer', 'POST', '/functions/fn/rollback', { version: 3 })).toMatchObject({
      status: 403,
      body: { error: expect.stringMatching(/only under kata-runtime: runtime mine runs under runsc/) },
    });
    expect(writes).toEqual([]);
    quotas = {};
    expect((await as('developer', 'POST', '/functions/fn/rollback', { version: 1 })).status).toBe(200);
  });

  it('removes an old version, never the current one', async () => {
    expect(await as('developer', 'DELETE', '/functions/fn/versions/1')).toEqual({ status: 200, body: { deleted: 'fn', version: 1 } });
    expect(await as('developer', 'DELETE', '/functions/fn/versions/2')).toMatchObject({
      status: 409,
      body: { error: expect.stringMatching(/version 2 is the current version of fn: roll back or deploy first/) },
    });
    expect((await as('developer', 'DELETE', '/functions/fn/versions/7')).status).toBe(404);
    expect((await as('developer', 'DELETE', '/functions/fn/versions/x')).status).toBe(400);
  });
});
