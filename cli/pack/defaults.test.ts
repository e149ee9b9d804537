// zfaas.json, a function folder's deploy defaults: read and checked (a bad one is a usage error naming the
// file and what is wrong, before anything is sent), filled in under the flags (a flag given wins), and
// what `zfaas deploy DIR` then sends.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, UsageError } from '../client/errors.js';
import { runCli } from '../../test/helpers/cli-run.js';
import { DEFAULTS_FILE, parseDeployDefaults, readDeployDefaults, withDeployDefaults } from './defaults.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'zfaas-defaults-'));
});
afterAll(async () => root && rm(root, { recursive: true, force: true }));

let n = 0;
async function fnDir(zfaasJson?: string): Promise<string> {
  const dir = join(root, `fn${++n}`);
  await mkdir(dir);
  await writeFile(join(dir, 'index.mjs'), 'export const handler = async () => ({ statusCode: 200, body: "hi" });\n');
  if (zfaasJson !== undefined) await writeFile(join(dir, DEFAULTS_FILE), zfaasJson);
  return dir;
}

const refusal = async (text: string): Promise<string> => {
  const dir = await fnDir(text);
  const e = await readDeployDefaults(dir).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UsageError);
  expect((e as UsageError).exitCode).toBe(EXIT.USAGE);
  return (e as Error).message.replace(join(dir, DEFAULTS_FILE), 'zfaas.json');
};

describe('zfaas.json', () => {
  it('reads every default, memory and timeout into what the flags take', async () => {
    const dir = await fnDir(
      JSON.stringify({
        runtime: 'node',
        format: 'lambda',
        handler: 'index.handler',
        policy: 'function',
        memory: '1g',
        timeout: '1m30s',
        public: true,
      }),
    );
    expect(await readDeployDefaults(dir)).toEqual({
      runtime: 'node',
      format: 'lambda',
      handler: 'index.handler',
      policy: 'function',
      memory: '1024',
      timeout: '90',
      public: true,
    });
    expect(parseDeployDefaults({ memory: 128, timeout: 30 }, 'f')).toEqual({ memory: '128', timeout: '30' });
    expect(parseDeployDefaults({}, 'f')).toEqual({});
    expect(parseDeployDefaults({ retries: 3, retryBackoff: '1.5s' }, 'f')).toEqual({ retries: '3', retryBackoff: '1500ms' });
    expect(parseDeployDefaults({ retryBackoff: 2 }, 'f')).toEqual({ retryBackoff: '2000ms' });
    expect(() => parseDeployDefaults({ retries: 11 }, 'f')).toThrow(/f: retries: expected a whole number of retries from 0 to 10, got 11/);
    expect(() => parseDeployDefaults({ retries: '3' }, 'f')).toThrow(/f: retries: expected/);
    expect(() => parseDeployDefaults({ retryBackoff: '5ms' }, 'f')).toThrow(/f: retryBackoff: expected a duration/);
  });

  it('reads secrets as a list or a comma-separated string, into the names joined with commas', () => {
    expect(parseDeployDefaults({ secrets: ['db-password', 'api-token'] }, 'f')).toEqual({ secrets: 'db-password,api-token' });
    expect(parseDeployDefaults({ secrets: 'db-password, api_token.v2 ,db-password' }, 'f')).toEqual({
      secrets: 'db-password,api_token.v2',
    });
    expect(parseDeployDefaults({ secrets: 'one' }, 'f')).toEqual({ secrets: 'one' });
    expect(parseDeployDefaults({ secrets: [] }, 'f')).toEqual({ secrets: '' });
    expect(parseDeployDefaults({ secrets: '' }, 'f')).toEqual({ secrets: '' });
    expect(parseDeployDefaults({ secrets: ['A1', 'x'.repeat(64)] }, 'f')).toEqual({ secrets: `A1,${'x'.repeat(64)}` });
  });

  it('refuses secrets that are not secret names, saying which', () => {
    const expected = 'expected secret names, as a list such as ["db-password", "api-token"] or a string such as "db-password,api-token"';
    const rule = '(1-64 letters, digits, ".", "_" or "-", starting with a letter or digit)';
    expect(() => parseDeployDefaults({ secrets: 'db password' }, 'f')).toThrow(
      `f: secrets: ${expected}, got "db password", and "db password" is not one ${rule}`,
    );
    expect(() => parseDeployDefaults({ secrets: ['ok', 'no/slash'] }, 'f')).toThrow(
      `f: secrets: ${expected}, got ["ok","no/slash"], and "no/slash" is not one ${rule}`,
    );
    expect(() => parseDeployDefaults({ secrets: ['ok', 3] }, 'f')).toThrow(`f: secrets: ${expected}, got ["ok",3], and 3 is not one`);
    expect(() => parseDeployDefaults({ secrets: 'a,,b' }, 'f')).toThrow(/and "" is not one/);
    expect(() => parseDeployDefaults({ secrets: ['-leading'] }, 'f')).toThrow(/and "-leading" is not one/);
    expect(() => parseDeployDefaults({ secrets: ['x'.repeat(65)] }, 'f')).toThrow(/is not one/);
    expect(() => parseDeployDefaults({ secrets: { db: true } }, 'f')).toThrow(`f: secrets: ${expected}, got {"db":true}`);
    expect(() => parseDeployDefaults({ secrets: true }, 'f')).toThrow(`f: secrets: ${expected}, got true`);
  });

  it('has no defaults for an archive, a missing path or a folder without zfaas.json', async () => {
    const dir = await fnDir();
    expect(await readDeployDefaults(dir)).toEqual({});
    expect(await readDeployDefaults(join(dir, 'index.mjs'))).toEqual({});
    expect(await readDeployDefaults(join(root, 'nonexistent'))).toEqual({});
  });

  it('refuses a malformed file saying what is wrong', async () => {
    expect(await refusal('{"runtime": "node",}')).toMatch(/^zfaas\.json is not valid JSON: /);
    expect(await refusal('["node"]')).toBe(
      'zfaas.json: expected a JSON object such as {"runtime": "node", "format": "lambda"}, got ["node"]',
    );
    expect(await refusal('{"memroy": 128}')).toBe(
      'zfaas.json: unknown key "memroy" (it may hold runtime, format, handler, policy, memory, timeout, public, retries, retryBackoff, secrets)',
    );
    expect(await refusal('{"format": "azure"}')).toBe(
      'zfaas.json: format: expected a calling convention: one of auto, json, lambda, lambda-v1, openwhisk, openfaas, gcf, got "azure"',
    );
    expect(await refusal('{"memory": "12x"}')).toBe(
      'zfaas.json: memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"',
    );
    expect(await refusal('{"timeout": 0}')).toMatch(/^zfaas\.json: timeout: expected a duration such as 30, .*, got 0$/);
    expect(await refusal('{"public": "yes"}')).toBe('zfaas.json: public: expected true or false, got "yes"');
    expect(await refusal('{"policy": "warm"}')).toBe(
      'zfaas.json: policy: expected a preload policy: one of none, runtime, function, got "warm"',
    );
    expect(await refusal('{"runtime": "no such/runtime"}')).toBe(
      'zfaas.json: runtime: expected a runtime name such as node or python, got "no such/runtime"',
    );
    expect(await refusal('{"handler": "index"}')).toBe(
      'zfaas.json: handler: expected an entry point FILE.EXPORT such as index.handler, got "index"',
    );
    expect(await refusal('{"handler": "../up.handler"}')).toBe(
      'zfaas.json: handler: expected an entry point FILE.EXPORT such as index.handler, got "../up.handler", which must name a file inside the function (no leading "/", no "..")',
    );
  });

  it('refuses a zfaas.json that is not a readable file', async () => {
    const dir = await fnDir();
    await mkdir(join(dir, DEFAULTS_FILE));
    await expect(readDeployDefaults(dir)).rejects.toThrow(/zfaas\.json is not a file$/);
    const big = await fnDir(`{"runtime": "node", "x": "${'x'.repeat(70 * 1024)}"}`);
    await expect(readDeployDefaults(big)).rejects.toThrow(/larger than 64 KiB/);
  });

  it('fills in what no flag gave; a flag given wins', async () => {
    const dir = await fnDir(JSON.stringify({ runtime: 'node', format: 'lambda', handler: 'index.handler', memory: 256, public: true }));
    const flags: { runtime?: string; memory?: string; format?: string; timeout?: string; retry: boolean } = {
      runtime: undefined,
      memory: '512m',
      retry: true,
    };
    expect(await withDeployDefaults(dir, flags)).toEqual({
      runtime: 'node',
      format: 'lambda',
      handler: 'index.handler',
      memory: '512m',
      public: true,
      retry: true,
    });
    expect(await withDeployDefaults(dir, { format: 'json', handler: 'other.main', retry: false })).toMatchObject({
      format: 'json',
      handler: 'other.main',
      retry: false,
      runtime: 'node',
    });
    // An archive (or a missing path): the flags as they are.
    expect(await withDeployDefaults(join(root, 'fn.tar.gz'), flags)).toEqual({ memory: '512m', retry: true });
  });
});

describe('zfaas deploy DIR with a zfaas.json', () => {
  async function deploy(dir: string, ...flags: string[]): Promise<{ code: number; notes: string[]; sent?: { url: string; body: string } }> {
    let sent: { url: string; body: string } | undefined;
    const fetchFn = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      sent = { url: String(url), body: await new Response(init?.body).text() };
      return new Response(JSON.stringify({ error: 'seen, not stored' }), { status: 400 });
    };
    const r = await runCli(['deploy', 'web', dir, ...flags], { env: { ZFAAS_CONFIG: join(root, 'no-config.json') }, fetchFn });
    return { code: r.code, notes: r.notes, sent };
  }

  const field = (body: string, name: string): string | undefined =>
    new RegExp(`name="${name}"\\r\\n\\r\\n([^\\r]*)\\r\\n`).exec(body)?.[1] ?? undefined;

  it("sends zfaas.json's runtime and settings, under the flags given", async () => {
    const dir = await fnDir(JSON.stringify({ runtime: 'node', format: 'lambda', handler: 'index.handler', timeout: '10s', public: true }));
    const r = await deploy(dir, '--timeout', '20');
    expect(r.code).toBe(EXIT.FAILURE); // the fake API's refusal, after the upload was seen
    expect(r.sent?.url).toBe('http://127.0.0.1:3000/registerFunction/node/web');
    const body = r.sent?.body ?? '';
    expect([field(body, 'format'), field(body, 'handler'), field(body, 'timeout'), field(body, 'public')]).toEqual([
      'lambda',
      'index.handler',
      '20',
      'true',
    ]);
    // zfaas.json named the runtime: nothing was guessed or looked up first.
    expect(r.notes).toEqual(['zfaas: seen, not stored']);
  });

  it("sends zfaas.json's secrets as one comma-separated field; --secrets wins", async () => {
    const dir = await fnDir(JSON.stringify({ runtime: 'node', secrets: ['db-password', 'api-token'] }));
    const fromFile = await deploy(dir);
    expect(fromFile.sent?.url).toBe('http://127.0.0.1:3000/registerFunction/node/web');
    expect(field(fromFile.sent?.body ?? '', 'secrets')).toBe('db-password,api-token');
    const fromFlag = await deploy(dir, '--secrets', 'tls-key');
    expect(field(fromFlag.sent?.body ?? '', 'secrets')).toBe('tls-key');
    const none = await deploy(await fnDir(JSON.stringify({ runtime: 'node', secrets: [] })));
    expect(none.sent?.body).not.toMatch(/name="secrets"/);
    const bad = await deploy(await fnDir(JSON.stringify({ runtime: 'node', secrets: 'a b' })));
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.sent).toBeUndefined();
  });

  it('refuses a malformed zfaas.json with exit 2, sending nothing', async () => {
    const dir = await fnDir('{"format": "lamda"}');
    const r = await deploy(dir);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.sent).toBeUndefined();
    expect(r.notes).toEqual([
      `zfaas: ${join(dir, DEFAULTS_FILE)}: format: expected a calling convention: one of auto, json, lambda, lambda-v1, openwhisk, openfaas, gcf, got "lamda"`,
    ]);
  });
});
