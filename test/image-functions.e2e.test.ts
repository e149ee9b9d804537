// Container-image functions against the real services and Docker: an image that serves HTTP on $PORT,
// deployed with POST /registerImageFunction (and the CLI's --image, and `zfaas deploy NAME ./dir` with a
// Dockerfile), gets web calls as they came (method, path below /function/NAME, query, headers, body) and
// JSON calls as POST / with the params; stays warm; runs as a non-root user with no network; and a server
// that never listens ends the call ERROR naming the readiness limit. Images built here carry the label
// zfaas.test=image-functions and are removed at the end.
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, docker, freePort, ROOT, startUp, tempDir, waitFor, type CallView, type Platform } from './helpers/platform.js';

const run = promisify(execFile);
const TEST_LABEL = 'zfaas.test';
const TEST_VALUE = 'image-functions';
const ECHO = 'zfaas-test/image-echo:1';
const SILENT = 'zfaas-test/image-silent:1';
const AS_1001 = 'zfaas-test/image-echo-1001:1';
const AS_NOBODY = 'zfaas-test/image-echo-nobody:1';
let p: Platform;
let work = '';

async function buildImage(dir: string, tag: string): Promise<void> {
  const stream = await docker.buildImage({ context: dir, src: ['.'] }, { t: tag, labels: { [TEST_LABEL]: TEST_VALUE } });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
      const failed = err ?? out.find((o) => o.error)?.error;
      return failed ? reject(failed instanceof Error ? failed : new Error(failed)) : resolve();
    }),
  );
}

async function deployImage(name: string, body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${p.api}/registerImageFunction/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

async function invoke(funcName: string, params: unknown): Promise<CallView> {
  const r = await fetch(`${p.api}/invokeFunction`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ funcName, params, wait: true }),
  });
  expect(r.status).toBe(200);
  return (await r.json()) as CallView;
}

interface Seen {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
  pid: number;
  hostname: string;
  uid: number;
  port: string;
  greeting: string | null;
  network?: string;
  secret?: string;
  overlap?: number;
}

async function web(path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; seen: Seen }> {
  const r = await fetch(`${p.api}${path}`, init);
  const text = await r.text();
  expect(r.status, text).toBeLessThan(300);
  return { status: r.status, headers: r.headers, seen: JSON.parse(text) as Seen };
}

beforeAll(async () => {
  await run('bash', [join(ROOT, 'runtimes', 'image', 'build-bridge.sh')]);
  work = await tempDir('zfaas-image-fn-');
  await buildImage(join(ROOT, 'runtimes', 'fixtures', 'image-echo'), ECHO);
  const silent = join(work, 'silent');
  await mkdir(silent);
  await writeFile(join(silent, 'Dockerfile'), 'FROM zfaas/python:latest\nCMD ["sleep", "600"]\n');
  await buildImage(silent, SILENT);
  const as1001 = join(work, 'as-1001');
  await mkdir(as1001);
  await writeFile(join(as1001, 'Dockerfile'), `FROM ${ECHO}\nUSER 1001\n`);
  await buildImage(as1001, AS_1001);
  const asNobody = join(work, 'as-nobody');
  await mkdir(asNobody);
  await writeFile(join(asNobody, 'Dockerfile'), `FROM ${ECHO}\nUSER nobody\n`);
  await buildImage(asNobody, AS_NOBODY);
  p = await startUp(['--miniworkers', '2', '--policy', 'function']);
  const secret = await fetch(`${p.api}/secrets`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'api-token', value: 's3cret-value' }),
  });
  expect(secret.status).toBe(201);
  for (const [name, body] of [
    ['echo', { image: ECHO, env: ['GREETING=hello'] }],
    ['echo-none', { image: ECHO, policy: 'none' }],
    ['silent', { image: SILENT, readiness: 2 }],
    ['with-secret', { image: ECHO, secrets: 'api-token' }],
    ['with-secret-1001', { image: AS_1001, secrets: 'api-token' }],
    ['as-nobody', { image: AS_NOBODY }],
    ['shared', { image: ECHO, containerConcurrency: 4, maxContainers: 1 }],
  ] as const) {
    const r = await deployImage(name, body);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
});

// Functions the CLI builds images for: their images carry zfaas.function=NAME and are removed at the end.
const CLI_BUILT = ['imgtest-dir', 'imgtest-init', 'imgtest-reg'];

/** Runs `zfaas ARGS` (the built CLI) against the test platform, in `cwd`. */
async function zf(args: string[], cwd = work): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('ZFAAS_')),
  );
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: { ...env, ZFAAS_API: p.api, ZFAAS_CONFIG: join(work, 'no-config.json') },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  return { code, stdout, stderr };
}

afterAll(async () => {
  await p?.stop();
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${TEST_VALUE}`] } }))
    await docker
      .getContainer(c.Id)
      .remove({ force: true })
      .catch(() => undefined);
  for (const name of CLI_BUILT) {
    const built = await docker.listImages({ filters: { label: [`zfaas.function=${name}`] } });
    for (const i of built)
      await docker
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => undefined);
  }
  // An image another of ours was built FROM is refused while that one is there: again, until none is left.
  for (let pass = 0; pass < 4; pass++) {
    const images = await docker.listImages({ filters: { label: [`${TEST_LABEL}=${TEST_VALUE}`] } });
    if (images.length === 0) break;
    for (const i of images)
      await docker
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => undefined);
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe('an image that serves HTTP on $PORT', () => {
  it('gets a web GET with its path below /function/NAME, its query and headers, as the OpenFaaS gateway passes them', async () => {
    const r = await web('/function/echo/users/7?a=1&b=two%20words', { headers: { 'x-custom': 'kept', accept: 'application/json' } });
    expect(r.seen).toMatchObject({ method: 'GET', path: '/users/7', query: 'a=1&b=two%20words', port: '8080', greeting: 'hello' });
    expect(r.seen.headers['x-custom']).toBe('kept');
    expect(r.seen.headers['x-zfaas-call']).toMatch(/^\d+$/);
    expect(r.headers.get('x-echo')).toBe('yes'); // the server's own headers come back
  });

  it('gets a web POST with its body and answers with its own status', async () => {
    const r = await web('/function/echo/created', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'not json at all' });
    expect(r.status).toBe(201);
    expect(r.seen).toMatchObject({ method: 'POST', path: '/created', body: 'not json at all' });
  });

  it('gets a JSON call as POST / with the params, and its JSON answer is the result', async () => {
    const c = await invoke('echo', { n: 2, s: 'x' });
    expect(c.status, c.error).toBe('DONE');
    const seen = JSON.parse(c.result) as Seen;
    expect(seen).toMatchObject({ method: 'POST', path: '/', body: '{"n":2,"s":"x"}' });
    expect(seen.headers['content-type']).toBe('application/json');
    expect(c.logs).toContain('served POST /');
  });

  it('stays warm: the second call reaches the same server', async () => {
    const a = JSON.parse((await invoke('echo', {})).result) as Seen;
    const b = JSON.parse((await invoke('echo', {})).result) as Seen;
    expect(b.pid).toBe(a.pid);
    expect(b.hostname).toBe(a.hostname);
  });

  it('gets a fresh container for each call under policy none', async () => {
    const a = JSON.parse((await invoke('echo-none', {})).result) as Seen;
    const b = JSON.parse((await invoke('echo-none', {})).result) as Seen;
    expect(b.hostname).not.toBe(a.hostname);
  });

  it('runs as a non-root user even when the image says root, with no network', async () => {
    const r = await web('/function/echo/network');
    expect(r.seen.uid).toBe(1000);
    expect(r.seen.network).toMatch(/^unreachable/);
  });

  it('takes several calls at once in one container with containerConcurrency', async () => {
    const seen = await Promise.all([1, 2, 3, 4].map(async () => (await web('/function/shared/overlap')).seen));
    expect(new Set(seen.map((x) => x.hostname)).size).toBe(1); // maxContainers 1: one container
    expect(Math.max(...seen.map((x) => x.overlap ?? 0))).toBeGreaterThan(1); // and its server held them together
  });

  it("runs as the image's own user when it names one that is not root", async () => {
    expect((await web('/function/as-nobody/')).seen.uid).toBe(65534);
  });

  it("reads the function's secrets as files, as the user it runs as (zfaas's uid, or the image's own)", async () => {
    const a = await web('/function/with-secret/secret/api-token');
    expect(a.seen).toMatchObject({ uid: 1000, secret: 's3cret-value' });
    const b = await web('/function/with-secret-1001/secret/api-token');
    expect(b.seen).toMatchObject({ uid: 1001, secret: 's3cret-value' });
    // A function that names no secret has none.
    expect((await web('/function/echo/secret/api-token')).seen.secret).toMatch(/^unreadable/);
  });

  it('ends a call ERROR when the server never listens, saying the readiness limit', async () => {
    const c = await invoke('silent', {});
    expect(c.status).toBe('ERROR');
    expect(c.error).toMatch(/did not accept connections on port 8080 within its readiness limit of 2s/);
  });

  it('ends a call ERROR saying so when the server exits during it, and the next call gets a new one', async () => {
    const r = await fetch(`${p.api}/function/echo/exit`);
    expect(r.status).toBeGreaterThanOrEqual(500);
    expect(await r.text()).toMatch(/exited \(code 3\)/);
    const c = await invoke('echo', {});
    expect(c.status, c.error).toBe('DONE');
  });

  it('refuses an image the node does not have, saying so', async () => {
    const r = await deployImage('missing', { image: 'zfaas-test/no-such-image:1' });
    expect(r.status).toBe(201);
    const c = await invoke('missing', {});
    expect(c.status).toBe('ERROR');
    expect(c.error).toMatch(/zfaas-test\/no-such-image:1 is not on this node/);
  });
});

describe('the CLI', () => {
  it('deploys an image the engine has with --image and --port', async () => {
    const r = await zf(['deploy', 'imgtest-port', '--image', ECHO, '--port', '9090', '--readiness', '15s']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/deployed imgtest-port version 1 \(image zfaas-test\/image-echo:1, port 9090\)/);
    const seen = JSON.parse((await invoke('imgtest-port', {})).result) as Seen;
    expect(seen.port).toBe('9090');
    const shown = await zf(['function', 'imgtest-port']);
    expect(shown.stdout).toMatch(/image:\s+zfaas-test\/image-echo:1 \(port 9090, readiness 15s\)/);
  });

  it('builds a folder with a Dockerfile on the engine, printing the build, and deploys it', async () => {
    const dir = join(work, 'from-dir');
    await mkdir(dir);
    for (const f of ['server.py', 'Dockerfile'])
      await writeFile(join(dir, f), await readFile(join(ROOT, 'runtimes', 'fixtures', 'image-echo', f)));
    const r = await zf(['deploy', 'imgtest-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Step 1\/\d+ : FROM zfaas\/python:latest/);
    expect(r.stderr).toMatch(/built zfaas-fn\/imgtest-dir:[0-9a-f]{12}/);
    expect(r.stdout).toMatch(/deployed imgtest-dir version 1 \(image zfaas-fn\/imgtest-dir:[0-9a-f]{12}, port 8080\)/);
    const w = await web('/function/imgtest-dir/from/cli?x=1');
    expect(w.seen).toMatchObject({ path: '/from/cli', query: 'x=1' });
  });

  it('makes a folder with init --template dockerfile that deploys and answers', async () => {
    const made = await zf(['init', 'imgtest-init', '--template', 'dockerfile']);
    expect(made.code, made.stderr).toBe(0);
    const r = await zf(['deploy', 'imgtest-init', './imgtest-init']);
    expect(r.code, r.stderr).toBe(0);
    const c = await invoke('imgtest-init', { name: 'ana' });
    expect(c.status, c.error).toBe('DONE');
    expect(JSON.parse(c.result)).toEqual({ message: 'Hello, ana!', path: '/' });
    const w = await fetch(`${p.api}/function/imgtest-init/hi?name=bo`);
    expect(await w.json()).toEqual({ message: 'Hello, bo!', path: '/hi' });
    const inv = await zf(['invoke', 'imgtest-init', 'name=cy']);
    expect(inv.code, inv.stderr).toBe(0);
    expect(inv.stdout).toContain('Hello, cy!');
  });

  it('pushes a built image to --registry and deploys that reference, which the node pulls', async () => {
    // A registry on loopback (Docker takes 127.0.0.0/8 as insecure: plain HTTP), removed at the end.
    const port = await freePort();
    const registry = await docker.createContainer({
      Image: 'zfaas/registry:2',
      Labels: { [TEST_LABEL]: TEST_VALUE },
      HostConfig: { PortBindings: { '5000/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
      ExposedPorts: { '5000/tcp': {} },
    });
    await registry.start();
    await waitFor('the registry', async () => (await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => null))?.ok || undefined, 30_000);
    const dir = join(work, 'for-registry');
    await mkdir(dir);
    for (const f of ['server.py', 'Dockerfile'])
      await writeFile(join(dir, f), await readFile(join(ROOT, 'runtimes', 'fixtures', 'image-echo', f)));
    // Policy none: nothing is preloaded, so its first call is what makes the node look for the image.
    const r = await zf(['deploy', 'imgtest-reg', dir, '--registry', `127.0.0.1:${port}`, '--policy', 'none']);
    expect(r.code, r.stderr).toBe(0);
    const ref = /image (127\.0\.0\.1:\d+\/zfaas-fn\/imgtest-reg:[0-9a-f]{12})/.exec(r.stdout)?.[1];
    expect(ref, r.stdout).toBeDefined();
    expect(r.stderr).toMatch(/Pushed|Layer already exists/);
    // The engine forgets that name: the node must pull it from the registry.
    await docker.getImage(ref!).remove();
    const c = await invoke('imgtest-reg', { via: 'registry' });
    expect(c.status, c.error).toBe('DONE');
    expect((JSON.parse(c.result) as Seen).body).toBe('{"via":"registry"}');
    await docker.getImage(ref!).inspect(); // pulled
  });
});
