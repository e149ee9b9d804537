// `zfaas init`: --template and --runtime, the files each template writes, a zfaas.json that `zfaas deploy`
// reads as it is and that stays out of the archive, and (through the node runtime's own loader, no Docker)
// each platform template answering a web request in its platform's form with the format zfaas.json names.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractArchive } from '../../common/archive/extract.js';
import { EXIT, UsageError } from '../client/errors.js';
import { TEMPLATES, type Template } from '../client/templates.js';
import { readDeployDefaults } from '../pack/defaults.js';
import { loadUpload } from '../pack/deploy.js';
import { chooseTemplate } from './init.js';
import { runCli, type CliRun } from '../../test/helpers/cli-run.js';
import { LOADER_PROTOCOL } from '../../protocol/loader.js';

const LOADER = resolve(dirname(fileURLToPath(import.meta.url)), '../../runtimes/node/loader.js');

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'zfaas-init-'));
});
afterAll(async () => root && rm(root, { recursive: true, force: true }));

const init = (...args: string[]): Promise<CliRun> => runCli(['init', ...args]);

describe('init --template / --runtime', () => {
  it('takes either, or both when they agree', () => {
    expect(chooseTemplate({ runtime: 'python' })).toBe('python');
    expect(chooseTemplate({ template: 'gcf' })).toBe('gcf');
    expect(chooseTemplate({ template: 'lambda', runtime: 'node' })).toBe('lambda');
    expect(() => chooseTemplate({})).toThrow(UsageError);
    expect(() => chooseTemplate({ template: 'openfaas', runtime: 'python' })).toThrow(
      '--template openfaas is written for the node runtime, not python',
    );
  });

  it('refuses a missing template with exit 2', async () => {
    expect(await init('x', '--dir', join(root, 'none'))).toMatchObject({
      code: EXIT.USAGE,
      notes: [
        'zfaas: give --template (node, python, java, go, lambda, openwhisk, openfaas, gcf, dockerfile) or --runtime (node, python, java, go)',
      ],
    });
  });

  it("writes today's node and python scaffolds, without a zfaas.json", async () => {
    const node = await init('hello', '--runtime', 'node', '--dir', join(root, 'node'));
    expect(node.code).toBe(0);
    expect(node.printed[0]).toMatch(/\(node\): index\.js, package\.json, \.zfaasignore$/);
    expect(node.notes[0]).toContain('--runtime node');
    const py = await init('greet', '--template', 'python', '--dir', join(root, 'python'));
    expect(py.printed[0]).toMatch(/\(python\): handler\.py, requirements\.txt, \.zfaasignore$/);
    const java = await init('hi', '--runtime', 'java', '--dir', join(root, 'java'));
    expect(java.printed[0]).toMatch(/\(java\): Hello\.java, \.zfaasignore$/);
    expect(java.notes[0]).toContain('--runtime java');
    const go = await init('sum', '--template', 'go', '--dir', join(root, 'go'));
    expect(go.printed[0]).toMatch(/\(go\): main\.go, go\.mod, \.zfaasignore$/);
    expect(go.notes[0]).toContain('--runtime go');
    expect(await readFile(join(root, 'go', 'go.mod'), 'utf8')).toBe('module sum\n\ngo 1.19\n');
  });

  const expected: Record<Exclude<Template, 'node' | 'python' | 'java' | 'go' | 'dockerfile'>, { code: string; defaults: object }> = {
    lambda: { code: 'index.mjs', defaults: { runtime: 'node', format: 'lambda', handler: 'index.handler' } },
    openwhisk: { code: 'index.js', defaults: { runtime: 'node', format: 'openwhisk', handler: 'index.main' } },
    openfaas: { code: 'handler.js', defaults: { runtime: 'node', format: 'openfaas' } },
    gcf: { code: 'index.js', defaults: { runtime: 'node', format: 'gcf', handler: 'index.hello' } },
  };

  it('writes each platform template with the zfaas.json deploy reads, left out of the archive', async () => {
    for (const t of TEMPLATES.filter((x) => !['node', 'python', 'java', 'go', 'dockerfile'].includes(x)) as Array<keyof typeof expected>) {
      const dir = join(root, t);
      const r = await init('web-fn', '--template', t, '--dir', dir);
      expect(r.code, t).toBe(0);
      expect(r.printed[0]).toMatch(`/${t}/ (${t}): ${expected[t].code}, package.json, .zfaasignore, zfaas.json`);
      expect(r.notes[0]).toContain('zfaas invoke web-fn -q name=ana -i');
      expect(await readDeployDefaults(dir)).toEqual(expected[t].defaults);
      const extracted = await mkdtemp(join(root, 'x-'));
      const { files } = await extractArchive((await loadUpload(dir, 'web-fn')).bytes, extracted);
      expect([...files].sort()).toEqual([expected[t].code, 'package.json'].sort());
      expect(JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'))).toMatchObject({ name: 'web-fn', private: true });
    }
    expect((await readdir(join(root, 'lambda'))).sort()).toEqual(['.zfaasignore', 'index.mjs', 'package.json', 'zfaas.json']);
  });
});

describe('init --template dockerfile', () => {
  it('writes a Dockerfile and a server that answers web and JSON calls on $PORT', async () => {
    const dir = join(root, 'image');
    const r = await init('web', '--template', 'dockerfile', '--dir', dir);
    expect(r.code).toBe(0);
    expect(r.printed[0]).toMatch(/\(dockerfile\): Dockerfile, server\.js, \.dockerignore$/);
    expect(r.notes[0]).toContain('builds the image from its Dockerfile');
    const dockerfile = await readFile(join(dir, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^CMD \["node", "\/app\/server\.js"\]$/m);
    // The server itself, on this machine: it listens on $PORT and answers both kinds of call.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const child = spawn(process.execPath, [join(dir, 'server.js')], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((ok) => child.stdout.once('data', () => ok()));
      const web = (await (await fetch(`http://127.0.0.1:${port}/a/b?name=ana`)).json()) as object;
      expect(web).toEqual({ message: 'Hello, ana!', path: '/a/b' });
      const posted = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        body: '{"name":"bo"}',
        headers: { 'content-type': 'application/json' },
      });
      expect(await posted.json()).toEqual({ message: 'Hello, bo!', path: '/' });
    } finally {
      child.kill();
    }
  });
});

// The loader's own protocol on stdin/stdout (protocol/loader.ts): load with zfaas.json's handler and
// format, then one web call; returns the response the function chose.
async function webCall(dir: string, query: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const d = await readDeployDefaults(dir);
  const child = spawn(process.execPath, [LOADER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => JSON.parse(String((await lines.next()).value)) as Record<string, unknown>;
  const send = (m: object): void => void child.stdin.write(`${JSON.stringify(m)}\n`);
  try {
    expect(await next()).toMatchObject({ op: 'hello', v: LOADER_PROTOCOL });
    send({ op: 'load', dir, handler: d.handler ?? null, env: {}, format: d.format });
    expect(await next()).toMatchObject({ op: 'loaded', ok: true, format: d.format });
    const http = { method: 'GET', path: '/', query, headers: { host: 'zfaas' }, body: '', sourceIp: '127.0.0.1' };
    send({ op: 'call', id: 1, params: {}, env: {}, http });
    const r = (await next()) as { ok: boolean; error?: string; http: { status: number; headers: Record<string, string>; body: string } };
    expect(r.error).toBeUndefined();
    return { ...r.http, body: Buffer.from(r.http.body, 'base64').toString() };
  } finally {
    child.stdin.end();
    child.kill();
  }
}

describe('the platform templates, loaded as zfaas.json says', () => {
  it('answer a web request in their own form', async () => {
    for (const t of ['lambda', 'openwhisk', 'openfaas', 'gcf']) {
      const dir = join(root, `run-${t}`);
      expect((await init('hello', '--template', t, '--dir', dir)).code).toBe(0);
      const res = await webCall(dir, 'name=ana%20b');
      expect(res.status, t).toBe(200);
      if (t === 'lambda' || t === 'openfaas') expect(JSON.parse(res.body), t).toEqual({ message: 'Hello, ana b!' });
      else expect(res.body, t).toBe('Hello, ana b!');
    }
  });
});
