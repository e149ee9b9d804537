// Issue 5 item 6: docker-compose.yml brought up for real on this machine's Docker engine. The application
// image and the registry image are built offline (scripts/build-app-image.sh), the variables and the secret
// files (token, CURVE secret keys) come from scripts/compose-env.sh as the README says, and the run goes
// through the published API port only: two instances join over CURVE, a function deployed over REST runs
// in a sibling container.
// `docker-compose down -v` must leave nothing behind: no container, volume or network of the project, no
// function container of its nodes.
import { execFile, execFileSync } from 'node:child_process';
import { appendFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { docker, freePort, ROOT, stopwatch, tempDir, waitFor } from './helpers/platform.js';

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('compose.e2e: skipped: needs root (installs docker-compose, builds images, mounts the Docker socket)');

// `docker stack config` (Docker CLI 20.10.? and later; this machine kind's /usr/local/bin/docker has it)
// loads the file the way `docker stack deploy` does, without a swarm.
const stackConfig = ((): boolean => {
  try {
    execFileSync('docker', ['stack', 'config', '--help'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    console.warn('compose.e2e: this docker CLI has no `docker stack config`: the stack check is skipped');
    return false;
  }
})();

const esc = (v: string | undefined): string => (v ?? '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const PROJECT = `zfaas-compose-${process.pid}`;
let dir = '';
let envFile = '';
let api = '';
let token = '';
let registryPort = 0;
let nodes: string[] = [];
let downDone = false;
const { timings, timed } = stopwatch();

async function sh(cmd: string, args: string[], timeoutMs: number, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, {
      cwd: ROOT,
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 32 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
    return stdout;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`.slice(0, 8000));
  }
}

const compose = (args: string[], timeoutMs = 120_000): Promise<string> =>
  sh('docker-compose', ['-p', PROJECT, '-f', join(ROOT, 'docker-compose.yml'), '--env-file', envFile, ...args], timeoutMs);

const authed = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${api}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) },
    signal: AbortSignal.timeout(60_000),
  });

async function projectLeftovers(): Promise<string[]> {
  const label = `com.docker.compose.project=${PROJECT}`;
  const containers = await docker.listContainers({ all: true, filters: { label: [label] } });
  const volumes = (await docker.listVolumes({ filters: { label: [label] } })).Volumes ?? [];
  const networks = await docker.listNetworks({ filters: { label: [label] } });
  const fnContainers = [];
  for (const n of nodes) fnContainers.push(...(await docker.listContainers({ all: true, filters: { label: [`zfaas.node=${n}`] } })));
  return [
    ...containers.map((c) => `container ${c.Names[0]}`),
    ...volumes.map((v) => `volume ${v.Name}`),
    ...networks.map((n) => `network ${n.Name}`),
    ...fnContainers.map((c) => `function container ${c.Id.slice(0, 12)}`),
  ];
}

describe.skipIf(!isRoot)('docker-compose.yml on this machine', () => {
  beforeAll(async () => {
    await sh('bash', ['scripts/ensure-cluster-tools.sh'], 300_000);
    await sh('bash', ['runtimes/build-images.sh', 'node'], 600_000); // the runtime the function uses
    await timed('images (app + registry, offline)', () => sh('bash', ['scripts/build-app-image.sh', '--registry-image'], 600_000));
    dir = await tempDir('zfaas-compose-');
    envFile = join(dir, 'zfaas.env');
    // The README's way: generated variables and secret files, plus this run's own ports and data folders.
    const generated = await sh('bash', ['scripts/compose-env.sh', join(dir, 'secrets')], 30_000);
    token = (await readFile(join(dir, 'secrets', 'api-token'), 'utf8')).trim();
    const apiPort = await freePort();
    registryPort = await freePort();
    api = `http://127.0.0.1:${apiPort}`;
    await mkdir(join(dir, 'instance-1'));
    await mkdir(join(dir, 'instance-2'));
    await writeFile(envFile, generated, { mode: 0o600 });
    await appendFile(
      envFile,
      [
        `ZFAAS_PORT=${apiPort}`,
        `ZFAAS_REGISTRY_PORT=${registryPort}`,
        'ZFAAS_REGISTRY_IMAGE=zfaas/registry:2',
        `ZFAAS_INSTANCE_DATA=${join(dir, 'instance-1')}`,
        `ZFAAS_INSTANCE2_DATA=${join(dir, 'instance-2')}`,
        'ZFAAS_MINIWORKERS=2',
        'ZFAAS_LABELS=zone=compose',
        '',
      ].join('\n'),
    );
    await timed('docker-compose up -d', () => compose(['up', '-d', '--no-build']));
  }, 900_000);

  afterAll(async () => {
    if (envFile && !downDone)
      await compose(['down', '-v', '--remove-orphans', '--timeout', '30'], 180_000).catch((e) => console.error(String(e)));
    // Last resort only (a failed down): this project's containers and its nodes' function containers.
    for (const c of await docker
      .listContainers({ all: true, filters: { label: [`com.docker.compose.project=${PROJECT}`] } })
      .catch(() => [])) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    }
    for (const n of nodes) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [`zfaas.node=${n}`] } }).catch(() => []))
        await docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => undefined);
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    console.log(`compose.e2e timings: ${JSON.stringify(timings)}`);
  }, 240_000);

  it.skipIf(!stackConfig)('is, unchanged, a valid stack file (docker stack config), with a global instance service', async () => {
    const env: Record<string, string> = {};
    for (const line of (await sh('bash', ['scripts/compose-env.sh', join(dir, 'secrets-check')], 30_000)).split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) env[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
    }
    const out = await sh('docker', ['stack', 'config', '-c', join(ROOT, 'docker-compose.yml')], 30_000, env);
    expect(out).toMatch(/instance:[\s\S]*?mode: global/);
    // Z85 keys may start with YAML indicators (*, &, !, {...): the emitter then quotes them.
    const yamlValue = (name: string, v: string | undefined): RegExp => new RegExp(`${name}: (${esc(v)}|"${esc(v)}"|'${esc(v)}')\\n`);
    expect(out).toMatch(yamlValue('ZFAAS_CURVE_SERVER_KEY', env.ZFAAS_SERVER_PUBLIC_KEY));
    expect(out).toMatch(yamlValue('ZFAAS_CURVE_ALLOWED', env.ZFAAS_INSTANCE_PUBLIC_KEY));
    // The secret halves are swarm secrets made from the files, read by the services from /run/secrets:
    // none of them is in the stack's configuration.
    expect(out).toContain('ZFAAS_CURVE_SECRET_FILE: /run/secrets/server-secret-key');
    expect(out).toContain('ZFAAS_CURVE_SECRET_FILE: /run/secrets/instance-secret-key');
    expect(out).toContain('ZFAAS_TOKEN_FILE: /run/secrets/api-token');
    expect(out).toContain('ZFAAS_SECRETS_KEY_FILE: /run/secrets/secrets-master-key');
    for (const f of ['api-token', 'server-secret-key', 'instance-secret-key', 'secrets-master-key']) {
      expect(out).toContain(`file: ${join(env.ZFAAS_SECRETS!, f)}`);
      expect(out).not.toContain((await readFile(join(env.ZFAAS_SECRETS!, f), 'utf8')).trim());
    }
    expect(out).not.toMatch(/ZFAAS_TOKEN:|ZFAAS_CURVE_SECRET:/);
    // Without IPVS: names resolve to the tasks (dnsrr) and ports are published on their host.
    const service = (name: string): string => new RegExp(`\\n  ${esc(name)}:\\n([\\s\\S]*?)(?=\\n  \\S|\\n\\S)`).exec(out)?.[1] ?? '';
    for (const name of ['registry', 'registry-relay', 'db', 'api', 'instance', 'instance-2'])
      expect(service(name), name).toContain('endpoint_mode: dnsrr');
    for (const name of ['registry-relay', 'api']) expect(service(name), name).toContain('mode: host');
    expect(service('registry-relay')).toContain('mode: global');
    expect(service('instance-2')).toContain('node.labels.zfaas.instance-2 == true'); // in a swarm: where labelled only
    // The registry, the DB service and the API stay with their volumes, on the labelled server node.
    for (const name of ['registry', 'db', 'api']) expect(service(name), name).toContain('node.labels.zfaas.server == true');
    // Without the variables it refuses with the README's pointer instead of starting an open cluster.
    const bare = Object.fromEntries(Object.keys(env).map((k) => [k, '']));
    await expect(sh('docker', ['stack', 'config', '-c', join(ROOT, 'docker-compose.yml')], 30_000, bare)).rejects.toThrow(/see the README/);
  });

  it('brings up registry, db, api and two instances that join the API over CURVE', async () => {
    const health = await timed('both nodes joined', () =>
      waitFor(
        'two compose instances to join',
        async () => {
          const h = (await (await fetch(`${api}/health`, { signal: AbortSignal.timeout(5000) })).json()) as { ok: boolean; nodes: number };
          return h.ok && h.nodes >= 2 ? h : undefined;
        },
        120_000,
      ).catch(async (e: unknown) => {
        throw new Error(`${String(e)}\n${(await compose(['logs', '--tail', '40']).catch((x: unknown) => String(x))).slice(-6000)}`);
      }),
    );
    expect(health.nodes).toBe(2);
    const list = (await (await authed('/nodes')).json()) as { id: string; state: string; labels?: Record<string, string> }[];
    nodes = list.map((n) => n.id);
    expect(list).toHaveLength(2);
    for (const n of list) {
      expect(n.state).toBe('alive');
      expect(n.labels).toMatchObject({ zone: 'compose' });
    }
    // The REST API wants the token (it listens beyond loopback); the registry answers; the DB service is
    // reachable only on the project's network (its port is not published).
    expect((await fetch(`${api}/functions`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${registryPort}/v2/`)).status).toBe(200);
    expect((await compose(['port', 'db', '5560']).catch(() => '')).trim()).toBe('');
    expect((await compose(['port', 'api', '3000'])).trim()).toMatch(new RegExp(`:${new URL(api).port}$`));
  }, 180_000);

  it('runs a function deployed over REST with the built-in node runtime (nothing registered first)', async () => {
    expect(await (await authed('/runtimes')).json()).toEqual(expect.arrayContaining(['node', 'python']));
    const archive = await packFiles({ 'index.js': 'module.exports = async (p) => ({ sum: p.a + p.b, pid: process.pid });\n' });
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(archive)]), 'add.tar.gz');
    const reg = await authed('/registerFunction/node/add', { method: 'POST', body: form });
    expect(reg.status).toBe(201);

    const first = await timed('first call (cold)', async () =>
      authed('/function/add', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 2, b: 3 }) }),
    );
    expect(first.status).toBe(200);
    expect(((await first.json()) as { sum: number }).sum).toBe(5);

    // A few at once: every one DONE with its own result, each run by one of the two compose nodes.
    const calls = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await authed('/invokeFunction', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ funcName: 'add', params: { a: i, b: 100 }, wait: true }),
        });
        return { i, body: (await r.json()) as { status: string; result: string; node: string } };
      }),
    );
    for (const { i, body } of calls) {
      expect(body.status).toBe('DONE');
      expect((JSON.parse(body.result) as { sum: number }).sum).toBe(i + 100);
      expect(nodes).toContain(body.node);
    }
  }, 180_000);

  it('docker-compose down -v removes everything the project created', async () => {
    await timed('docker-compose down -v', () => compose(['down', '-v', '--remove-orphans', '--timeout', '30'], 180_000));
    downDone = true;
    expect(await projectLeftovers()).toEqual([]);
  }, 240_000);
});
