// Issue 5, the multi-host test: three simulated hosts on this machine (a network namespace each, joined by
// veth links to one bridge; test/helpers/cluster.ts), each with a dockerd of its own that starts with no
// image. Host a runs the registry (Debian's docker-registry, registry/config.yml), the DB service and the
// API; every host runs an instance. All ZMQ links use CURVE. The test process reaches the API and the
// registry only through loopback forwards into host a.
//
// It shows: the three nodes registered (labels included); an instance with an unknown CURVE key refused;
// runtime images pushed to the registry (zfaas push-images, from this machine's engine) and pulled by
// each host's engine; calls spread over the three nodes; host b's instance killed (kill -9) and host c cut
// off (its link down) in the middle of a load with no call lost; both nodes rejoining and taking calls
// again; the cut-off node's late results not overwriting the records made by the node that redid them.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curveKeyPair } from 'zeromq';
import { packFiles } from './helpers/archives.js';
import { Cluster, clusterUnsupported, sh, type Proc } from './helpers/cluster.js';
import { CLI, docker as mainDocker, ROOT, sleep, stopwatch, waitFor } from './helpers/platform.js';

const isRoot = process.getuid?.() === 0;
// As root the tools are installed when missing (as scripts/test-all.sh does), so CI always runs this.
if (isRoot) execFileSync('bash', [join(ROOT, 'scripts/ensure-cluster-tools.sh')], { stdio: 'inherit', timeout: 300_000 });
const unsupported = await clusterUnsupported();
if (unsupported) console.warn(`cluster.e2e: skipped: ${unsupported}`);

const TOKEN = 'cluster-test-token-5f1d2c';
const HOSTS = ['a', 'b', 'c'] as const;
type HostName = (typeof HOSTS)[number];
const FN_IMAGE = 'zfaas/node:latest';

interface CallRec {
  callNum: number;
  status: string;
  result: string;
  node?: string;
  attempts: number;
  error?: string;
}

let cluster: Cluster;
let api = '';
let registryFwd = 0;
let apiProc: Proc;
const instances = new Map<HostName, Proc>();
const server = curveKeyPair();
const nodeKeys = Object.fromEntries(HOSTS.map((h) => [h, curveKeyPair()])) as Record<HostName, { publicKey: string; secretKey: string }>;
const { timings, timed, since } = stopwatch();
let finishedUnderFailure: CallRec[] = [];

const registryAddr = (): string => `${cluster.host('a').addr}:5000`;

async function req<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const r = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as T };
}

const nodes = async (): Promise<{ id: string; state: string; labels: Record<string, string> }[]> =>
  (await req<{ id: string; state: string; labels: Record<string, string> }[]>('GET', '/nodes')).body;
const aliveIds = async (): Promise<string[]> =>
  (await nodes())
    .filter((n) => n.state === 'alive')
    .map((n) => n.id)
    .sort();

function startInstance(h: HostName, keys = nodeKeys[h], nodeId = `host-${h}`): Proc {
  const host = cluster.host(h);
  const a = cluster.host('a').addr;
  // Its temp files (the miniworkers' ipc socket) stay in the cluster's folder, removed with it.
  const tmp = join(host.dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return cluster.spawn(
    h,
    nodeId,
    process.execPath,
    [
      CLI,
      'instance',
      '--broker',
      `tcp://${a}:5561`,
      '--db',
      `tcp://${a}:5560`,
      '--data',
      join(host.dir, nodeId),
      '--miniworkers',
      '2',
      '--node-id',
      nodeId,
      '--registry',
      registryAddr(),
      '--label',
      `host=${h}`,
      '--label',
      'cluster=netns',
    ],
    {
      TMPDIR: tmp,
      DOCKER_HOST: host.dockerHost!,
      ZFAAS_CURVE_SECRET: keys.secretKey,
      ZFAAS_CURVE_SERVER_KEY: server.publicKey,
      ZFAAS_LOG_FORMAT: 'json',
      ZFAAS_LOG_LEVEL: 'info',
    },
  );
}

// All at once, so that they outnumber what the nodes have room for however fast the API answers.
async function invokeMany(n: number, ms: number, offset = 0): Promise<number[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      req<{ callNum: number }>('POST', '/invokeFunction', { funcName: 'work', params: { i: offset + i, ms } }),
    ),
  );
  for (const r of answers) expect(r.status).toBe(202);
  return answers.map((r) => r.body.callNum);
}

async function waitAllFinal(nums: number[], timeoutMs: number): Promise<CallRec[]> {
  return waitFor(
    `${nums.length} calls to finish`,
    async () => {
      const recs = await Promise.all(nums.map(async (n) => (await req<CallRec>('GET', `/call/${n}`)).body));
      return recs.every((c) => ['DONE', 'ERROR', 'TIMEOUT'].includes(c.status)) ? recs : undefined;
    },
    timeoutMs,
  );
}

// The runtime image the test's function needs into the registry, with `docker push` (zfaas push-images
// pushes every built-in image the same way, through the Docker API).
async function pushRuntimeImages(registry: string): Promise<void> {
  await Promise.all(
    [FN_IMAGE].map(async (image) => {
      await sh('docker', ['tag', image, `${registry}/${image}`]);
      await sh('docker', ['push', '-q', `${registry}/${image}`], 600_000);
    }),
  );
}

// Removes one tag of ours from this machine's engine. Plain removal only untags while the image has
// other names. When it has none left (its own name moved to a newer build) but running containers use
// it, the forced form is needed and still only untags: an image a running container uses is never
// deleted. Otherwise the tag stays (reported), rather than risk deleting someone's image.
async function untag(tag: string): Promise<void> {
  const img = mainDocker.getImage(tag);
  try {
    await img.remove({ noprune: true });
  } catch (e) {
    const id = (await img.inspect().catch(() => undefined))?.Id;
    const running = await mainDocker.listContainers().catch(() => []);
    if (id && running.some((c) => c.ImageID === id)) await img.remove({ force: true, noprune: true }).catch(() => undefined);
    else console.warn(`could not remove tag ${tag}: ${String(e)}`);
  }
}

// Output of the cluster's processes, for a failing assertion to show.
const logs = (): string =>
  [apiProc, ...instances.values()].map((p) => `--- ${p.name} (host ${p.host})\n${p.output().slice(-3000)}`).join('\n');

describe.skipIf(unsupported !== undefined)('three hosts in network namespaces, each with its own dockerd', () => {
  beforeAll(async () => {
    const t0 = Date.now();
    // The runtime image the function needs, on this machine's engine (a no-op when it is up to date).
    await sh('bash', [join(ROOT, 'runtimes/build-images.sh'), 'node'], 600_000);
    cluster = await timed('namespaces + veths', () => Cluster.create({ hosts: [...HOSTS] }));
    const regAddr = registryAddr();
    await timed('three dockerds', () => Promise.all(HOSTS.map((h) => cluster.startDockerd(h, [regAddr]))));

    // Host a: the registry, from the repository's config, listening on the LAN only.
    const a = cluster.host('a');
    await mkdir(join(a.dir, 'registry'), { recursive: true });
    cluster.spawn('a', 'registry', 'docker-registry', ['serve', join(ROOT, 'registry', 'config.yml')], {
      REGISTRY_HTTP_ADDR: regAddr,
      REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: join(a.dir, 'registry'),
      REGISTRY_LOG_LEVEL: 'warn',
    });
    registryFwd = await cluster.forward('a', 5000);
    await waitFor(
      'the registry',
      async () => ((await fetch(`http://127.0.0.1:${registryFwd}/v2/`)).status === 200 ? true : undefined),
      30_000,
    );
    // The build machine (this machine's engine) pushes the built-in runtime images through loopback,
    // which every engine treats as a plain-HTTP registry.
    await timed('push runtime images', () => pushRuntimeImages(`127.0.0.1:${registryFwd}`));

    // Host a: DB service and API, both CURVE servers with the same key pair, knowing the three nodes' keys.
    const curveEnv = {
      ZFAAS_CURVE_SECRET: server.secretKey,
      ZFAAS_CURVE_ALLOWED: HOSTS.map((h) => nodeKeys[h].publicKey).join(','),
      ZFAAS_LOG_FORMAT: 'json',
    };
    const db = cluster.spawn(
      'a',
      'db',
      process.execPath,
      [CLI, 'db', '--bind', 'tcp://0.0.0.0:5560', '--data', join(a.dir, 'db')],
      curveEnv,
    );
    apiProc = cluster.spawn(
      'a',
      'api',
      process.execPath,
      [CLI, 'api', '--host', '0.0.0.0', '--port', '3000', '--db', 'tcp://127.0.0.1:5560', '--broker-bind', 'tcp://0.0.0.0:5561'],
      {
        ...curveEnv,
        ZFAAS_TOKEN: TOKEN,
      },
    );
    const apiFwd = await cluster.forward('a', 3000);
    api = `http://127.0.0.1:${apiFwd}`;
    await waitFor('the API', async () => ((await fetch(`${api}/health`)).ok ? true : undefined), 30_000, undefined).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${db.output()}\n${apiProc.output()}`);
    });
    for (const h of HOSTS) instances.set(h, startInstance(h));
    since('cluster bring-up (to API ready)', t0);
  }, 900_000);

  afterAll(async () => {
    await cluster?.destroy();
    // The push left registry-prefixed tags on this machine's engine: only those tags go, not the images.
    if (registryFwd) {
      for (const img of await mainDocker.listImages().catch(() => [])) {
        for (const t of img.RepoTags ?? []) if (t.startsWith(`127.0.0.1:${registryFwd}/`)) await untag(t);
      }
    }
    console.log(`cluster.e2e timings: ${JSON.stringify(timings)}`);
  }, 180_000);

  it('registers all three nodes over CURVE, with their labels; no engine has an image yet', async () => {
    await timed('three nodes joined', () =>
      waitFor('three nodes', async () => ((await aliveIds()).length === 3 ? true : undefined), 60_000).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${logs()}`);
      }),
    );
    const list = await nodes();
    expect(list.map((n) => n.id).sort()).toEqual(['host-a', 'host-b', 'host-c']);
    for (const n of list) expect(n.labels).toMatchObject({ host: n.id.slice(5), cluster: 'netns' });
    // Each host's engine is its own: nothing pulled, nothing shared.
    for (const h of HOSTS) expect((await cluster.host(h).docker!.listImages()).flatMap((i) => i.RepoTags ?? [])).toEqual([]);
  }, 90_000);

  it('refuses an instance whose CURVE key the API does not know', async () => {
    const intruder = startInstance('b', curveKeyPair(), 'intruder');
    try {
      await waitFor('the refusal in the API log', async () => (apiProc.output().includes('unknown CURVE key') ? true : undefined), 20_000);
      await sleep(2000);
      expect((await nodes()).map((n) => n.id)).not.toContain('intruder');
      expect(intruder.exited()).toBe(false); // still knocking: refused, not crashed
    } finally {
      await intruder.stop();
    }
  }, 60_000);

  it('pulls the runtime image through the registry on every host and spreads calls over the three nodes', async () => {
    const catalog = (await (await fetch(`http://127.0.0.1:${registryFwd}/v2/_catalog`)).json()) as { repositories: string[] };
    expect(catalog.repositories).toContain('zfaas/node');

    const archive = await packFiles({
      'index.js':
        "module.exports = async (p) => { await new Promise((r) => setTimeout(r, p.ms)); return { i: p.i, host: require('os').hostname().length > 0 }; };\n",
    });
    const form = new FormData();
    form.append('module', new Blob([new Uint8Array(archive)]), 'work.tar.gz');
    const reg = await fetch(`${api}/registerFunction/node/work`, {
      method: 'POST',
      body: form,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(reg.status).toBe(201);

    const nums = await invokeMany(18, 300);
    const recs = await timed('18 calls incl. image pulls', () => waitAllFinal(nums, 240_000));
    for (const [i, c] of recs.entries()) {
      expect(c.status, c.error).toBe('DONE');
      expect((JSON.parse(c.result) as { i: number }).i).toBe(i);
    }
    const used = new Set(recs.map((c) => c.node));
    expect([...used].sort()).toEqual(['host-a', 'host-b', 'host-c']);

    // Each engine got the image from the registry on host a, under the runtime's own name.
    for (const h of HOSTS) {
      const img = await cluster.host(h).docker!.getImage(FN_IMAGE).inspect();
      expect(img.RepoDigests.some((d) => d.startsWith(`${registryAddr()}/zfaas/node@sha256:`))).toBe(true);
      expect(instances.get(h)!.output()).toContain('image pulled from the registry');
    }
  }, 300_000);

  it('loses no call when one host’s instance is killed (kill -9) and another host is cut off mid-load', async () => {
    const nums = await invokeMany(15, 1000, 1000);
    // Both victims must be holding calls when they go.
    await waitFor(
      'calls running on host-b and host-c',
      async () => {
        const running = (await req<CallRec[]>('GET', '/calls?format=list&status=RUNNING&limit=100')).body;
        const on = new Set(running.map((c) => c.node));
        return on.has('host-b') && on.has('host-c') ? true : undefined;
      },
      60_000,
    );
    const t = Date.now();
    await instances.get('b')!.kill9();
    await cluster.linkDown('c');
    await waitFor('host-b and host-c declared dead', async () => ((await aliveIds()).join() === 'host-a' ? true : undefined), 20_000);
    since('failure detected', t);

    const recs = await timed('15 calls through the failures', () => waitAllFinal(nums, 240_000));
    for (const [i, c] of recs.entries()) {
      expect(c.status, `call ${c.callNum}: ${c.error ?? ''}`).toBe('DONE');
      expect((JSON.parse(c.result) as { i: number }).i).toBe(1000 + i);
    }
    // Some calls were redone elsewhere after their node went.
    expect(recs.some((c) => c.attempts > 1)).toBe(true);
    finishedUnderFailure = recs;
  }, 300_000);

  it('lets both nodes rejoin (a restarted instance, a reconnected host) and take calls again', async () => {
    instances.set('b', startInstance('b'));
    await cluster.linkUp('c');
    await timed('rejoin', () =>
      waitFor('three nodes again', async () => ((await aliveIds()).length === 3 ? true : undefined), 60_000).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${logs()}`);
      }),
    );
    // The API lists a node alive as soon as it registers; the node logs the welcome a moment later.
    await waitFor('host-b to log its registration', async () =>
      instances.get('b')!.output().includes('registered with the API') ? true : undefined,
    );

    // Host c still held calls when it was cut off: it finishes them and, its link back, reports them
    // (retrying until the DB service answers). Once it holds none, its late results are in.
    await timed('rejoined nodes idle', () =>
      waitFor(
        'host-b and host-c to hold no call',
        async () => {
          const list = (await req<{ id: string; state: string; running: number }[]>('GET', '/nodes')).body;
          const busy = list.filter((n) => n.id !== 'host-a' && (n.state !== 'alive' || n.running > 0));
          return busy.length === 0 && list.length >= 3 ? true : undefined;
        },
        90_000,
      ),
    );
    // Those late results changed no record: the first final state, from the node that redid the call, stays.
    const now = await Promise.all(finishedUnderFailure.map(async (c) => (await req<CallRec>('GET', `/call/${c.callNum}`)).body));
    expect(now.map((c) => [c.callNum, c.status, c.node, c.result])).toEqual(
      finishedUnderFailure.map((c) => [c.callNum, c.status, c.node, c.result]),
    );

    // Both take calls again: more calls at once than two nodes have room for, in rounds until each node
    // ran some (placement prefers a node with a warm container, which one round may leave to the others).
    const used = new Set<string | undefined>();
    for (let round = 0; round < 4 && used.size < 3; round++) {
      const recs = await waitAllFinal(await invokeMany(18, 500, 2000 + 100 * round), 120_000);
      for (const c of recs) expect(c.status).toBe('DONE');
      for (const c of recs) used.add(c.node);
    }
    expect([...used].sort()).toEqual(['host-a', 'host-b', 'host-c']);
  }, 240_000);
});
