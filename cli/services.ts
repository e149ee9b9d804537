// Starting the services: each alone (`zfaas db|api|instance`) or all in one process (`zfaas up`).
import '../common/lean.js'; // first: keeps what zfaas never uses of dockerode out of memory
import Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { sealingKey } from '../db/tenancy.js';
import { fileURLToPath } from 'node:url';
import { ApiServer } from '../api/server.js';
import { idempotencyTtl } from '../api/idempotency.js';
import { AllowList } from '../api/callbacks/allow-list.js';
import { firstBackoffMs } from '../api/callbacks/deliverer.js';
import { createLogger, errText, type Logger } from '../common/log.js';
import { RuntimeSchema, type Policy, type Runtime } from '../common/model.js';
import { DbClient } from '../db/client.js';
import { DbServer } from '../db/server.js';
import { curvePublicKey, parseKeyList, type CurveClient, type CurveServer } from '../common/curve.js';
import { pushImages } from '../instance/images.js';
import { Instance } from '../instance/instance.js';
import { parseFunctionNetworkAllow } from '../instance/network.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BUILTIN = ['python', 'node'] as const;

export { UsageError } from '../common/errors.js';
import { UsageError } from '../common/errors.js';

export async function builtinRuntimes(): Promise<Runtime[]> {
  return Promise.all(
    BUILTIN.map(async (n) => RuntimeSchema.parse(JSON.parse(await readFile(join(REPO_ROOT, 'runtimes', n, 'runtime.json'), 'utf8')))),
  );
}

export async function dockerOrExit(): Promise<Docker> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (e) {
    throw new UsageError(
      `no Docker engine answers at ${process.env.DOCKER_HOST ?? '/var/run/docker.sock'} (${errText(e)}): start dockerd (or run scripts/ensure-docker.sh as root) and try again`,
    );
  }
  return docker;
}

// Runtime images are built on first use: a missing built-in image is built by runtimes/build-images.sh.
export async function ensureImages(docker: Docker, runtimes: Runtime[], log: Logger): Promise<void> {
  const missing: string[] = [];
  for (const [i, rt] of runtimes.entries()) {
    const ok = await docker
      .getImage(rt.image)
      .inspect()
      .then(
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
  maxContainers?: number;
  policy: Policy;
  dbBind: string;
  brokerBind: string;
  token?: string;
  curveSecret?: string;
  curveAllowed?: string;
  callbackAllow?: string;
  functionNetworkAllow?: string;
  secretsKeyFile?: string;
}

export interface Keys {
  curveSecret?: string; // this service's CURVE secret key (Z85)
  curveAllowed?: string; // servers: client public keys accepted, comma separated
  curveServerKey?: string; // clients: the API's / DB service's public key
}

// CURVE settings of a server (API broker, DB service); its own public key is always allowed, since the
// API reaches the DB service with the same pair.
function serverCurve(k: Keys): CurveServer | undefined {
  if (!k.curveSecret) {
    if (k.curveAllowed) throw new UsageError('--curve-allowed needs --curve-secret-key');
    return undefined;
  }
  try {
    return { secretKey: k.curveSecret, allowed: [...parseKeyList(k.curveAllowed), curvePublicKey(k.curveSecret)] };
  } catch (e) {
    throw new UsageError(`bad CURVE key: ${errText(e)}`);
  }
}

function clientCurve(k: Keys): CurveClient | undefined {
  if (!k.curveSecret && !k.curveServerKey) return undefined;
  if (!k.curveSecret || !k.curveServerKey) throw new UsageError('CURVE needs both --curve-secret-key and --curve-server-key');
  try {
    curvePublicKey(k.curveSecret);
    parseKeyList(k.curveServerKey);
  } catch (e) {
    throw new UsageError(`bad CURVE key: ${errText(e)}`);
  }
  return { secretKey: k.curveSecret, serverKey: k.curveServerKey };
}

// The API's callback settings, checked before anything starts: the allow-list (--callback-allow) and the
// first backoff step (ZFAAS_CALLBACK_BACKOFF_MS, for tests).
function callbackOptions(callbackAllow: string | undefined): { callbackAllow?: string; callbackBackoffMs?: number } {
  AllowList.parse(callbackAllow);
  return { callbackAllow, callbackBackoffMs: firstBackoffMs(process.env.ZFAAS_CALLBACK_BACKOFF_MS) };
}

// ZFAAS_INSECURE_NETWORK=1: the operator accepts unauthenticated links (a private network, compose).
function insecureAllowed(log: Logger): boolean {
  if (process.env.ZFAAS_INSECURE_NETWORK !== '1') return false;
  log.warn('ZFAAS_INSECURE_NETWORK=1: the DB service listens beyond this machine without CURVE keys');
  return true;
}

// The master key of secrets (db/tenancy.ts): ZFAAS_SECRETS_KEY, else the file --secrets-key-file
// (ZFAAS_SECRETS_KEY_FILE). `zfaas up` with neither makes one in the user's config folder, apart from the
// data; a DB service alone runs without one and refuses secrets, saying how to give it one.
export async function secretsKey(file: string | undefined, makeIfMissing: boolean, log: Logger): Promise<Buffer | undefined> {
  const fromEnv = process.env.ZFAAS_SECRETS_KEY;
  try {
    if (fromEnv) return sealingKey(fromEnv);
    const path =
      file ?? (makeIfMissing ? join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'zfaas', 'secrets.key') : undefined);
    if (!path) return undefined;
    const had = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' && makeIfMissing) return undefined;
      throw e;
    });
    if (had !== undefined) return sealingKey(had);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
    log.info({ file: path }, 'made a master key for secrets (keep it apart from the data and back it up)');
    return sealingKey(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`the secrets master key: ${errText(e)}`);
  }
}

const beyondLoopback = (addr: string): boolean => !/^(tcp:\/\/(127\.|localhost|\[::1\])|ipc:|inproc:)/.test(addr);

export async function up(o: UpOptions): Promise<() => Promise<void>> {
  const log = createLogger('zfaas');
  const idempotencyTtlS = idempotencyTtl(process.env.ZFAAS_IDEMPOTENCY_TTL); // checked before anything starts
  const callbacks = callbackOptions(o.callbackAllow);
  const functionNetworkAllow = parseFunctionNetworkAllow(o.functionNetworkAllow);
  const docker = await dockerOrExit();
  const runtimes = await builtinRuntimes();
  await ensureImages(docker, runtimes, log);
  const curve = serverCurve(o);
  if (!curve && beyondLoopback(o.dbBind) && !insecureAllowed(log))
    throw new UsageError(`the DB service would listen on ${o.dbBind}, beyond this machine: set CURVE keys (--curve-secret-key)`);
  const db = new DbServer({
    bind: o.dbBind,
    dataDir: join(o.data, 'db'),
    curve,
    log: log.child({ part: 'db' }),
    secretsKey: await secretsKey(o.secretsKeyFile, true, log),
  });
  await db.start();
  // The API and the instance in this process reach the DB service directly; other processes use its socket.
  const client = new DbClient(db);
  for (const rt of runtimes) await client.request('putRuntime', rt);
  client.close();
  // The instance of this process reaches the broker in memory; other nodes use brokerBind.
  const inproc = `inproc://zfaas-broker-${process.pid}`;
  const api = new ApiServer({
    port: o.port,
    host: o.host,
    token: o.token,
    curve,
    db,
    brokerAlsoBind: [inproc],
    brokerBind: o.brokerBind,
    log: log.child({ part: 'api' }),
    idempotencyTtlS,
    ...callbacks,
  });
  await api.start();
  const own = curve ? { secretKey: curve.secretKey, serverKey: curvePublicKey(curve.secretKey) } : undefined;
  const instance = new Instance({
    broker: inproc,
    db,
    curve: own,
    dataDir: join(o.data, 'instance'),
    miniworkers: o.miniworkers,
    policy: o.policy,
    ...poolEnv(o.maxContainers),
    functionNetworkAllow,
    log: log.child({ part: 'instance' }),
  });
  await instance.start();
  log.info(`zfaas is up: http://${o.host === '0.0.0.0' ? 'localhost' : o.host}:${o.port} (Ctrl-C stops everything)`);
  return async () => {
    await instance.stop();
    await api.stop();
    await db.stop();
  };
}

export async function startDb(o: { bind: string; data: string; secretsKeyFile?: string } & Keys): Promise<() => Promise<void>> {
  const curve = serverCurve(o);
  // The DB service holds everything: beyond this machine it only listens with CURVE keys.
  if (!curve && beyondLoopback(o.bind) && !insecureAllowed(createLogger('db')))
    throw new UsageError(
      `the DB service would listen on ${o.bind}, beyond this machine: set CURVE keys (--curve-secret-key, --curve-allowed)`,
    );
  const log = createLogger('db');
  const db = new DbServer({ bind: o.bind, dataDir: o.data, curve, log, secretsKey: await secretsKey(o.secretsKeyFile, false, log) });
  await db.start();
  return () => db.stop();
}

export async function startApi(
  o: { port: number; host: string; db: string; brokerBind: string; builtins: boolean; token?: string; callbackAllow?: string } & Keys,
): Promise<() => Promise<void>> {
  const log = createLogger('api');
  const curve = serverCurve(o);
  if (!curve && beyondLoopback(o.brokerBind))
    log.warn(
      { broker: o.brokerBind },
      'node links are not authenticated: any host that reaches the broker can join (set --curve-secret-key and --curve-allowed)',
    );
  const idempotencyTtlS = idempotencyTtl(process.env.ZFAAS_IDEMPOTENCY_TTL);
  const callbacks = callbackOptions(o.callbackAllow);
  const api = new ApiServer({
    port: o.port,
    host: o.host,
    db: o.db,
    brokerBind: o.brokerBind,
    token: o.token,
    curve,
    log,
    idempotencyTtlS,
    ...callbacks,
  });
  if (o.builtins) {
    for (const rt of await builtinRuntimes()) {
      await api.db.request('putRuntime', rt).catch((e) => log.warn({ err: errText(e) }, 'could not register built-in runtime'));
    }
  }
  await api.start();
  return () => api.stop();
}

export async function startInstance(
  o: {
    broker: string;
    db: string;
    data: string;
    miniworkers: number;
    maxContainers?: number;
    policy: Policy;
    nodeId?: string;
    buildImages: boolean;
    registry?: string;
    label?: string[];
    functionNetworkAllow?: string;
  } & Keys,
): Promise<() => Promise<void>> {
  const log = createLogger('instance');
  const curve = clientCurve(o);
  const functionNetworkAllow = parseFunctionNetworkAllow(o.functionNetworkAllow);
  const labels = parseLabels(o.label ?? []);
  const docker = await dockerOrExit();
  // With a registry the node pulls what it lacks; without one it builds the built-in images itself.
  if (o.buildImages && !o.registry) await ensureImages(docker, await builtinRuntimes(), log);
  const instance = new Instance({
    broker: o.broker,
    db: o.db,
    dataDir: o.data,
    miniworkers: o.miniworkers,
    policy: o.policy,
    nodeId: o.nodeId,
    labels,
    curve,
    registry: o.registry,
    ...poolEnv(o.maxContainers),
    functionNetworkAllow,
    log,
  });
  await instance.start();
  return () => instance.stop();
}

// k=v pairs (repeatable flag or ZFAAS_LABELS=k=v,k2=v2).
function parseLabels(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items
    .flatMap((i) => i.split(','))
    .map((i) => i.trim())
    .filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad label "${item}": expected KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

// zfaas push-images: the built-in runtime images (and their seed-style aliases) into the registry.
export async function pushBuiltinImages(o: { registry: string }): Promise<void> {
  const log = createLogger('zfaas');
  const docker = await dockerOrExit();
  const runtimes = await builtinRuntimes();
  await ensureImages(docker, runtimes, log);
  const images = runtimes.flatMap((rt) => [rt.image, `${rt.name}runtime:latest`]);
  await pushImages(docker, o.registry, images, log);
}

// Container pool sizes of a node (also changeable at run time with PUT /node/:id); `maxContainers` as
// the flag gave it (commander reads ZFAAS_MAX_CONTAINERS for it too).
function poolEnv(maxContainers?: number): {
  stemCells?: number;
  stemCellsMax?: number;
  idleTtlMs?: number;
  maxContainers?: number;
  depsMaxMiB?: number;
  drainMs?: number;
} {
  const num = (name: string): number | undefined => {
    const v = process.env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`${name} must be a whole number, not "${v}"`);
    return n;
  };
  const ttl = num('ZFAAS_IDLE_TTL');
  const depsMaxMiB = num('ZFAAS_DEPS_MAX_MIB');
  const drain = num('ZFAAS_DRAIN_TIMEOUT'); // seconds a stopping node gives its running calls to finish
  if (depsMaxMiB === 0) throw new UsageError('ZFAAS_DEPS_MAX_MIB must be at least 1');
  return {
    stemCells: num('ZFAAS_STEM_CELLS'),
    stemCellsMax: num('ZFAAS_STEM_CELLS_MAX'),
    idleTtlMs: ttl === undefined ? undefined : ttl * 1000,
    maxContainers: maxContainers ?? num('ZFAAS_MAX_CONTAINERS'),
    depsMaxMiB,
    drainMs: drain === undefined ? undefined : drain * 1000,
  };
}
