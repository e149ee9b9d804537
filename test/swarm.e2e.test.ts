// Multi-host deployment for real: docker-compose.yml deployed unchanged with `docker stack deploy` to a
// Docker Swarm of three hosts built on this machine by scripts/swarm/hosts.sh (a network namespace, a
// hostname, a /run and a dockerd per host; traffic only on their veths and loopback). The variables and
// secret files come from scripts/compose-env.sh as the README says. Checked: an instance on each host
// registers with the API over CURVE; the runtime image reaches each host's engine through the stack's
// registry (`zfaas push-images`); ~150 calls spread over the three hosts; a worker host crashed mid-load
// (kill -9 of its dockerd, containerd, shims and containers) loses no accepted call, and once its dockerd
// is restarted it rejoins the swarm and its instance registers again; `docker stack rm` and
// `hosts.sh down` leave nothing behind. Rolling updates under a steady load: the instance service moved to a
// new image tag (pushed through the stack's registry) one host at a time, each old instance draining
// before it exits, then the API service itself; every call accepted meanwhile ends in the store (DONE for
// the instances' update), and the accepted, finished and lost calls and the longest pause in answers of
// each update are printed as a table. Skipped, with the reason, where the hosts cannot be built.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFinal, type CallStatus } from '../common/model.js';
import { packFiles } from './helpers/archives.js';
import { ROOT, sleep, stopwatch, tempDir, waitFor } from './helpers/platform.js';
import { longestPause } from './helpers/failover-load.js';
import { HOSTS_SH, lines, PATH, requestOver, sh, swarmUnsupported, type Answer } from './helpers/swarm-hosts.js';

const PREFIX = `zfaas-swarm-${process.pid}`;
const STATE = join('/tmp', PREFIX);
const IMAGE = process.env.ZFAAS_IMAGE ?? 'zfaas/zfaas:latest';
const RUNTIME_IMAGES = [
  'zfaas/node:latest',
  'zfaas/python:latest',
  'zfaas/java:latest',
  'zfaas/go:latest',
  'zfaas/provided:latest',
  'noderuntime:latest',
  'pythonruntime:latest',
  'javaruntime:latest',
  'goruntime:latest',
  'providedruntime:latest',
];
const DATA = '/run/zfaas/instance'; // each host's own /run: the instance folder is the host's, at one path
const CALLS = 150;
// The same application image under a new tag, in the stack's registry: every host's engine pulls it from
// 127.0.0.1:5000 (registry-relay), as the runtime images.
const NEW_IMAGE = '127.0.0.1:5000/zfaas/zfaas:update';

const unsupported = swarmUnsupported();
if (unsupported) console.warn(`swarm.e2e: skipped: ${unsupported}`);

let dir = '';
let token = '';
let apiSock = '';
let relay: ChildProcess | undefined;
let stackEnv: Record<string, string> = {};
let downDone = false;
const hostOf = new Map<string, string>(); // zfaas node id -> host (a, b, c)
const { timings, timed, since } = stopwatch();

// hosts.sh; what up, down, load, crash and start say of their steps (with timings) goes to the log.
const hosts = (args: string[], timeoutMs = 120_000, env: Record<string, string> = {}): Promise<string> =>
  sh('bash', [HOSTS_SH, ...args], timeoutMs, env, ['up', 'down', 'load', 'crash', 'start'].includes(args[0]!));
const dockerOn = (host: string, args: string[], timeoutMs = 60_000, env: Record<string, string> = {}): Promise<string> =>
  hosts(['docker', PREFIX, host, ...args], timeoutMs, env);

// The API, through a relay inside host a (a unix socket here, 127.0.0.1:3000 there): no TCP on this
// machine's own network.
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  // A connect refused with EAGAIN (the relay's backlog full while the machine is loaded) sent nothing:
  // it is tried again, so that no call is made twice.
  for (let tries = 1; ; tries++) {
    try {
      return await apiOnce(method, path, body);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || tries >= 50) throw e;
      await sleep(50);
    }
  }
}

function apiOnce(method: string, path: string, body?: unknown): Promise<Answer> {
  return requestOver(apiSock, method, path, { token, body, timeoutMs: 120_000 });
}

interface NodeInfo {
  id: string;
  state: string;
  labels?: Record<string, string>;
}
interface Call {
  callNum: number;
  status: string;
  result?: string;
  node?: string;
  attempts?: number;
  params?: { i?: number };
}

const nodes = async (): Promise<NodeInfo[]> => (await api('GET', '/nodes')).json as NodeInfo[];
const hostLabel = (n: NodeInfo): string => (n.labels?.host ?? '').replace(`${PREFIX}-`, '');
const swarmStatus = async (host: string): Promise<string> =>
  (await dockerOn('a', ['node', 'inspect', '-f', '{{.Status.State}}', `${PREFIX}-${host}`], 10_000)).trim();

async function startRelay(): Promise<void> {
  apiSock = join(dir, 'api.sock');
  const code = `const net = require('net'); const [, path] = process.argv;
net.createServer((c) => { const u = net.connect(3000, '127.0.0.1'); c.pipe(u); u.pipe(c);
  const end = () => { c.destroy(); u.destroy(); }; c.on('error', end); u.on('error', end); })
  .listen(path, () => console.log('relay ready'));`;
  // hosts.sh exec becomes nsenter, then node: the child's pid is the relay's.
  const child = spawn('bash', [HOSTS_SH, 'exec', PREFIX, 'a', process.execPath, '-e', code, apiSock], {
    env: { ...process.env, PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  relay = child;
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor('the API relay in host a', async () => (out.includes('relay ready') ? true : undefined), 15_000);
}

async function stopRelay(): Promise<void> {
  const r = relay;
  if (!r || r.exitCode !== null || r.signalCode !== null) return;
  const exited = new Promise((res) => r.once('exit', res));
  r.kill('SIGTERM');
  await exited;
}

// A steady load until stopped: `callers` callers, each with one blocking call of `ms` at a time. Each answer
// that carries a call (its callNum) is timed; a request that fails (the API away) is counted and tried
// again 250 ms later.
interface Load {
  accepted: { i: number; callNum: number }[];
  answers: number[]; // when each of them was answered (ms since the epoch)
  errors: { at: number; error: string }[];
  stop(): Promise<void>;
}
function steadyLoad(callers: number, ms: number, firstI: number): Load {
  const load: Omit<Load, 'stop'> = { accepted: [], answers: [], errors: [] };
  let stopped = false;
  let next = firstI;
  const caller = async (): Promise<void> => {
    while (!stopped) {
      const i = next++;
      try {
        const r = await api('POST', '/invokeFunction', { funcName: 'nap', params: { i, ms }, wait: 100 });
        const call = r.json as Partial<Call>;
        if (typeof call.callNum !== 'number') throw new Error(`${r.status} ${JSON.stringify(r.json).slice(0, 200)}`);
        load.accepted.push({ i, callNum: call.callNum });
        load.answers.push(Date.now());
      } catch (e) {
        load.errors.push({ at: Date.now(), error: e instanceof Error ? e.message : String(e) });
        await sleep(250);
      }
    }
  };
  const all = Promise.all(Array.from({ length: callers }, caller));
  return {
    ...load,
    stop: async () => {
      stopped = true;
      await all;
    },
  };
}

// A call's final state as the store holds it (long-polled), or its last state if it never ends.
async function finalCall(callNum: number): Promise<Call> {
  let call = (await api('GET', `/call/${callNum}`)).json as Call;
  for (let k = 0; k < 3 && !isFinal(call.status as CallStatus); k++) call = (await api('GET', `/call/${callNum}?wait=30`)).json as Call;
  return call;
}

// `docker service update --detach ...` of a stack service, then until its update is completed (any other
// end, e.g. paused or rolled back, fails); `probe` runs meanwhile.
async function serviceUpdate(service: string, args: string[], probe: () => Promise<void> = async () => undefined): Promise<void> {
  await dockerOn('a', ['service', 'update', '--detach', ...args, service], 60_000);
  let state = '';
  await waitFor(
    `the update of ${service} to complete`,
    async () => {
      await probe().catch(() => undefined);
      state = (
        await dockerOn('a', ['service', 'inspect', '-f', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}', service], 10_000)
      ).trim();
      return ['completed', 'paused', 'rollback_started', 'rollback_paused', 'rollback_completed'].includes(state) ? state : undefined;
    },
    240_000,
  );
  if (state !== 'completed') {
    const why = await dockerOn('a', ['service', 'inspect', '-f', '{{json .UpdateStatus}}', service], 10_000).catch((e: unknown) =>
      String(e),
    );
    const ps = await dockerOn('a', ['service', 'ps', '--no-trunc', service], 10_000).catch((e: unknown) => String(e));
    throw new Error(`the update of ${service} ended ${state}: ${why}\n${ps}`);
  }
}

// The measurements of each update, printed as a table at the end.
const measured: {
  update: string;
  seconds: number;
  accepted: number;
  finished: number;
  lost: number;
  errors: number;
  pause: number;
  rerun: number;
}[] = [];
function printMeasured(): void {
  if (measured.length === 0) return;
  const head = ['update', 'took s', 'accepted', 'finished', 'lost', 'caller errors', 'longest pause s', 'run again'];
  const rows = measured.map((m) =>
    [m.update, m.seconds.toFixed(1), m.accepted, m.finished, m.lost, m.errors, (m.pause / 1000).toFixed(2), m.rerun].map(String),
  );
  const w = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const fmt = (r: string[]): string => `| ${r.map((c, k) => c.padEnd(w[k]!)).join(' | ')} |`;
  console.log(
    ['swarm.e2e: rolling updates under load', fmt(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(fmt)].join('\n'),
  );
}

// Earlier runs of this test that died before their `hosts.sh down` (their pid is gone): removed now, found
// by their namespaces or their state folder.
async function sweepDeadRuns(): Promise<void> {
  const names = [...(await readdir('/var/run/netns').catch(() => [] as string[])), ...(await readdir('/tmp').catch(() => [] as string[]))];
  const pids = new Set(names.map((n) => /^zfaas-swarm-(\d+)(-sw)?$/.exec(n)?.[1]).filter((p): p is string => p !== undefined));
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      process.kill(Number(pid), 0);
      continue; // its test still runs
    } catch {
      console.log(`swarm.e2e: removing the hosts of a dead run (zfaas-swarm-${pid})`);
      await hosts(['down', `zfaas-swarm-${pid}`], 120_000).catch((e: unknown) => console.error(String(e)));
    }
  }
}

describe.skipIf(unsupported !== undefined)('docker-compose.yml as a stack on a three-host swarm', () => {
  beforeAll(async () => {
    await sh('bash', ['scripts/ensure-cluster-tools.sh'], 300_000);
    await sh('bash', ['runtimes/build-images.sh'], 900_000); // push-images puts the built-in runtimes in the registry
    await timed('images (app + registry, offline)', () => sh('bash', ['scripts/build-app-image.sh', '--registry-image'], 600_000));
    await sweepDeadRuns();
    dir = await tempDir('zfaas-swarm-test-');
    await timed('hosts up (3 engines, swarm, app image on all, registry image on a)', () =>
      hosts(['up', PREFIX], 240_000, { ZFAAS_IMAGE: IMAGE, ZFAAS_REGISTRY_IMAGE: 'zfaas/registry:2' }),
    );
  }, 900_000);

  afterAll(async () => {
    await stopRelay();
    if (!downDone) await hosts(['down', PREFIX], 180_000).catch((e: unknown) => console.error(String(e)));
    if (dir) await rm(dir, { recursive: true, force: true });
    printMeasured();
    console.log(`swarm.e2e timings: ${JSON.stringify(timings, null, 1)}`);
  }, 240_000);

  it('forms a swarm of three Ready nodes, each with its own engine and hostname', async () => {
    const ls = lines(await dockerOn('a', ['node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'])).map((l) => l.trim());
    expect(ls.sort()).toEqual([`${PREFIX}-a Ready Leader`, `${PREFIX}-b Ready`, `${PREFIX}-c Ready`]);
    for (const h of ['a', 'b', 'c']) {
      const images = lines(await dockerOn(h, ['images', '--format', '{{.Repository}}:{{.Tag}}']));
      expect(images).toContain(IMAGE);
      for (const r of RUNTIME_IMAGES) expect(images).not.toContain(r); // they come through the registry
    }
  });

  it('deploys the stack file unchanged; an instance on each host registers over CURVE', async () => {
    // The README's steps: the server label, the instance folder on every host, the generated variables
    // (secret halves in files), then `docker stack deploy` with those variables.
    await dockerOn('a', ['node', 'update', '--label-add', 'zfaas.server=true', `${PREFIX}-a`]);
    for (const h of ['a', 'b', 'c']) await hosts(['exec', PREFIX, h, 'mkdir', '-p', DATA]);
    const secrets = join(dir, 'secrets');
    const generated = await sh('bash', ['scripts/compose-env.sh', secrets], 30_000);
    for (const line of lines(generated)) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) stackEnv[m[1]!] = m[2]!.replace(/^'(.*)'$/, '$1');
    }
    expect(Object.keys(stackEnv).sort()).toEqual(['ZFAAS_INSTANCE_PUBLIC_KEY', 'ZFAAS_SECRETS', 'ZFAAS_SERVER_PUBLIC_KEY']);
    token = (await readFile(join(secrets, 'api-token'), 'utf8')).trim();
    stackEnv = {
      ...stackEnv,
      ZFAAS_IMAGE: IMAGE,
      ZFAAS_REGISTRY_IMAGE: 'zfaas/registry:2',
      ZFAAS_INSTANCE_DATA: DATA,
      ZFAAS_MINIWORKERS: '2',
      ZFAAS_LABELS: 'host={{.Node.Hostname}}',
    };
    // The runtime images go to host a's engine meanwhile, only to be pushed from there (push-images).
    const loading = timed('runtime images loaded into host a (for push-images)', () =>
      hosts(['load', PREFIX, 'a', ...RUNTIME_IMAGES], 180_000),
    ).catch((e: unknown) => e); // awaited below
    const t0 = Date.now();
    await dockerOn(
      'a',
      ['stack', 'deploy', '--resolve-image', 'never', '-c', join(ROOT, 'docker-compose.yml'), 'zfaas'],
      120_000,
      stackEnv,
    );
    since('stack deploy command', t0);
    await startRelay();
    const registered = await waitFor(
      'an instance on each of the three hosts to register',
      async () => {
        const list = await nodes();
        const alive = list.filter((n) => n.state === 'alive');
        return alive.length === 3 ? alive : undefined;
      },
      120_000,
    ).catch(async (e: unknown) => {
      const ps = await dockerOn('a', ['stack', 'ps', '--no-trunc', 'zfaas']).catch((x: unknown) => String(x));
      throw new Error(`${String(e)}\n${ps}`);
    });
    since('stack deployed -> 3 instances registered', t0);
    expect(registered.map(hostLabel).sort()).toEqual(['a', 'b', 'c']);
    // instance-2 (the second node of one host with compose) runs nowhere: no node has its label.
    expect((await dockerOn('a', ['service', 'ps', '-q', 'zfaas_instance-2'])).trim()).toBe('');
    for (const n of registered) hostOf.set(n.id, hostLabel(n));
    // The secrets are files under /run/secrets: no environment holds them, and inspect shows none.
    const service = await dockerOn('a', ['service', 'inspect', 'zfaas_api', 'zfaas_db', 'zfaas_instance']);
    expect(service).toContain('ZFAAS_TOKEN_FILE=/run/secrets/api-token');
    expect(service).toContain('ZFAAS_CURVE_SECRET_FILE=/run/secrets/server-secret-key');
    expect(service).toContain('ZFAAS_CURVE_SECRET_FILE=/run/secrets/instance-secret-key');
    expect(service).toContain('ZFAAS_SECRETS_KEY_FILE=/run/secrets/secrets-master-key');
    for (const f of ['api-token', 'server-secret-key', 'instance-secret-key', 'secrets-master-key'])
      expect(service).not.toContain((await readFile(join(stackEnv.ZFAAS_SECRETS!, f), 'utf8')).trim());
    // CURVE: the DB service listens beyond loopback, which it refuses to do without its CURVE key.
    expect(await dockerOn('a', ['service', 'inspect', '-f', '{{json .Spec.TaskTemplate.ContainerSpec.Args}}', 'zfaas_db'])).toContain(
      'tcp://0.0.0.0:5560',
    );
    expect((await api('GET', '/health')).json).toMatchObject({ ok: true, nodes: 3 });
    const anonymous = await new Promise<number>((resolve, reject) =>
      request({ socketPath: apiSock, path: '/functions' }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      })
        .on('error', reject)
        .end(),
    );
    expect(anonymous).toBe(401);
    const loaded = await loading;
    if (loaded instanceof Error) throw loaded;
  }, 300_000);

  it('puts the runtime images in the stack registry (zfaas push-images) and no host engine holds them', async () => {
    // As an operator would on the manager: the app image's push-images, through 127.0.0.1:5000 there.
    await timed('zfaas push-images (from host a)', () =>
      dockerOn(
        'a',
        [
          'run',
          '--rm',
          '--network',
          'host',
          '-v',
          '/var/run/docker.sock:/var/run/docker.sock',
          IMAGE,
          'push-images',
          '--registry',
          '127.0.0.1:5000',
        ],
        240_000,
      ),
    );
    await dockerOn('a', ['rmi', ...RUNTIME_IMAGES, ...RUNTIME_IMAGES.map((i) => `127.0.0.1:5000/${i}`)]);
    for (const h of ['a', 'b', 'c']) {
      const images = lines(await dockerOn(h, ['images', '--format', '{{.Repository}}:{{.Tag}}']));
      expect(images.filter((i) => /node|python/.test(i))).toEqual([]);
    }
  }, 300_000);

  it('spreads ~150 calls over the three hosts; a worker crashed mid-load loses none and rejoins', async () => {
    const archive = await packFiles({
      'index.js': 'module.exports = async (p) => { await new Promise((r) => setTimeout(r, p.ms)); return { i: p.i }; };\n',
    });
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(archive)]), 'nap.tar.gz');
    // policy=function: each node pulls the runtime image and readies a container with the function now,
    // so the load runs warm (the stack's nodes keep no stem cells: policy none).
    form.append('policy', 'function');
    expect((await api('POST', '/registerFunction/node/nap', form)).status).toBe(201);
    const cId = [...hostOf].find(([, h]) => h === 'c')![0];

    const t0 = Date.now();
    const accepted: { i: number; callNum: number }[] = [];
    const doneOn = new Map<string, number>(); // host -> calls it finished (as answered)
    let crashed = (): void => undefined;
    const crash = new Promise<void>((r) => (crashed = r));
    let next = 0;
    // 12 callers, one call each at a time; the calls from GATE on wait for the crash, so that it
    // happens mid-load whatever the speed of this machine.
    const GATE = 90;
    const submitter = async (): Promise<void> => {
      while (next < CALLS) {
        const i = next++;
        if (i >= GATE) await crash;
        const r = await api('POST', '/invokeFunction', { funcName: 'nap', params: { i, ms: 800 }, wait: 100 });
        expect([200, 202]).toContain(r.status);
        const call = r.json as Call;
        accepted.push({ i, callNum: call.callNum });
        if (call.status === 'DONE' && call.node) {
          const h = hostOf.get(call.node) ?? '?';
          doneOn.set(h, (doneOn.get(h) ?? 0) + 1);
        }
      }
    };
    const load = Promise.all(Array.from({ length: 12 }, submitter));

    // Mid-load, once each host has finished calls (each pulled the runtime image first) and while host c
    // runs some: host c crashes.
    const busyC = async (): Promise<(NodeInfo & { running?: number }) | undefined> => {
      if (!['a', 'b', 'c'].every((h) => (doneOn.get(h) ?? 0) >= 5)) return undefined;
      const c = (await nodes()).find((n) => n.id === cId) as (NodeInfo & { running?: number }) | undefined;
      return c && (c.running ?? 0) > 0 ? c : undefined;
    };
    const runningOnC = await waitFor('calls done on all three hosts, and calls running on c', busyC, 150_000).catch((e: unknown) => {
      crashed(); // the gated callers go on, and the test fails with this
      throw e;
    });
    since('5 calls done on each host (image pulls included)', t0);
    const beforeCrash = new Map(doneOn);
    await timed('host c crashed (kill -9 of everything on it)', () => hosts(['crash', PREFIX, 'c']));
    const crashedAt = Date.now();
    crashed();
    const zfaasDead = waitFor(
      'the API to find host c gone',
      async () => ((await nodes()).find((n) => n.id === cId)?.state === 'alive' ? undefined : true),
      60_000,
    ).then(() => since('crash -> API: node c lost', crashedAt));
    const swarmDown = waitFor('swarm: node c Down', async () => ((await swarmStatus('c')) === 'down' ? true : undefined), 90_000).then(() =>
      since('crash -> swarm: node c Down', crashedAt),
    );
    await load;
    since(`${CALLS} calls answered`, t0);
    since('crash -> every call answered', crashedAt);
    await zfaasDead;

    // Every accepted call ends DONE with its own result.
    expect(accepted).toHaveLength(CALLS);
    const finals = await Promise.all(
      accepted.map(async ({ i, callNum }) => {
        const call = (await api('GET', `/call/${callNum}?wait=120`)).json as Call;
        return { i, call };
      }),
    );
    const notDone = finals.filter(({ call }) => call.status !== 'DONE');
    expect(notDone.map(({ call }) => `${call.callNum} ${call.status}`)).toEqual([]);
    for (const { i, call } of finals) expect(JSON.parse(call.result!)).toEqual({ i });
    const byHost = new Map<string, number>();
    for (const { call } of finals) byHost.set(hostOf.get(call.node!) ?? '?', (byHost.get(hostOf.get(call.node!) ?? '?') ?? 0) + 1);
    const redone = finals.filter(({ call }) => (call.attempts ?? 1) > 1).length;
    console.log(
      `swarm.e2e: calls by host ${JSON.stringify(Object.fromEntries(byHost))} (before the crash ${JSON.stringify(Object.fromEntries(beforeCrash))}); host c was running ${runningOnC?.running ?? '?'} when it crashed; ${redone} calls ran again`,
    );
    for (const h of ['a', 'b', 'c']) expect(byHost.get(h) ?? 0).toBeGreaterThan(0);

    // The runtime image reached every engine through the registry.
    for (const h of ['a', 'b']) {
      const digests = await dockerOn(h, ['image', 'inspect', '-f', '{{json .RepoDigests}}', 'zfaas/node:latest']);
      expect(digests).toContain('127.0.0.1:5000/zfaas/node@sha256:');
    }

    // Host c comes back: its dockerd restarted, the node Ready, its instance registered again (same id).
    await swarmDown;
    const t1 = Date.now();
    await timed('dockerd of host c restarted', () => hosts(['start', PREFIX, 'c']));
    await waitFor('swarm: node c Ready', async () => ((await swarmStatus('c')) === 'ready' ? true : undefined), 90_000);
    since('restart -> swarm: node c Ready', t1);
    await waitFor(
      'node c registered again',
      async () => ((await nodes()).find((n) => n.id === cId)?.state === 'alive' ? true : undefined),
      120_000,
    );
    since('restart -> node c registered again', t1);
    const digests = await dockerOn('c', ['image', 'inspect', '-f', '{{json .RepoDigests}}', 'zfaas/node:latest']);
    expect(digests).toContain('127.0.0.1:5000/zfaas/node@sha256:');

    // And takes calls again.
    const again = await Promise.all(
      Array.from(
        { length: 18 },
        async (_, i) => (await api('POST', '/invokeFunction', { funcName: 'nap', params: { i, ms: 500 }, wait: 100 })).json as Call,
      ),
    );
    expect(again.every((c) => c.status === 'DONE')).toBe(true);
    expect(again.some((c) => c.node === cId)).toBe(true);
  }, 400_000);

  it('rolls the instance service to a new image tag under load, one host at a time: each drains, no call is lost', async () => {
    // The README's update: the same image under a new tag, pushed from the manager to the stack's registry.
    await timed('new app image tag pushed to the stack registry (from host a)', async () => {
      await dockerOn('a', ['tag', IMAGE, NEW_IMAGE]);
      await dockerOn('a', ['push', '-q', NEW_IMAGE], 180_000);
    });
    const before = (await nodes()).filter((n) => n.state === 'alive');
    expect(before.map(hostLabel).sort()).toEqual(['a', 'b', 'c']);
    // What the stack file set: one host at a time, stopped before replaced, 30 s to drain.
    const spec = JSON.parse(
      await dockerOn('a', [
        'service',
        'inspect',
        '-f',
        '{{json .Spec.UpdateConfig}} {{json .Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}',
        'zfaas_instance',
      ]).then((o) => `[${o.trim().replace(' ', ',')}]`),
    ) as [{ Parallelism: number; Order: string; FailureAction: string }, number];
    expect(spec[0]).toMatchObject({ Parallelism: 1, Order: 'stop-first', FailureAction: 'rollback' });
    expect(spec[1]).toBe(30e9);

    const load = steadyLoad(8, 300, 100_000);
    await waitFor('the load to be answered', async () => (load.answers.length >= 20 ? true : undefined), 60_000);
    const t0 = Date.now();
    let fewest = 3; // the fewest nodes the API saw alive during the update
    let t1 = 0;
    try {
      await serviceUpdate('zfaas_instance', ['--image', NEW_IMAGE], async () => {
        fewest = Math.min(fewest, (await nodes()).filter((n) => n.state === 'alive').length);
      }).finally(() => since('instance update: 3 hosts, one at a time', t0));
      t1 = Date.now();
      // The new nodes take calls: answers go on after the update.
      await waitFor('answers after the update', async () => (load.answers.some((a) => a > t1 + 1000) ? true : undefined), 30_000);
    } finally {
      await load.stop();
    }

    // Every accepted call ended DONE with its own result, checked one by one in the store.
    const finals = await Promise.all(load.accepted.map(async ({ i, callNum }) => ({ i, call: await finalCall(callNum) })));
    const lost = finals.filter(
      ({ i, call }) => call.status !== 'DONE' || (JSON.parse(call.result ?? 'null') as { i?: number } | null)?.i !== i,
    );
    measured.push({
      update: 'instance (new image tag)',
      seconds: (t1 - t0) / 1000,
      accepted: load.accepted.length,
      finished: finals.length - lost.length,
      lost: lost.length,
      errors: load.errors.length,
      pause: longestPause(load.answers, t0, t1),
      rerun: finals.filter(({ call }) => (call.attempts ?? 1) > 1).length,
    });
    expect(lost.map(({ call }) => `${call.callNum} ${call.status} ${call.result ?? ''}`)).toEqual([]);
    expect(load.errors.map((e) => e.error)).toEqual([]);

    // Every task runs the new image, one per host, and each node came back under its id with a new life.
    const tasks = lines(
      await dockerOn('a', [
        'service',
        'ps',
        '--filter',
        'desired-state=running',
        '--format',
        '{{.Node}} {{.Image}} {{.CurrentState}}',
        'zfaas_instance',
      ]),
    );
    expect(tasks.map((t) => t.split(' ')[0]).sort()).toEqual(['a', 'b', 'c'].map((h) => `${PREFIX}-${h}`));
    for (const t of tasks) expect(t).toMatch(new RegExp(`^\\S+ ${NEW_IMAGE.replace(/[.]/g, '\\.')}(@sha256:\\w+)? Running`));
    const after = (await nodes()).filter((n) => n.state === 'alive');
    expect(after.map((n) => n.id).sort()).toEqual(before.map((n) => n.id).sort());
    for (const n of after) expect(Date.parse((n as NodeInfo & { joinedAt: string }).joinedAt)).toBeGreaterThan(t0);

    // Each old instance drained before it exited (its last words), with exit code 0, within the grace period.
    const drains: string[] = [];
    for (const h of ['a', 'b', 'c']) {
      const containers = lines(
        await dockerOn(h, [
          'ps',
          '-a',
          '--filter',
          'label=com.docker.swarm.service.name=zfaas_instance',
          '--format',
          '{{.ID}} {{.Image}} {{.State}}',
        ]),
      ).map((l) => l.split(' '));
      expect(containers.find(([, , state]) => state === 'running')?.[1]).toContain(NEW_IMAGE);
      const old = containers.find(([, image, state]) => image === IMAGE && state === 'exited'); // newest first: the one the update stopped
      expect(old, `host ${h}: ${JSON.stringify(containers)}`).toBeDefined();
      const exit = (await dockerOn(h, ['inspect', '-f', '{{.State.ExitCode}}', old![0]!])).trim();
      // Its output and its errors both (the container's stderr comes as docker logs' own).
      const said = await sh('sh', ['-c', 'bash "$0" docker "$1" "$2" logs "$3" 2>&1', HOSTS_SH, PREFIX, h, old![0]!], 30_000);
      const drained = lines(said)
        .map((l) => {
          try {
            return JSON.parse(l) as { msg?: string; running?: number; unfinished?: number; ms?: number };
          } catch {
            return {};
          }
        })
        .find((m) => m.msg === 'drained' || m.msg?.startsWith('drain time is up'));
      expect(drained, `host ${h}: the old instance's log has no drain line`).toBeDefined();
      expect(drained!.msg).toBe('drained');
      expect(exit).toBe('0');
      drains.push(`${h}: ${drained!.running} running when told to stop, drained in ${drained!.ms} ms`);
    }
    console.log(`swarm.e2e: instance update: ${drains.join('; ')}; the API saw at least ${fewest} of 3 nodes alive throughout`);
    expect(fewest).toBeGreaterThanOrEqual(2); // one host at a time
  }, 300_000);

  it('updates the API service itself under load: every call it accepted ends in the store, and it answers again', async () => {
    const newest = (await api('GET', '/calls?format=list&limit=1')).json as Call[];
    const floor = newest[0]?.callNum ?? 0;
    const load = steadyLoad(8, 300, 200_000);
    await waitFor('the load to be answered', async () => (load.answers.length >= 20 ? true : undefined), 60_000);
    const t0 = Date.now();
    let t1 = 0;
    try {
      await serviceUpdate('zfaas_api', ['--image', NEW_IMAGE]).finally(() => since('API update', t0));
      t1 = Date.now();
      // The API answers again: calls answered after the update.
      await waitFor('answers after the update', async () => (load.answers.some((a) => a > t1 + 1000) ? true : undefined), 60_000);
    } finally {
      await load.stop();
    }
    const tasks = lines(
      await dockerOn('a', ['service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Image}} {{.CurrentState}}', 'zfaas_api']),
    );
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatch(new RegExp(`^${NEW_IMAGE.replace(/[.]/g, '\\.')}(@sha256:\\w+)? Running`));
    await waitFor(
      'three nodes registered with the new API',
      async () => ((await nodes()).filter((n) => n.state === 'alive').length === 3 ? true : undefined),
      60_000,
    );
    expect((await api('GET', '/health')).json).toMatchObject({ ok: true, nodes: 3 });

    // Every call the API accepted (stored with a callNum), whether or not its caller got the answer, ends in
    // a final state; every callNum a caller was given is among them.
    const stored = ((await api('GET', '/calls?format=list&funcName=nap&limit=2000')).json as Call[]).filter((c) => c.callNum > floor);
    const storedNums = new Set(stored.map((c) => c.callNum));
    expect(load.accepted.filter(({ callNum }) => !storedNums.has(callNum))).toEqual([]);
    const finals = await Promise.all(stored.map((c) => finalCall(c.callNum)));
    const open = finals.filter((c) => !isFinal(c.status as CallStatus));
    const done = finals.filter((c) => c.status === 'DONE');
    measured.push({
      update: 'API (new image tag)',
      seconds: (t1 - t0) / 1000,
      accepted: stored.length,
      finished: finals.length - open.length,
      lost: open.length,
      errors: load.errors.length,
      pause: longestPause(load.answers, t0, t1),
      rerun: finals.filter((c) => (c.attempts ?? 1) > 1).length,
    });
    console.log(
      `swarm.e2e: API update: ${stored.length} calls stored (${load.accepted.length} answered to their callers, ${stored.length - load.accepted.length} accepted with the caller cut off), ${done.length} DONE, ${finals.length - open.length - done.length} other final; callers saw ${load.errors.length} errors: ${[...new Set(load.errors.map((e) => e.error.slice(0, 60)))].join(', ')}`,
    );
    expect(open.map((c) => `${c.callNum} ${c.status}`)).toEqual([]);
    for (const c of done) expect(JSON.parse(c.result!)).toEqual({ i: c.params?.i });
  }, 300_000);

  it('docker stack rm, then hosts.sh down, leave nothing on any host or on this machine', async () => {
    const t0 = Date.now();
    await dockerOn('a', ['stack', 'rm', 'zfaas']);
    const left = async (): Promise<string[]> => {
      const out: string[] = [];
      for (const h of ['a', 'b', 'c']) {
        for (const c of lines(await dockerOn(h, ['ps', '-a', '--format', '{{.Names}} {{.Labels}}'])))
          out.push(`${h}: container ${c.slice(0, 120)}`);
        for (const n of lines(await dockerOn(h, ['network', 'ls', '--filter', 'label=com.docker.stack.namespace=zfaas', '-q'])))
          out.push(`${h}: network ${n}`);
      }
      for (const kind of ['service', 'secret', 'config'])
        for (const x of lines(await dockerOn('a', [kind, 'ls', '-q']))) out.push(`${kind} ${x}`);
      return out;
    };
    await waitFor('the stack to be gone from every host', async () => ((await left()).length === 0 ? true : undefined), 120_000).catch(
      async (e: unknown) => {
        throw new Error(`${String(e)}\n${(await left()).join('\n')}`);
      },
    );
    since('docker stack rm -> nothing left', t0);
    // The data volumes stay with the server node until removed by hand (README).
    const volumes = lines(await dockerOn('a', ['volume', 'ls', '-q', '--filter', 'label=com.docker.stack.namespace=zfaas'])).sort();
    expect(volumes).toEqual(['zfaas_db-data', 'zfaas_registry-data']);
    await dockerOn('a', ['volume', 'rm', ...volumes]);
    for (const h of ['b', 'c']) expect(lines(await dockerOn(h, ['volume', 'ls', '-q']))).toEqual([]);

    await stopRelay();
    await timed('hosts.sh down', () => hosts(['down', PREFIX], 180_000));
    downDone = true;
    expect((await readdir('/var/run/netns')).filter((n) => n.startsWith(`${PREFIX}-`))).toEqual([]);
    expect(existsSync(STATE)).toBe(false);
    expect((await readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(STATE))).toEqual([]);
    const names = ['a', 'b', 'c'].map((h) => `${PREFIX}-${h}`);
    const cgroups = await sh(
      'sh',
      ['-c', `ls -d ${names.map((n) => `/sys/fs/cgroup/*/${n} /sys/fs/cgroup/${n}`).join(' ')} 2>/dev/null || true`],
      10_000,
    );
    expect(cgroups.trim()).toBe('');
    const procs = await sh('ps', ['-eo', 'args'], 10_000);
    expect(lines(procs).filter((p) => p.includes(`${STATE}/`) || names.some((n) => p.includes(n)))).toEqual([]);
    // This machine's own network: no interface, address or route of the hosts, no iptables rule.
    const own = (await sh('ip', ['-o', 'addr'], 10_000)) + (await sh('ip', ['route'], 10_000));
    expect(own).not.toMatch(/10\.214\.0\.|10\.232\.|zfaas-swarm/);
    const rules = await sh('sh', ['-c', 'iptables-save 2>/dev/null || true'], 10_000);
    expect(rules).not.toMatch(/10\.214\.0\.|10\.232\./);
  }, 300_000);
});
