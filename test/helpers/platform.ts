// Starts real zfaas processes (built CLI in dist/) on free ports with a temp data folder, and stops them by
// their own pid. Every integration test goes through here so that cleanup is the same everywhere.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import Docker from 'dockerode';

// The checkout's root, whether this runs from test/helpers (vitest) or dist/test/helpers (the benchmark).
const HERE = import.meta.dirname;
export const ROOT = resolve(HERE, ...(HERE.split(sep).includes('dist') ? ['..', '..', '..'] : ['..', '..']));
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

export async function tempDir(prefix = 'zfaas-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

// Spawns `zfaas ARGS`; output is kept (last 200 kB) so a failing test can show it.
export const TEST_SECRETS_KEY = 'zfaas-test-master-key-0123456789abcdef';
export const TEST_BACKUP_KEY = 'zfaas-test-backup-key-0123456789abcdef';

// `logFile`: the process's whole output is also written there (appended: a restarted service adds to it).
export function zfaas(args: string[], env: Record<string, string> = {}, logFile?: string): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: {
      ...process.env,
      ZFAAS_LOG_FORMAT: 'json',
      ZFAAS_LOG_LEVEL: process.env.ZFAAS_LOG_LEVEL ?? 'info',
      // Secrets' master key: given, so that no test writes one into the user's config folder.
      ZFAAS_SECRETS_KEY: TEST_SECRETS_KEY,
      // The backup key `zfaas up` keeps: given, for the same reason.
      ZFAAS_BACKUP_KEY: TEST_BACKUP_KEY,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString()).slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // With ZFAAS_TEST_LOGDIR set, each process's whole output is also kept there, also of one a test killed.
  const files = [
    ...(process.env.ZFAAS_TEST_LOGDIR ? [join(process.env.ZFAAS_TEST_LOGDIR, `${args[0]}-${child.pid}.log`)] : []),
    ...(logFile ? [logFile] : []),
  ];
  for (const file of files) {
    const f = createWriteStream(file, { flags: 'a' });
    child.stdout!.pipe(f);
    child.stderr!.pipe(f);
  }
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  return {
    child,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 25_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// `zfaas instance` with its own data folder under `data` and a fixed node id, linked to that broker and DB.
export function instanceProc(o: {
  broker: string;
  db: string;
  data: string;
  id: string;
  miniworkers: number;
  policy: 'none' | 'runtime' | 'function';
  env?: Record<string, string>;
  logFile?: string;
}): Proc {
  const args = ['instance', '--broker', o.broker, '--db', o.db, '--data', join(o.data, o.id), '--node-id', o.id];
  return zfaas([...args, '--miniworkers', String(o.miniworkers), '--policy', o.policy], o.env, o.logFile);
}

// How long the steps of a long test took, for its log: `timed` runs a step, `since` records a span.
export function stopwatch(): {
  timings: Record<string, string>;
  timed<T>(name: string, f: () => Promise<T>): Promise<T>;
  since(name: string, t0: number): void;
} {
  const timings: Record<string, string> = {};
  const since = (name: string, t0: number): void => {
    timings[name] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  };
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      since(name, t0);
    }
  };
  return { timings, timed, since };
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, proc?: Proc): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (proc && proc.child.exitCode !== null) throw new Error(`${what}: process exited (${proc.child.exitCode})\n${proc.output()}`);
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}${proc ? `\n${proc.output().slice(-4000)}` : ''}`);
}

export interface Platform {
  api: string;
  port: number;
  data: string;
  store?: string; // the PostgreSQL store's URL (ZFAAS_TEST_STORE=postgres)
  proc: Proc;
  nodeId: () => Promise<string>;
  stop: () => Promise<void>;
}

export async function waitHealthy(api: string, nodes = 1, proc?: Proc): Promise<void> {
  await waitFor(
    'api health',
    async () => {
      const r = await fetch(`${api}/health`);
      const h = (await r.json()) as { ok: boolean; nodes: number };
      return h.ok && h.nodes >= nodes ? true : undefined;
    },
    60_000,
    proc,
  );
}

// With ZFAAS_TEST_STORE=postgres, each platform's DB service keeps its records in a throwaway PostgreSQL
// cluster of its own (test/helpers/postgres.ts), stopped with the platform: the e2e suites then run on
// that store. Unset: LevelDB in the data folder, as `zfaas up` does by default.
async function testStore(): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  const want = process.env.ZFAAS_TEST_STORE;
  if (!want) return undefined;
  if (want !== 'postgres') throw new Error(`ZFAAS_TEST_STORE is "postgres" or unset, not ${want}`);
  const { PgCluster, FAST_PG } = await import('./postgres.js');
  const cluster = await PgCluster.start({ settings: FAST_PG });
  return { url: await cluster.database('zfaas'), stop: () => cluster.stop() };
}

// `zfaas up` on free ports in a temp data folder, waited until its node has joined.
export async function startUp(extra: string[] = [], env: Record<string, string> = {}): Promise<Platform> {
  const [port, dbPort, brokerPort] = [await freePort(), await freePort(), await freePort()];
  const data = await tempDir();
  const store = await testStore();
  const proc = zfaas(
    [
      'up',
      '--port',
      String(port),
      '--data',
      data,
      '--db-bind',
      `tcp://127.0.0.1:${dbPort}`,
      '--broker-bind',
      `tcp://127.0.0.1:${brokerPort}`,
      ...(store ? ['--store', store.url] : []),
      ...extra,
    ],
    env,
  );
  const api = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(api, 1, proc);
  } catch (e) {
    await proc.stop();
    await store?.stop();
    throw e;
  }
  return {
    api,
    port,
    data,
    ...(store ? { store: store.url } : {}),
    proc,
    nodeId: async () => ((await (await fetch(`${api}/nodes`)).json()) as { id: string }[])[0]!.id,
    stop: async () => {
      await proc.stop();
      await store?.stop();
      await rm(data, { recursive: true, force: true });
    },
  };
}

// `zfaas up` again on the same API port and data folder (after the first was stopped), waited until its
// node has joined: the calls, keys and schedules it finds are the first one's.
export async function restartUp(p: Pick<Platform, 'api' | 'port' | 'data' | 'store'>, extra: string[] = []): Promise<Proc> {
  const [dbPort, brokerPort] = [await freePort(), await freePort()];
  const proc = zfaas([
    'up',
    '--port',
    String(p.port),
    '--data',
    p.data,
    '--db-bind',
    `tcp://127.0.0.1:${dbPort}`,
    '--broker-bind',
    `tcp://127.0.0.1:${brokerPort}`,
    ...(p.store ? ['--store', p.store] : []),
    ...extra,
  ]);
  await waitHealthy(p.api, 1, proc);
  return proc;
}

export const docker = new Docker();

export async function labelledContainers(filters: Record<string, string> = {}): Promise<string[]> {
  const label = ['zfaas=true', ...Object.entries(filters).map(([k, v]) => `${k}=${v}`)];
  const list = await docker.listContainers({ all: true, filters: { label } });
  return list.map((c) => c.Id);
}

// --- REST helpers -------------------------------------------------------------------------------------

export interface Reply<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

export async function http<T = unknown>(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers = { ...headers, 'content-type': 'application/json' };
  }
  return reply<T>(await fetch(url, init));
}

async function reply<T>(r: Response): Promise<Reply<T>> {
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* plain text reply */
  }
  return { status: r.status, body: parsed as T, headers: r.headers };
}

export async function upload<T = unknown>(
  url: string,
  archive: Buffer,
  filename: string,
  fields: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const form = new FormData();
  form.append('module', new Blob([new Uint8Array(archive)]), filename);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return reply<T>(await fetch(url, { method: 'POST', body: form, headers }));
}

export interface CallView {
  callNum: number;
  funcName: string;
  status: string;
  result: string;
  error?: string;
  logs?: string;
  node?: string;
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
}

export async function waitCall(api: string, callNum: number, timeoutMs = 90_000): Promise<CallView> {
  return waitFor(
    `call ${callNum} to finish`,
    async () => {
      const r = await http<CallView>('GET', `${api}/call/${callNum}`);
      return ['DONE', 'ERROR', 'TIMEOUT'].includes(r.body.status) ? r.body : undefined;
    },
    timeoutMs,
  );
}
