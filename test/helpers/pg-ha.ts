// A replicated PostgreSQL with automatic failover for tests, made with pg_auto_failover (Debian's
// postgresql-N-auto-failover and pg-auto-failover-cli, installed by scripts/ensure-postgres.sh): a monitor,
// a primary and a secondary, each a `pg_autoctl create ... --run` process on loopback with free ports
// and a folder in one temp dir, run as the `postgres` user (PostgreSQL refuses root) through setpriv,
// which execs it, so the pid we hold is pg_autoctl's. The monitor's health checks are tuned so that a
// failover takes seconds instead of the defaults' tens of them (FAST_FAILOVER; RECIPE_FAILOVER is what
// the docs recommend). Each node is made with `pg_autoctl create` (which ends with its PostgreSQL
// stopped), given its settings, then run with `pg_autoctl run`.
//
// Everything started is recorded in DIR/state.json (pids with their command lines) and stopped by stop()
// by its own pid (SIGTERM to pg_autoctl, which stops its PostgreSQL; then SIGKILL to whatever of it is
// left), including after a test failed; a run that died before stop() is cleaned up by the next start()
// from its own record.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { appendFile, chown, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { alive, cmdlineOf, descendantsOf, killIfStill } from './cluster.js';
import { freePort, sleep, tempDir } from './platform.js';

const run = promisify(execFile);
const PREFIX = 'zfaas-pgha-';
const AUTOCTL = '/usr/bin/pg_autoctl'; // Debian's pg-auto-failover-cli

// The monitor's settings (milliseconds, its pgautofailover.* GUCs). FAST_FAILOVER, the tests': health
// checks every second that give up after 1 s and one retry, a node unhealthy after 3 s without reports,
// and a primary's demotion waited for 4 s at most. RECIPE_FAILOVER: what docs/operations.md recommends
// for a failover well within 30 s on real machines (pg_auto_failover's defaults are 5 s, 5 s, 2 retries
// 2 s apart, 20 s and 30 s: up to about a minute).
export const FAST_FAILOVER: Record<string, string> = {
  'pgautofailover.health_check_period': '1000',
  'pgautofailover.health_check_timeout': '1000',
  'pgautofailover.health_check_max_retries': '1',
  'pgautofailover.health_check_retry_delay': '500',
  'pgautofailover.node_considered_unhealthy_timeout': '3000',
  'pgautofailover.primary_demote_timeout': '4000',
};
export const RECIPE_FAILOVER: Record<string, string> = {
  'pgautofailover.health_check_period': '2000',
  'pgautofailover.health_check_timeout': '2000',
  'pgautofailover.health_check_max_retries': '2',
  'pgautofailover.health_check_retry_delay': '1000',
  'pgautofailover.node_considered_unhealthy_timeout': '8000',
  'pgautofailover.primary_demote_timeout': '12000',
};
// Each keeper's own: a primary cut off from the monitor and its standby demotes itself after this many
// seconds, below the monitor's demote wait, so that two primaries never take writes at once.
const partitionS = (monitor: Record<string, string>): string =>
  String(Math.max(1, Math.floor(Number(monitor['pgautofailover.primary_demote_timeout']) / 2000)));
// pg_autoctl sizes shared_buffers from the machine's memory (a quarter of it): three of those do not
// belong on a shared test machine. fsync off: a killed process loses nothing the kernel holds, and the
// test is not about the disk; synchronous_commit stays on, so a commit waits for the standby.
const SMALL_PG: Record<string, string> = { shared_buffers: '64MB', fsync: 'off' };

interface Recorded {
  pid: number;
  cmd: string;
}
interface State {
  owner: number;
  pids: Recorded[];
}

async function binDir(): Promise<string | undefined> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).map(Number);
  const newest = versions.sort((a, b) => b - a)[0];
  return newest === undefined ? undefined : join(root, String(newest), 'bin');
}

async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

// Why this machine cannot run the replicated cluster (undefined: it can).
export async function pgHaUnsupported(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (pg_autoctl runs as the postgres user through setpriv)';
  const bin = await binDir();
  if (!bin) return 'PostgreSQL is not installed (scripts/ensure-postgres.sh)';
  const version = bin.split('/').at(-2)!;
  if (!(await stat(AUTOCTL).catch(() => null))) return `pg_auto_failover is not installed (no ${AUTOCTL}: scripts/ensure-postgres.sh)`;
  if (!(await stat(`/usr/share/postgresql/${version}/extension/pgautofailover.control`).catch(() => null)))
    return `pg_auto_failover's extension for PostgreSQL ${version} is not installed (scripts/ensure-postgres.sh)`;
  if (!(await postgresUser())) return 'no postgres user to run PostgreSQL as';
  return undefined;
}

// Stops what a record holds: SIGTERM to the pg_autoctl processes, then SIGKILL to anything of theirs left.
async function teardown(st: State): Promise<void> {
  const all: Recorded[] = [];
  for (const r of st.pids) {
    if (!(await cmdlineOf(r.pid)).startsWith(r.cmd.slice(0, 60))) continue;
    all.push(r);
    for (const d of await descendantsOf(r.pid)) all.push({ pid: d, cmd: await cmdlineOf(d) });
  }
  for (const r of st.pids) await killIfStill(r.pid, r.cmd.slice(0, 60), 'SIGTERM');
  const end = Date.now() + 20_000;
  while (Date.now() < end && all.some((r) => alive(r.pid))) await sleep(100);
  for (const r of all) if (r.cmd && alive(r.pid)) await killIfStill(r.pid, r.cmd.slice(0, 60), 'SIGKILL');
}

// Runs of a test process that died before stop(): cleaned from their own record.
async function sweep(): Promise<void> {
  for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const st = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8').catch(() => 'null')) as State | null;
    if (st && alive(st.owner)) continue;
    if (!st && Date.now() - ((await stat(dir).catch(() => null))?.mtimeMs ?? 0) < 60_000) continue; // being made
    if (st) await teardown(st);
    await rm(dir, { recursive: true, force: true });
  }
}

export interface HaNode {
  name: string;
  port: number;
  dir: string;
  proc: ChildProcess;
  output(): string;
}

export interface NodeState {
  name: string;
  port: number;
  reported: string;
  goal: string;
}

export class PgHa {
  readonly nodes: HaNode[] = [];
  private readonly state: State = { owner: process.pid, pids: [] };
  private stopped = false;

  private constructor(
    readonly dir: string,
    private readonly bin: string,
    private readonly user: { uid: number; gid: number },
    readonly monitorPort: number,
    readonly dbname: string,
    readonly failover: Record<string, string>,
  ) {}

  // A monitor, then a primary, then a secondary, each waited for: resolves once the secondary is in
  // `secondary` and the primary in `primary` (synchronous replication on).
  static async start(o: { dbname?: string; failover?: Record<string, string> } = {}): Promise<PgHa> {
    const why = await pgHaUnsupported();
    if (why) throw new Error(`cannot start pg_auto_failover: ${why}`);
    await sweep();
    const dir = await tempDir(PREFIX);
    const ha = new PgHa(
      dir,
      (await binDir())!,
      (await postgresUser())!,
      await freePort(),
      o.dbname ?? 'zfaas',
      o.failover ?? FAST_FAILOVER,
    );
    ha.save();
    try {
      await chown(dir, ha.user.uid, ha.user.gid);
      await ha.startMonitor();
      await ha.startNode('a');
      await ha.waitStates({ a: 'single' });
      await ha.startNode('b');
      await ha.waitStates({ a: 'primary', b: 'secondary' });
      // Up to here the nodes made and started their PostgreSQL through pg_autoctl: now ready for a client.
    } catch (e) {
      const logs = ha.nodes.map((n) => `--- ${n.name}\n${n.output().slice(-3000)}`).join('\n');
      await ha.stop();
      throw new Error(`${(e as Error).message}\n${logs}`);
    }
    return ha;
  }

  private save(): void {
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(this.state));
  }

  get monitorUrl(): string {
    return `postgres://autoctl_node@127.0.0.1:${this.monitorPort}/pg_auto_failover?sslmode=disable`;
  }

  // The URL of the data nodes in libpq's multi-host form: what `--store` takes.
  url(): string {
    const hosts = this.nodes.filter((n) => n.name !== 'monitor').map((n) => `127.0.0.1:${n.port}`);
    return `postgres://postgres@${hosts.join(',')}/${this.dbname}?target_session_attrs=read-write`;
  }

  node(name: string): HaNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  private env(name: string): NodeJS.ProcessEnv {
    const home = join(this.dir, name);
    return {
      ...process.env,
      PATH: `${this.bin}:/usr/bin:/bin`, // its pg_ctl and PostgreSQL programs first
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      XDG_DATA_HOME: join(home, 'share'),
    };
  }

  // `pg_autoctl ARGS` as the postgres user; its pid recorded before anything else.
  private spawnAutoctl(name: string, args: string[]): { child: ChildProcess; output: () => string } {
    const child = spawn(
      'setpriv',
      [`--reuid=${this.user.uid}`, `--regid=${this.user.gid}`, '--clear-groups', '--pdeathsig', 'SIGTERM', AUTOCTL, ...args],
      { cwd: join(this.dir, name), env: this.env(name), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (child.pid === undefined) throw new Error(`could not start pg_autoctl for ${name}`);
    this.state.pids.push({ pid: child.pid, cmd: [AUTOCTL, ...args].join(' ') });
    this.save();
    let out = '';
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-50_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    return { child, output: () => out };
  }

  // A pg_autoctl command that ends (create, config set): its output, or an error with it.
  private async once(name: string, args: string[], ms = 120_000): Promise<string> {
    const p = this.spawnAutoctl(name, args);
    const code = await new Promise<number | null>((res) => {
      const t = setTimeout(() => p.child.kill('SIGTERM'), ms);
      p.child.once('exit', (c) => {
        clearTimeout(t);
        res(c);
      });
    });
    if (code !== 0) throw new Error(`pg_autoctl ${args.slice(0, 2).join(' ')} (${name}) failed (${code}):\n${p.output().slice(-3000)}`);
    return p.output();
  }

  // `pg_autoctl run` of a node made by once(create ...): kept running until stop() or kill9().
  private runNode(name: string, port: number): HaNode {
    const home = join(this.dir, name);
    const p = this.spawnAutoctl(name, ['run', '--pgdata', join(home, 'data')]);
    const node: HaNode = { name, port, dir: home, proc: p.child, output: p.output };
    this.nodes.push(node);
    return node;
  }

  private async home(name: string): Promise<string> {
    const home = join(this.dir, name);
    await mkdir(home, { recursive: true });
    await chown(home, this.user.uid, this.user.gid);
    return home;
  }

  // Settings of a node's PostgreSQL, after pg_autoctl's own (its file is included first, so these win).
  private async settings(name: string, extra: Record<string, string>): Promise<void> {
    const lines = Object.entries({ ...SMALL_PG, ...extra }).map(([k, v]) => `${k} = '${v}'`);
    await appendFile(join(this.dir, name, 'data', 'postgresql.conf'), `\n# test/helpers/pg-ha.ts\n${lines.join('\n')}\n`);
  }

  private async startMonitor(): Promise<void> {
    const home = await this.home('monitor');
    await this.once('monitor', [
      'create', 'monitor', '--pgctl', join(this.bin, 'pg_ctl'), '--pgdata', join(home, 'data'), '--pgport', String(this.monitorPort),
      '--listen', '127.0.0.1', '--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl',
    ]); // prettier-ignore
    await this.settings('monitor', this.failover);
    const m = this.runNode('monitor', this.monitorPort);
    await this.until('the monitor', async () => (await this.states(), true) as true, m);
  }

  private async startNode(name: string): Promise<void> {
    const home = await this.home(name);
    const port = await freePort();
    const data = join(home, 'data');
    await this.once(name, [
      'create', 'postgres', '--pgctl', join(this.bin, 'pg_ctl'), '--pgdata', data, '--pgport', String(port), '--listen', '127.0.0.1',
      '--hostname', '127.0.0.1', '--name', name, '--monitor', this.monitorUrl, '--auth', 'trust', '--no-ssl', '--dbname', this.dbname,
    ]); // prettier-ignore
    // A secondary's folder is a copy of the primary's, with these settings already.
    if (!(await readFile(join(data, 'postgresql.conf'), 'utf8')).includes('test/helpers/pg-ha.ts')) await this.settings(name, {});
    await this.once(name, ['config', 'set', '--pgdata', data, 'timeout.network_partition_timeout', partitionS(this.failover)]);
    this.runNode(name, port);
  }

  private async until(what: string, probe: () => Promise<true | undefined>, proc: HaNode, ms = 90_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      if (await probe().catch(() => undefined)) return;
      if (proc.proc.exitCode !== null) throw new Error(`${what}: pg_autoctl exited (${proc.proc.exitCode})\n${proc.output().slice(-3000)}`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${proc.output().slice(-3000)}`);
      await sleep(250);
    }
  }

  // The data nodes as the monitor has them.
  async states(): Promise<NodeState[]> {
    const c = new pg.Client({ connectionString: this.monitorUrl, connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const r = await c.query('SELECT nodename, nodeport, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid');
      return (r.rows as Array<{ nodename: string; nodeport: number; reportedstate: string; goalstate: string }>).map((x) => ({
        name: x.nodename,
        port: x.nodeport,
        reported: x.reportedstate,
        goal: x.goalstate,
      }));
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  // Waits until each named node reports (and is assigned) its state.
  async waitStates(want: Record<string, string>, ms = 120_000): Promise<void> {
    const end = Date.now() + ms;
    let last: NodeState[] = [];
    for (;;) {
      last = await this.states().catch(() => last);
      if (Object.entries(want).every(([n, s]) => last.some((x) => x.name === n && x.reported === s && x.goal === s))) return;
      if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(want)}; the monitor has ${JSON.stringify(last)}`);
      await sleep(250);
    }
  }

  // The node the monitor has as primary (reported and assigned), if any.
  async primary(): Promise<string | undefined> {
    return (await this.states()).find((s) => s.reported === 'primary' && s.goal === 'primary')?.name;
  }

  // kill -9 of a node's pg_autoctl and everything under it (its keeper, its PostgreSQL and that one's
  // backends), as the loss of its host would end them.
  async kill9(name: string): Promise<void> {
    const n = this.node(name);
    const pid = n.proc.pid!;
    const tree = [pid, ...(await descendantsOf(pid))];
    const recs = await Promise.all(tree.map(async (p) => ({ pid: p, cmd: await cmdlineOf(p) })));
    for (const r of recs) if (r.cmd) await killIfStill(r.pid, r.cmd.slice(0, 60), 'SIGKILL');
  }

  // Everything started, by its own pid; then the folder.
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await teardown(this.state);
    await rm(this.dir, { recursive: true, force: true });
  }
}
