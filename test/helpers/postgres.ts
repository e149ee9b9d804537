// A throwaway PostgreSQL cluster for tests and benchmarks: initdb into a temp dir, the server listening on
// loopback on a free port (and its socket in the temp dir), stopped by its own pid (SIGQUIT: an immediate
// shutdown, as pg_ctl stop -m immediate) and removed at the end. PostgreSQL refuses to run as root: as root
// it runs as the `postgres` system user (else `nobody`) through setpriv, which execs it, so the pid we hold
// is the server's. A cluster that cannot start is an error (with its log), never a skipped test.
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { chown, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, sleep, tempDir } from './platform.js';

const run = promisify(execFile);

// The newest PostgreSQL installed under /usr/lib/postgresql (Debian's layout).
async function binDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = await readdir(root).catch(() => [] as string[]);
  const newest = versions
    .filter((v) => /^\d+$/.test(v))
    .map(Number)
    .sort((a, b) => b - a)[0];
  if (newest === undefined) throw new Error(`PostgreSQL is not installed (no ${root}/N/bin): run scripts/ensure-postgres.sh`);
  return join(root, String(newest), 'bin');
}

// Who the server runs as: ourselves, or (as root) a system user, by uid and gid.
async function runAs(): Promise<{ uid: number; gid: number; name: string } | null> {
  if (process.getuid?.() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number((await run('id', ['-u', name])).stdout.trim());
      const gid = Number((await run('id', ['-g', name])).stdout.trim());
      return { uid, gid, name };
    } catch {
      // no such user: the next
    }
  }
  throw new Error('running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as');
}

// Settings for a test cluster: durability is not what tests measure, and the machine is shared.
export const FAST_PG = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' };

export interface PgOptions {
  settings?: Record<string, string>; // server settings (-c name=value)
}

// Removes the folders of clusters whose server is gone (its test process ended without stop(), and the
// server went with it), untouched for a minute: one whose server ran (postmaster.opts) and runs no more (no
// postmaster.pid naming a live process); one whose server never ran, after 15 minutes (an initdb in
// progress makes no postmaster.opts, its bootstrap servers leave a postmaster.pid between steps, and on a
// loaded machine another test process's initdb can take minutes).
export async function sweepClusters(): Promise<void> {
  const root = tmpdir();
  const alive = (pid: number): Promise<boolean> =>
    pid > 0
      ? stat(`/proc/${pid}`).then(
          () => true,
          () => false,
        )
      : Promise.resolve(false);
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith('zfaas-pg-')) continue;
    const dir = join(root, name);
    const made = await stat(dir).catch(() => null);
    const data = await stat(join(dir, 'data')).catch(() => null);
    // Never one touched within the last minute: initdb's own short-lived servers write and remove a pid
    // file while another test file may be sweeping, which would read as a server gone.
    if (!made || Date.now() - Math.max(made.mtimeMs, data?.mtimeMs ?? 0) < 60_000) continue;
    const pidFile = await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => null);
    const ran = await stat(join(dir, 'data', 'postmaster.opts')).then(
      () => true,
      () => false,
    );
    const gone = ran ? pidFile === null || !(await alive(Number(pidFile.split('\n')[0]))) : Date.now() - made.mtimeMs > 15 * 60_000;
    if (gone) await rm(dir, { recursive: true, force: true });
  }
}

export class PgCluster {
  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly output: () => string,
  ) {}

  // The URL of database `db` (made by database()).
  url(db = 'postgres'): string {
    return `postgres://zfaas@127.0.0.1:${this.port}/${db}`;
  }

  // A new, empty database on the cluster: its URL.
  async database(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  static async start(o: PgOptions = {}): Promise<PgCluster> {
    const bin = await binDir();
    await sweepClusters();
    const dir = await tempDir('zfaas-pg-');
    const user = await runAs();
    const data = join(dir, 'data');
    const as = (cmd: string, args: string[]): [string, string[]] =>
      user
        ? ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--pdeathsig', 'SIGQUIT', cmd, ...args]]
        : [cmd, args];
    try {
      if (user) await chown(dir, user.uid, user.gid);
      const [icmd, iargs] = as(join(bin, 'initdb'), ['-D', data, '-U', 'zfaas', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
      await run(icmd, iargs, { cwd: dir, env: { ...process.env, LC_ALL: 'C' } });
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`initdb failed: ${(e as Error).message}`);
    }
    const port = await freePort();
    const settings = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: dir,
      max_connections: '200',
      ...o.settings,
    };
    const args = ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    // The server goes with the process that started it (--pdeathsig): a test that ends its platform
    // without stop() (a restart test stops zfaas and removes the data folder itself) leaves none running.
    const [cmd, cargs] = user ? as(join(bin, 'postgres'), args) : ['setpriv', ['--pdeathsig', 'SIGQUIT', join(bin, 'postgres'), ...args]];
    const child = spawn(cmd, cargs, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (b: Buffer): void => {
      out = (out + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const cluster = new PgCluster(dir, port, child, () => out);
    // Ready when it answers a query (within 30 s, else its log says why).
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) break;
      const c = new pg.Client({ connectionString: cluster.url(), connectionTimeoutMillis: 2000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        await c.end();
        return cluster;
      } catch {
        await c.end().catch(() => undefined);
      }
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    await cluster.stop();
    throw new Error(`PostgreSQL did not start:\n${out}`);
  }

  // The server process's id (the postmaster).
  get pid(): number | undefined {
    return this.child.pid;
  }

  log(): string {
    return this.output();
  }

  // Immediate shutdown of the server by its pid, then the temp dir goes.
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      const exited = new Promise<void>((res) => this.child.once('exit', () => res()));
      this.child.kill('SIGQUIT');
      await Promise.race([exited, sleep(10_000)]);
      if (this.child.exitCode === null && this.child.signalCode === null) {
        this.child.kill('SIGKILL');
        await exited;
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
