// Simulated hosts on one machine for multi-host tests: a network namespace per host, all joined by veth
// links to a bridge in a "switch" namespace (one LAN, 10.213.0.0/24), each host with its own dockerd (own
// data root, exec root, socket and config: no shared images, containers or volumes). Processes are
// started inside a host with nsenter (`ip netns exec` would remount /sys and lose the cgroup mounts that
// dockerd needs). The test process itself stays in the machine's own namespace and reaches a host's port
// through a forward: a loopback port here, a unix socket, a relay inside the host. So test traffic only
// ever crosses loopback and the cluster's own veths.
//
// Everything the harness creates is recorded in DIR/state.json (namespaces, pids with their command
// lines) and destroyed by destroy(): processes by their own pids, containers through the hosts' own
// engines, then the engines, leftover mounts under DIR, DIR and the namespaces. A run that died before
// destroy() is cleaned by the next create() (its owner pid is gone), from its own record only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';

const exec = promisify(execFile);
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
const STATE_PREFIX = 'zfaas-cluster-';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function sh(cmd: string, args: string[], timeoutMs = 20_000): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, {
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      env: { ...process.env, PATH },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const x = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${x.stderr?.trim() || x.message}`);
  }
}

const ip = (...args: string[]): Promise<string> => sh('ip', args);

// Why this machine cannot run the cluster (undefined: it can). Needs root, ip, nsenter and dockerd.
export async function clusterUnsupported(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, a dockerd per host)';
  for (const tool of ['ip', 'nsenter', 'dockerd']) {
    try {
      await sh('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is not installed (scripts/ensure-cluster-tools.sh, scripts/ensure-docker.sh)`;
    }
  }
  return undefined;
}

interface Recorded {
  pid: number;
  cmd: string; // start of /proc/PID/cmdline when started: a reused pid is never killed
}

interface State {
  owner: number;
  namespaces: string[];
  pids: Recorded[];
}

export interface Host {
  name: string;
  ns: string;
  addr: string;
  dir: string;
  docker?: Docker;
  dockerHost?: string; // unix:///.../docker.sock, for DOCKER_HOST
  dockerd?: Proc;
}

export interface Proc {
  name: string;
  host: string;
  pid: number;
  child: ChildProcess;
  output(): string;
  exited(): boolean;
  // SIGTERM, then SIGKILL after graceMs; resolves with the exit code (or null when killed by a signal).
  stop(graceMs?: number): Promise<number | null>;
  // kill -9 of this process alone, as a crash would; its children are recorded for the final cleanup.
  kill9(): Promise<void>;
}

export async function cmdlineOf(pid: number): Promise<string> {
  return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ').trim();
}

// Kills a process only if its command line still holds `expected`: a pid read a moment ago may be another
// process's by now (pids wrap around quickly on a busy machine), and a stray SIGKILL can take down anything,
// the Docker engine included.
export async function killIfStill(pid: number, expected: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<boolean> {
  if (!(await cmdlineOf(pid)).includes(expected)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const c of text.split(/\s+/).filter(Boolean)) out.push(Number(c));
  }
  return out;
}

export async function descendantsOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of await childrenOf(queue.shift()!)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

// Whether a process runs: it exists and has not exited (a zombie waiting for its new parent to reap it, as
// the children of a killed process are, has exited).
export async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return stat !== '' && state !== 'Z' && state !== 'X';
}

export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

// Kills a recorded process only if it still runs the command it was started with.
async function killRecorded(r: Recorded, signal: NodeJS.Signals): Promise<boolean> {
  const now = await cmdlineOf(r.pid);
  if (!now || !now.startsWith(r.cmd.slice(0, 60))) return false;
  try {
    process.kill(r.pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && pids.some(alive)) await sleep(100);
}

// Mount points at or under dir, deepest first.
async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

// Stops recorded processes (TERM, then KILL), unmounts what is left under dir, removes dir and the
// namespaces. Used by destroy() and by the sweep of a dead run's record.
async function teardownRecord(dir: string, st: State, log: (s: string) => void): Promise<void> {
  const live = st.pids.filter((r) => alive(r.pid));
  for (const r of live) await killRecorded(r, 'SIGTERM');
  await waitGone(
    live.map((r) => r.pid),
    15_000,
  );
  for (const r of live) if (alive(r.pid) && (await killRecorded(r, 'SIGKILL'))) log(`killed ${r.pid} (${r.cmd.slice(0, 60)})`);
  await waitGone(
    live.map((r) => r.pid),
    5_000,
  );
  for (const m of await mountsUnder(dir)) await sh('umount', ['-l', m]).catch((e: unknown) => log(`umount ${m}: ${String(e)}`));
  await rm(dir, { recursive: true, force: true }).catch((e: unknown) => log(`rm ${dir}: ${String(e)}`));
  for (const ns of [...st.namespaces].reverse())
    if (existsSync(`/var/run/netns/${ns}`)) await ip('netns', 'del', ns).catch((e: unknown) => log(String(e)));
}

// Records of earlier runs whose owner process is gone: cleaned from their own record.
async function sweepDeadRuns(log: (s: string) => void): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(STATE_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const st = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8').catch(() => 'null')) as State | null;
    if (!st || alive(st.owner)) continue;
    log(`cleaning up after a dead run: ${dir}`);
    // Engines first: their containers (ours) go with them.
    await teardownRecord(dir, st, log);
  }
}

export interface ClusterOptions {
  hosts: string[]; // short names: 'a', 'b', ...; host i gets SUBNET.(i+1)
  subnet?: string; // the first three octets; default 10.213.0
  log?: (s: string) => void;
}

export class Cluster {
  readonly hosts = new Map<string, Host>();
  private readonly procs: Proc[] = [];
  private readonly servers: Server[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly state: State;
  private destroyed = false;

  private constructor(
    readonly id: string,
    readonly dir: string,
    private readonly log: (s: string) => void,
  ) {
    this.state = { owner: process.pid, namespaces: [], pids: [] };
  }

  static async create(o: ClusterOptions): Promise<Cluster> {
    const log = o.log ?? ((s: string) => console.log(`cluster: ${s}`));
    await sweepDeadRuns(log);
    const id = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 5)}`;
    const dir = join(tmpdir(), `${STATE_PREFIX}${id}`);
    await mkdir(dir, { recursive: true });
    const c = new Cluster(id, dir, log);
    c.save();
    try {
      await c.build(o.hosts, o.subnet ?? '10.213.0');
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  host(name: string): Host {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  // Written synchronously: a run killed right after starting a process still has it on record.
  private save(): void {
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(this.state, null, 1));
  }

  private async addNamespace(ns: string): Promise<void> {
    this.state.namespaces.push(ns);
    this.save();
    await ip('netns', 'add', ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }

  // A "switch" namespace with a bridge, and per host a namespace whose eth0 is a veth into the bridge.
  private async build(names: string[], subnet: string): Promise<void> {
    const sw = `zfaas-${this.id}-sw`;
    await this.addNamespace(sw);
    await ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', sw, 'link', 'set', 'br0', 'up');
    for (const [i, name] of names.entries()) {
      const ns = `zfaas-${this.id}-${name}`;
      await this.addNamespace(ns);
      const port = `port-${name}`.slice(0, 15);
      // Created from inside the host's namespace, with its peer put straight into the switch: nothing
      // ever appears in the machine's own namespace.
      await ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', sw);
      await ip('-n', sw, 'link', 'set', port, 'master', 'br0');
      await ip('-n', sw, 'link', 'set', port, 'up');
      const addr = `${subnet}.${i + 1}`;
      await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      const hdir = join(this.dir, name);
      await mkdir(hdir, { recursive: true });
      this.hosts.set(name, { name, ns, addr, dir: hdir });
    }
    this.log(`hosts ${names.map((n) => `${n}=${this.host(n).addr}`).join(' ')} (namespaces zfaas-${this.id}-*)`);
  }

  // Cuts a host off the LAN (its end of the veth goes down) or plugs it back in.
  async linkDown(name: string): Promise<void> {
    await ip('-n', this.host(name).ns, 'link', 'set', 'eth0', 'down');
  }

  async linkUp(name: string): Promise<void> {
    await ip('-n', this.host(name).ns, 'link', 'set', 'eth0', 'up');
  }

  // Starts a process inside a host's network namespace; its pid is recorded before anything else.
  spawn(hostName: string, name: string, cmd: string, args: string[], env: Record<string, string> = {}, logFile?: string): Proc {
    const h = this.host(hostName);
    const out = logFile ? openSync(logFile, 'a') : undefined;
    // nsenter execs the command after setns (no fork without --pid/--fork): the pid is the command's.
    const child = spawn('nsenter', [`--net=/var/run/netns/${h.ns}`, '--', cmd, ...args], {
      env: { ...process.env, PATH, ...env },
      stdio: out === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', out, out],
    });
    if (out !== undefined) closeSync(out);
    if (child.pid === undefined) throw new Error(`could not start ${cmd} in host ${hostName}`);
    const pid = child.pid;
    this.state.pids.push({ pid, cmd: [cmd, ...args].join(' ') });
    this.save();
    let text = '';
    const keep = (b: Buffer): void => {
      text = (text + b.toString()).slice(-300_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let code: number | null | undefined;
    const exited = new Promise<number | null>((res) =>
      child.once('exit', (c) => {
        code = c;
        res(c);
      }),
    );
    child.once('error', (e) => keep(Buffer.from(`spawn error: ${String(e)}\n`)));
    const proc: Proc = {
      name,
      host: hostName,
      pid,
      child,
      output: () => text,
      exited: () => code !== undefined,
      stop: async (graceMs = 20_000) => {
        if (code !== undefined) return code;
        const kids = await descendantsOf(pid);
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        const c = await exited;
        clearTimeout(t);
        await this.reap(kids);
        return c;
      },
      kill9: async () => {
        if (code !== undefined) return; // gone already: its pid may be another process's now
        await this.record(await descendantsOf(pid));
        child.kill('SIGKILL');
        await exited;
      },
    };
    this.procs.push(proc);
    return proc;
  }

  private async record(pids: number[]): Promise<void> {
    for (const p of pids) {
      const cmd = await cmdlineOf(p);
      if (cmd) this.state.pids.push({ pid: p, cmd });
    }
    this.save();
  }

  // Children a stopped process left behind (recorded first, so a reused pid is never hit).
  private async reap(pids: number[]): Promise<void> {
    await this.record(pids);
    const recs = this.state.pids.filter((r) => pids.includes(r.pid));
    await waitGone(pids, 5_000);
    for (const r of recs) if (alive(r.pid)) await killRecorded(r, 'SIGKILL');
  }

  // A dockerd of the host's own: own data root, exec root, pid file, socket and (empty) config file, no
  // bridge, no iptables; registries on the cluster LAN allowed over plain HTTP.
  async startDockerd(name: string, insecureRegistries: string[] = []): Promise<Docker> {
    const h = this.host(name);
    const d = join(h.dir, 'docker');
    await mkdir(d, { recursive: true });
    await writeFile(join(d, 'daemon.json'), '{}\n');
    const sock = join(d, 'docker.sock');
    const args = [
      '--config-file', join(d, 'daemon.json'),
      '--data-root', join(d, 'data'),
      '--exec-root', join(d, 'exec'),
      '--pidfile', join(d, 'docker.pid'),
      '-H', `unix://${sock}`,
      '--bridge', 'none',
      '--iptables=false',
      '--ip-masq=false',
      '--log-level', 'warn',
      ...insecureRegistries.flatMap((r) => ['--insecure-registry', r]),
    ]; // prettier-ignore
    const proc = this.spawn(name, 'dockerd', 'dockerd', args, {}, join(d, 'dockerd.log'));
    const docker = new Docker({ socketPath: sock });
    const end = Date.now() + 60_000;
    for (;;) {
      if (await docker.ping().then(() => true, () => false)) break; // prettier-ignore
      if (proc.exited() || Date.now() > end) {
        const logText = await readFile(join(d, 'dockerd.log'), 'utf8').catch(() => '');
        throw new Error(`dockerd of host ${name} did not start:\n${logText.slice(-3000)}`);
      }
      await sleep(200);
    }
    h.docker = docker;
    h.dockerHost = `unix://${sock}`;
    h.dockerd = proc;
    return docker;
  }

  // A loopback port of this process that reaches host:port inside the cluster (the test's way in).
  async forward(hostName: string, port: number, targetAddr?: string): Promise<number> {
    const h = this.host(hostName);
    const path = join(this.dir, `fwd-${hostName}-${port}.sock`);
    const relay = `const net = require('net'); const [, path, host, port] = process.argv;
try { require('fs').unlinkSync(path); } catch {}
net.createServer((c) => { const u = net.connect(Number(port), host); c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy()); c.on('close', () => u.destroy()); u.on('close', () => c.destroy()); })
  .listen(path, () => console.log('relay ready'));`;
    const p = this.spawn(hostName, `relay-${port}`, process.execPath, ['-e', relay, path, targetAddr ?? h.addr, String(port)]);
    const end = Date.now() + 15_000;
    while (!p.output().includes('relay ready')) {
      if (p.exited() || Date.now() > end) throw new Error(`relay into ${hostName}:${port} did not start: ${p.output()}`);
      await sleep(50);
    }
    const server = createServer((c) => {
      const u = connect(path);
      this.sockets.add(c).add(u);
      c.pipe(u);
      u.pipe(c);
      const done = (): void => {
        c.destroy();
        u.destroy();
        this.sockets.delete(c);
        this.sockets.delete(u);
      };
      c.on('error', done).on('close', done);
      u.on('error', done).on('close', done);
    });
    await new Promise<void>((res, rej) => server.once('error', rej).listen(0, '127.0.0.1', () => res()));
    this.servers.push(server);
    const a = server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  // Everything, in order: forwards, processes (SIGTERM, then SIGKILL; children too), the containers of
  // each host's engine, the engines, mounts left under the cluster folder, the folder, the namespaces.
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const s of this.sockets) s.destroy();
    for (const s of this.servers) s.close();
    const engines = [...this.hosts.values()].filter((h) => h.dockerd);
    const others = this.procs.filter((p) => !engines.some((h) => h.dockerd === p));
    await Promise.all(others.map((p) => p.stop(15_000).catch(() => null)));
    for (const h of engines) {
      const list = await h.docker!.listContainers({ all: true }).catch(() => []);
      await Promise.all(
        list.map((c) =>
          h
            .docker!.getContainer(c.Id)
            .remove({ force: true, v: true })
            .catch(() => undefined),
        ),
      );
    }
    await Promise.all(engines.map((h) => h.dockerd!.stop(30_000).catch(() => null)));
    await teardownRecord(this.dir, this.state, this.log);
  }
}
