// The line to a warm loader, measured both ways with the same built-in node loader in the same sandbox
// (no network, read-only root, uid 1000): JSON lines over the container's attach stream (through dockerd
// and containerd-shim), and over a unix socket in a folder bind-mounted read-only into the container, that
// the loader dials (what the node uses). For each: p50/p99 of N calls one at a time, calls/s of 4
// containers called at once, and the CPU each call costs in this process, dockerd, the shims and the
// loaders. The baseline is the attach stream; the ratio is socket / attach.
//   npm run bench:line            (ZFAAS_BENCH_QUICK=1 for fewer calls)
import Docker from 'dockerode';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { heldContainer } from '../common/container-spec.js';
import type { Runtime } from '../common/model.js';
import { LoaderLine } from '../instance/line.js';
import type { LoaderRequest } from '../protocol/loader.js';
import { cpuOf, parentOf, pidsNamed } from './proc.js';

const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const SEQ = QUICK ? 500 : 3000;
const PAR_MS = QUICK ? 2000 : 5000;
const CONTAINERS = 4;
const docker = new Docker();
const LOADER = 'node /opt/zfaas/loader.js';
const runtime: Runtime = {
  name: 'node',
  image: 'zfaas/node:latest',
  path: '/ws',
  dependencies: '',
  run: `${LOADER} --once`,
  loader: LOADER,
};

interface Client {
  request(r: LoaderRequest): Promise<string>;
  pids(): Promise<number[]>; // the container's processes and its shim
  close(): Promise<void>;
}

async function containerPids(c: Docker.Container): Promise<number[]> {
  const pid = (await c.inspect()).State.Pid;
  const top = (await c.top({ ps_args: '-o pid' }).catch(() => null)) as { Processes?: string[][] } | null;
  const inside = (top?.Processes ?? []).map((p) => Number(p[0])).filter((n) => n > 0);
  return [...new Set([...inside, pid, await parentOf(pid)])];
}

// The loader speaking on its stdin/stdout, reached through `docker attach`.
async function attachClient(tree: string, loader: string): Promise<Client> {
  const opts = heldContainer(
    { name: `zfaas-bench-attach-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, runtime: { ...runtime, loader }, treeDir: tree },
    { node: 'bench', miniworker: 'bench' },
  );
  const c = await docker.createContainer({
    ...opts,
    Cmd: ['sh', '-c', `exec ${loader}`],
    OpenStdin: true,
    AttachStdin: true,
    StdinOnce: false,
  });
  const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
  const out = new PassThrough();
  out.setEncoding('utf8');
  c.modem.demuxStream(stream, out, new PassThrough());
  let buf = '';
  const waiting: ((line: string) => void)[] = [];
  out.on('data', (s: string) => {
    buf += s;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.includes('"hello"')) continue;
      waiting.shift()?.(line);
    }
  });
  await c.start();
  return {
    request: (r) =>
      new Promise<string>((resolve) => {
        waiting.push(resolve);
        stream.write(JSON.stringify(r) + '\n');
      }),
    pids: () => containerPids(c),
    close: () => c.remove({ force: true }).then(() => undefined),
  };
}

// The loader dialling the node's socket in its read-only folder.
async function socketClient(tree: string, loader: string, dir: string): Promise<Client> {
  const line = await LoaderLine.listen(dir);
  const opts = heldContainer(
    {
      name: `zfaas-bench-line-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      runtime: { ...runtime, loader },
      treeDir: tree,
      lineDir: dir,
    },
    { node: 'bench', miniworker: 'bench' },
  );
  const c = await docker.createContainer(opts);
  await c.start();
  await line.ready(30_000);
  return {
    request: async (r) => JSON.stringify(await line.request(r, 30_000)),
    pids: () => containerPids(c),
    close: async () => {
      line.close();
      await c.remove({ force: true });
    },
  };
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function measure(name: string, clients: Client[]): Promise<{ name: string; p50: number; p99: number; rate: number; cpu: number }> {
  let id = 0;
  const call = (c: Client): Promise<string> => c.request({ op: 'call', id: ++id, params: { i: id }, env: { ZFAAS_CALL: String(id) } });
  for (const c of clients) {
    const loaded = await c.request({ op: 'load', dir: '/ws', handler: null, env: {} });
    if (!loaded.includes('"ok":true')) throw new Error(`${name}: load failed: ${loaded}`);
  }
  for (let i = 0; i < 300; i++) await call(clients[0]!);
  const times: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t = process.hrtime.bigint();
    await call(clients[0]!);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const pids = [...(await Promise.all(clients.map((c) => c.pids()))).flat(), ...(await pidsNamed(/(^|\/)dockerd$/))];
  const before = (await cpuOf(pids)) + process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000;
  const until = Date.now() + PAR_MS;
  let n = 0;
  const t0 = Date.now();
  await Promise.all(
    clients.map(async (c) => {
      while (Date.now() < until) {
        await call(c);
        n++;
      }
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  const after = (await cpuOf(pids)) + process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000;
  return { name, p50: pct(times, 50), p99: pct(times, 99), rate: n / secs, cpu: (after - before) / n };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'zfaas-bench-line-'));
  const clients: Client[] = [];
  try {
    const tree = join(work, 'tree');
    await mkdir(tree);
    await writeFile(join(tree, 'index.js'), 'module.exports = (p) => ({ echo: p });\n');
    await chmod(work, 0o755);
    const loader = LOADER;
    const attach: Client[] = [];
    for (let i = 0; i < CONTAINERS; i++) attach.push(await attachClient(tree, loader));
    clients.push(...attach);
    const a = await measure('attach stream (dockerd, shim)', attach);
    const socket: Client[] = [];
    for (let i = 0; i < CONTAINERS; i++) socket.push(await socketClient(tree, loader, join(work, `line${i}`)));
    clients.push(...socket);
    const s = await measure('unix socket, read-only folder', socket);
    console.log(`\nthe line to a warm loader: ${SEQ} calls one at a time, then ${CONTAINERS} containers at once for ${PAR_MS / 1000} s\n`);
    console.log('| line | p50 ms | p99 ms | calls/s | CPU ms per call (all processes) |');
    console.log('|---|---|---|---|---|');
    for (const r of [a, s])
      console.log(`| ${r.name} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.rate.toFixed(0)} | ${r.cpu.toFixed(3)} |`);
    console.log(
      `| socket / attach | ${(s.p50 / a.p50).toFixed(2)} | ${(s.p99 / a.p99).toFixed(2)} | ${(s.rate / a.rate).toFixed(2)} | ${(s.cpu / a.cpu).toFixed(2)} |`,
    );
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
