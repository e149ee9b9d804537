// Starting the services: each alone (`zfaas db|api|instance`) or all in one process (`zfaas up`).
import '../common/lean.js'; // first: keeps what zfaas never uses of dockerode out of memory
import Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../api/server.js';
import { createLogger, errText, type Logger } from '../common/log.js';
import { RuntimeSchema, type Policy, type Runtime } from '../common/model.js';
import { DbClient } from '../db/client.js';
import { DbServer } from '../db/server.js';
import { Instance } from '../instance/instance.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BUILTIN = ['python', 'node'] as const;

export { UsageError } from '../common/errors.js';
import { UsageError } from '../common/errors.js';

export async function builtinRuntimes(): Promise<Runtime[]> {
  return Promise.all(BUILTIN.map(async (n) => RuntimeSchema.parse(JSON.parse(await readFile(join(REPO_ROOT, 'runtimes', n, 'runtime.json'), 'utf8')))));
}

export async function dockerOrExit(): Promise<Docker> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (e) {
    throw new UsageError(`no Docker engine answers at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'} (${errText(e)}): start dockerd (or run scripts/ensure-docker.sh as root) and try again`);
  }
  return docker;
}

// Runtime images are built on first use: a missing built-in image is built by runtimes/build-images.sh.
export async function ensureImages(docker: Docker, runtimes: Runtime[], log: Logger): Promise<void> {
  const missing: string[] = [];
  for (const [i, rt] of runtimes.entries()) {
    const ok = await docker.getImage(rt.image).inspect().then(
      () => true,
      () => false,
    );
    if (!ok) missing.push(BUILTIN[i] ?? rt.name);
  }
  if (missing.length === 0) return;
  log.info({ images: missing }, 'building runtime images (first use; this takes a minute or two)');
  await new Promise<void>((res, rej) => {
    const p = spawn('bash', [join(REPO_ROOT, 'runtimes', 'build-images.sh'), ...missing], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`runtimes/build-images.sh exited with ${code}`))));
    p.on('error', rej);
  });
}

export interface UpOptions {
  port: number;
  host: string;
  data: string;
  miniworkers: number;
  policy: Policy;
  dbBind: string;
  brokerBind: string;
  token?: string;
}

export async function up(o: UpOptions): Promise<() => Promise<void>> {
  const log = createLogger('zfaas');
  const docker = await dockerOrExit();
  const runtimes = await builtinRuntimes();
  await ensureImages(docker, runtimes, log);
  const db = new DbServer({ bind: o.dbBind, dataDir: join(o.data, 'db'), log: log.child({ part: 'db' }) });
  await db.start();
  // The API and the instance in this process reach the DB service directly; other processes use its socket.
  const client = new DbClient(db);
  for (const rt of runtimes) await client.request('putRuntime', rt);
  client.close();
  // The instance of this process reaches the broker in memory; other nodes use brokerBind.
  const inproc = `inproc://zfaas-broker-${process.pid}`;
  const api = new ApiServer({ port: o.port, host: o.host, token: o.token, db, brokerAlsoBind: [inproc], brokerBind: o.brokerBind, log: log.child({ part: 'api' }) });
  await api.start();
  const instance = new Instance({ broker: inproc, db, dataDir: join(o.data, 'instance'), miniworkers: o.miniworkers, policy: o.policy, ...poolEnv(), log: log.child({ part: 'instance' }) });
  await instance.start();
  log.info(`zfaas is up: http://${o.host === '0.0.0.0' ? 'localhost' : o.host}:${o.port} (Ctrl-C stops everything)`);
  return async () => {
    await instance.stop();
    await api.stop();
    await db.stop();
  };
}

export async function startDb(o: { bind: string; data: string }): Promise<() => Promise<void>> {
  const db = new DbServer({ bind: o.bind, dataDir: o.data, log: createLogger('db') });
  await db.start();
  return () => db.stop();
}

export async function startApi(o: { port: number; host: string; db: string; brokerBind: string; builtins: boolean; token?: string }): Promise<() => Promise<void>> {
  const log = createLogger('api');
  const api = new ApiServer({ port: o.port, host: o.host, db: o.db, brokerBind: o.brokerBind, token: o.token, log });
  if (o.builtins) {
    for (const rt of await builtinRuntimes()) {
      await api.db.request('putRuntime', rt).catch((e) => log.warn({ err: errText(e) }, 'could not register built-in runtime'));
    }
  }
  await api.start();
  return () => api.stop();
}

export async function startInstance(o: { broker: string; db: string; data: string; miniworkers: number; policy: Policy; nodeId?: string; buildImages: boolean }): Promise<() => Promise<void>> {
  const log = createLogger('instance');
  const docker = await dockerOrExit();
  if (o.buildImages) await ensureImages(docker, await builtinRuntimes(), log);
  const instance = new Instance({ broker: o.broker, db: o.db, dataDir: o.data, miniworkers: o.miniworkers, policy: o.policy, nodeId: o.nodeId, ...poolEnv(), log });
  await instance.start();
  return () => instance.stop();
}

// Container pool sizes of a node (also changeable at run time with PUT /node/:id).
function poolEnv(): { stemCells?: number; idleTtlMs?: number; maxContainers?: number } {
  const num = (name: string): number | undefined => {
    const v = process.env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number, not "${v}"`);
    return n;
  };
  const ttl = num('ZFAAS_IDLE_TTL');
  return { stemCells: num('ZFAAS_STEM_CELLS'), idleTtlMs: ttl === undefined ? undefined : ttl * 1000, maxContainers: num('ZFAAS_MAX_CONTAINERS') };
}
