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
import { AllowList } from '../common/allow-list.js';
import { firstBackoffMs } from '../api/callbacks/deliverer.js';
import { createLogger, errText, type Logger } from '../common/log.js';
import { RuntimeSchema, type Policy, type Runtime } from '../common/model.js';
import { DbClient } from '../db/client.js';
import { DbServer } from '../db/server.js';
import { checkStoreSetting } from '../db/open-store.js';
import { curvePublicKey, parseKeyList, type CurveClient, type CurveServer } from '../common/curve.js';
import { pushImages } from '../instance/images.js';
import { Instance } from '../instance/instance.js';
import { isLoopback } from '../api/auth.js';
import { privateDir } from '../common/private-dir.js';
import { backupKey, BackupKeyProblem } from './backup-key.js';
import { parseFunctionNetworkAllow } from '../instance/network.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BUILTIN = ['python', 'node', 'java', 'go', 'provided'] as const;

export { UsageError } from '../common/errors.js';
import { UsageError } from '../common/errors.js';
import { MemoryLink } from '../common/memory-link.js';
import { assertWireForm, checkingInProcess } from '../common/wire-check.js';
import { ToApiSchema, ToInstanceSchema, type ToApi, type ToInstance } from '../protocol/broker.js';

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

export interface UpOptions extends FunctionsOrigin {
  port: number;
  host: string;
  data: string;
  miniworkers: number;
  maxContainers?: number;
  policy: Policy;
  dbBind?: string; // default: ipc://DATA/run/db.sock
  store?: string; // a postgres:// URL (db/open-store.ts); default: LevelDB in DATA/db
  brokerBind?: string; // default: ipc://DATA/run/broker.sock
  token?: string;
  curveSecret?: string;
  curveAllowed?: string;
  callbackAllow?: string;
  functionNetworkAllow?: string;
  secretsKeyFile?: string;
  backupKeyFile?: string;
}

// Function web paths on an origin of their own (api/handlers/functions-elsewhere.ts).
export interface FunctionsOrigin {
  functionsPort?: number;
  functionsOrigin?: string;
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
function insecureAllowed(log: Logger, what: string): boolean {
  if (process.env.ZFAAS_INSECURE_NETWORK !== '1') return false;
  log.warn(`ZFAAS_INSECURE_NETWORK=1: ${what} listens beyond this machine without CURVE keys`);
  return true;
}

// Who may reach a service's socket (the DB service, the broker), decided before it binds: anyone who can
// connect to it can read and write the whole store or speak for a node. An ipc:// socket admits whoever may
// enter its folder (zfaas up keeps its own in a 0700 folder: its user alone); tcp:// on loopback admits
// every process of this machine, which is said; beyond loopback only CURVE keys on the allowed list get
// in, and without keys the service does not start (unless ZFAAS_INSECURE_NETWORK=1).
// Returns what to warn of, if anything (said once the service starts).
function checkExposure(addr: string, curve: CurveServer | undefined, what: string, flag: string, log: Logger): string | undefined {
  if (curve || addr.startsWith('ipc:') || addr.startsWith('inproc:')) return undefined;
  if (beyondLoopback(addr)) {
    if (insecureAllowed(log, what)) return undefined;
    throw new UsageError(
      `${what} would listen on ${addr}, beyond this machine, where anyone who reaches it could use it: set CURVE keys (--curve-secret-key and --curve-allowed; see zfaas keys), bind it to loopback (${flag}), or set ZFAAS_INSECURE_NETWORK=1 on a network only zfaas uses`,
    );
  }
  return `${what} listens on ${addr}, loopback TCP without CURVE keys: every process of this machine can connect to it`;
}

export const MIN_TOKEN_LENGTH = 16;

// The operator's token, checked before anything starts: a short one is guessed.
function checkToken(token: string | undefined): void {
  if (token === undefined || token.length >= MIN_TOKEN_LENGTH) return;
  throw new UsageError(
    `the operator token (--token or ZFAAS_TOKEN) is ${token.length} characters long: use at least ${MIN_TOKEN_LENGTH} random ones (for example: openssl rand -base64 24)`,
  );
}

// Where function web paths are served when they have an origin of their own, checked before anything
// starts. The origin callers are sent to defaults to this host and that port when the API is on loopback.
function functionsOrigin(o: FunctionsOrigin & { host: string; port: number }): FunctionsOrigin {
  if (o.functionsOrigin && !o.functionsPort)
    throw new UsageError('--functions-origin needs --functions-port: the listener that origin reaches');
  if (!o.functionsPort) return {};
  if (o.functionsPort === o.port) throw new UsageError(`--functions-port must differ from --port (${o.port}): it is another origin`);
  if (!o.functionsOrigin) {
    if (!isLoopback(o.host)) return { functionsPort: o.functionsPort };
    return {
      functionsPort: o.functionsPort,
      functionsOrigin: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.functionsPort}`,
    };
  }
  let url: URL | undefined;
  try {
    url = new URL(o.functionsOrigin);
  } catch {
    url = undefined;
  }
  if (!url || !/^https?:$/.test(url.protocol) || url.origin !== o.functionsOrigin.replace(/\/+$/, ''))
    throw new UsageError(
      `--functions-origin must be an origin such as https://fn.example.com or http://127.0.0.1:3001 (scheme, host and port only), not "${o.functionsOrigin}"`,
    );
  return { functionsPort: o.functionsPort, functionsOrigin: url.origin };
}

// zfaas up's own sockets, by default: ipc:// in a folder of its data folder that only this user may enter.
const MAX_IPC_PATH = 107; // sun_path holds 108 bytes with the final NUL
async function ownSocket(given: string | undefined, dir: string, name: string, flag: string): Promise<string> {
  if (given) return given;
  await privateDir(dir);
  const path = join(dir, name);
  if (Buffer.byteLength(path) > MAX_IPC_PATH)
    throw new UsageError(
      `the socket ${path} is longer than ${MAX_IPC_PATH} bytes, which Unix sockets allow: use a shorter --data, or give ${flag}`,
    );
  return `ipc://${path}`;
}

// zfaas up keeps a key for backups beside the secrets' master key (cli/backup-key.ts), made on first start.
async function keepBackupKey(file: string | undefined, log: Logger): Promise<void> {
  try {
    const k = await backupKey({ file, make: true });
    if (k.made) log.info({ file: k.from }, 'made a key for encrypting backups (keep a copy apart from the backups: restore needs it)');
  } catch (e) {
    if (e instanceof BackupKeyProblem) throw new UsageError(e.message);
    throw e;
  }
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
  checkToken(o.token);
  const functions = functionsOrigin(o);
  const idempotencyTtlS = idempotencyTtl(process.env.ZFAAS_IDEMPOTENCY_TTL); // checked before anything starts
  checkStoreSetting(o.store);
  const callbacks = callbackOptions(o.callbackAllow);
  const curve = serverCurve(o);
  await privateDir(o.data);
  const run = join(o.data, 'run');
  const dbBind = await ownSocket(o.dbBind, run, 'db.sock', '--db-bind');
  const brokerBind = await ownSocket(o.brokerBind, run, 'broker.sock', '--broker-bind');
  const exposed = [
    checkExposure(dbBind, curve, 'the DB service', '--db-bind tcp://127.0.0.1:5560', log),
    checkExposure(brokerBind, curve, 'the node broker', '--broker-bind tcp://127.0.0.1:5561', log),
  ];
  const functionNetworkAllow = parseFunctionNetworkAllow(o.functionNetworkAllow);
  const docker = await dockerOrExit();
  const runtimes = await builtinRuntimes();
  await ensureImages(docker, runtimes, log);
  await keepBackupKey(o.backupKeyFile, log);
  for (const w of exposed) if (w) log.warn(w);
  const db = new DbServer({
    bind: dbBind,
    dataDir: join(o.data, 'db'),
    store: o.store,
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
  const memory = new MemoryLink<ToApi, ToInstance>(
    checkingInProcess()
      ? {
          up: (m) => assertWireForm(ToApiSchema, m, `a node's ${m.type} message`),
          down: (m) => assertWireForm(ToInstanceSchema, m, `the API's ${m.type} message`),
        }
      : undefined,
  );
  const api = new ApiServer({
    port: o.port,
    host: o.host,
    token: o.token,
    curve,
    db,
    brokerMemory: memory,
    brokerBind,
    log: log.child({ part: 'api' }),
    idempotencyTtlS,
    ...callbacks,
    ...functions,
  });
  await api.start();
  const own = curve ? { secretKey: curve.secretKey, serverKey: curvePublicKey(curve.secretKey) } : undefined;
  const instance = new Instance({
    broker: 'in-process',
    brokerMemory: memory,
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

export async function startDb(
  o: { bind: string; data: string; store?: string; secretsKeyFile?: string } & Keys,
): Promise<() => Promise<void>> {
  checkStoreSetting(o.store);
  const curve = serverCurve(o);
  const log = createLogger('db');
  // The DB service holds everything: beyond this machine it only listens with CURVE keys.
  const exposed = checkExposure(o.bind, curve, 'the DB service', '--bind tcp://127.0.0.1:5560', log);
  if (exposed) log.warn(exposed);
  const db = new DbServer({
    bind: o.bind,
    dataDir: o.data,
    store: o.store,
    curve,
    log,
    secretsKey: await secretsKey(o.secretsKeyFile, false, log),
  });
  await db.start();
  return () => db.stop();
}

export async function startApi(
  o: {
    port: number;
    host: string;
    db: string;
    apiId?: string;
    brokerBind: string;
    builtins: boolean;
    token?: string;
    callbackAllow?: string;
  } & Keys &
    FunctionsOrigin,
): Promise<() => Promise<void>> {
  const log = createLogger('api');
  checkToken(o.token);
  const functions = functionsOrigin(o);
  const curve = serverCurve(o);
  // A node link speaks for the calls it holds: beyond this machine only known CURVE keys may open one.
  const exposed = checkExposure(o.brokerBind, curve, 'the node broker', '--broker-bind tcp://127.0.0.1:5561', log);
  if (exposed) log.warn(exposed);
  const idempotencyTtlS = idempotencyTtl(process.env.ZFAAS_IDEMPOTENCY_TTL);
  const callbacks = callbackOptions(o.callbackAllow);
  const api = new ApiServer({
    port: o.port,
    host: o.host,
    db: o.db,
    apiId: o.apiId,
    brokerBind: o.brokerBind,
    token: o.token,
    curve,
    log,
    idempotencyTtlS,
    ...callbacks,
    ...functions,
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
  buildMaxMiB?: number;
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
  const buildMaxMiB = num('ZFAAS_BUILD_MAX_MIB'); // the most a built tree may take packed, in the DB service
  if (buildMaxMiB === 0) throw new UsageError('ZFAAS_BUILD_MAX_MIB must be at least 1');
  return {
    stemCells: num('ZFAAS_STEM_CELLS'),
    stemCellsMax: num('ZFAAS_STEM_CELLS_MAX'),
    idleTtlMs: ttl === undefined ? undefined : ttl * 1000,
    maxContainers: maxContainers ?? num('ZFAAS_MAX_CONTAINERS'),
    depsMaxMiB,
    buildMaxMiB,
    drainMs: drain === undefined ? undefined : drain * 1000,
  };
}
