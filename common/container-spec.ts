// The one place that says what a function container is: image, command, mounts, limits, security options,
// labels and environment, for every kind of run (a call in a fresh container, a warm container holding a
// function, a stem cell, the dependencies step), and the environment each call sees, warm or cold.
// Secrets are never part of a spec: the container of a function that names secrets, and every stem cell, gets
// an empty tmpfs at SECRETS_DIR that only the function's uid can read, filled later over the loader's line
// or by a `docker exec` (miniworker/secrets.ts).
// Miniworkers create containers only from these; the instance uses the per-call environment.
import type Docker from 'dockerode';
import type { FunctionMeta, Runtime } from './model.js';
import { LINE_DIR, LINE_ENV, LINE_FILE, SECRETS_DIR } from '../protocol/loader.js';

export const LABEL = 'zfaas';
// The Docker network (and Linux bridge) of functions deployed with network=true: made and fenced by the
// node (instance/network.ts); never Docker's default bridge.
export const FUNCTION_NETWORK = 'zfaas-fn';
export const USER = '1000:1000';
export const UID = 1000;

export interface Limits {
  memoryMiB: number;
  cpus: number;
  pids: number;
  network: boolean;
  tmpfsMiB?: number;
}

export type Role = 'call' | 'warm' | 'stem' | 'dependencies';

// Who a container belongs to: found by these labels after a crash, and removed.
export interface Owner {
  node: string;
  miniworker: string;
}

export const limitsOf = (fn: FunctionMeta): Limits => ({
  memoryMiB: fn.settings.memory,
  cpus: fn.settings.cpus,
  pids: fn.settings.pids,
  network: fn.settings.network,
});

// A stem cell's limits until it takes a function (then it gets the function's own, see `limitUpdate`).
export const STEM_LIMITS: Limits = { memoryMiB: 256, cpus: 1, pids: 128, network: false };

// The folder of a function's secrets: in memory (never on the node's disk), owned by the function's uid and
// closed to everyone else; 0500, so the function cannot write it (its writer opens it up while it writes).
// 4 MiB holds 32 secrets of 64 KiB with room for the temporary copies; its pages count against the memory
// limit only when used.
export const SECRETS_TMPFS = `rw,nosuid,nodev,noexec,size=4m,uid=${UID},gid=${UID},mode=0500`;

export interface Extras {
  isolation?: string; // the runtime's Docker (OCI) runtime, e.g. runsc: HostConfig.Runtime
  secrets?: boolean; // the secrets tmpfs (a function naming secrets, a stem cell; never the dependencies step)
}

// The security baseline every function container gets: nothing from the host but its own tree (and, for a
// loader, the read-only folder holding the node's socket).
export function hostConfig(binds: string[], l: Limits, x: Extras = {}): NonNullable<Docker.ContainerCreateOptions['HostConfig']> {
  const tmpfsMiB = l.tmpfsMiB ?? 64;
  return {
    ...(x.isolation ? { Runtime: x.isolation } : {}),
    Binds: binds,
    NetworkMode: l.network ? FUNCTION_NETWORK : 'none',
    Memory: l.memoryMiB * 1024 * 1024,
    MemorySwap: l.memoryMiB * 1024 * 1024,
    NanoCpus: Math.round(l.cpus * 1e9),
    PidsLimit: l.pids,
    ReadonlyRootfs: true,
    // The only writable places: /tmp and /dev/shm, both memory-backed and bounded.
    Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${tmpfsMiB}m,mode=1777`, ...(x.secrets ? { [SECRETS_DIR]: SECRETS_TMPFS } : {}) },
    ShmSize: tmpfsMiB * 1024 * 1024,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Init: true, // reaps zombies and forwards signals: a killed call leaves no process behind
    // Output reaches zfaas through the attach stream only. Docker's default json-file log would also keep
    // every byte a function prints on the host's disk (a function printing gigabytes fills the disk).
    LogConfig: { Type: 'none', Config: {} },
  };
}

// What `docker update` gives a stem cell taking a function (network cannot change: see decide()).
export const limitUpdate = (l: Limits): Record<string, number> => {
  const bytes = l.memoryMiB * 1024 * 1024;
  return { Memory: bytes, MemorySwap: bytes, NanoCpus: Math.round(l.cpus * 1e9), PidsLimit: l.pids };
};

// What a function sees in its environment for its whole life (a container holding it, or one call).
export function functionEnv(fn: FunctionMeta, rt: Runtime): Record<string, string> {
  return {
    ZFAAS_FUNCTION: fn.functionName,
    ZFAAS_VERSION: String(fn.version),
    ZFAAS_FUNCTION_VERSION: String(fn.version),
    ZFAAS_DIR: rt.path,
    ZFAAS_TIMEOUT: String(fn.settings.timeout),
    ZFAAS_MEMORY: String(fn.settings.memory),
    ...(fn.settings.handler ? { ZFAAS_HANDLER: fn.settings.handler } : {}),
    ...fn.settings.env,
  };
}

export interface CallIdentity {
  callNum: number;
  replica?: number; // redundant calls: which of the two runs
  attempt?: number; // which run of the call (a retry, or a rerun after its node died, is 2 or more)
  deadline: number; // epoch ms by which the call must end
}

// What is particular to one call: a warm loader sets these for the call only, a cold run gets them at start.
export function callEnv(c: CallIdentity): Record<string, string> {
  return {
    ZFAAS_CALL: String(c.callNum),
    ZFAAS_DEADLINE: String(c.deadline),
    ...(c.replica !== undefined ? { ZFAAS_REPLICA: String(c.replica) } : {}),
    ZFAAS_ATTEMPT: String(c.attempt ?? 1),
  };
}

const MAX_ENV_PARAMS = 96 * 1024; // Linux caps one environment string near 128 KiB

// A call's params as the function gets them: `null` stays null; only missing params are {}.
export const paramsOf = (params: unknown): unknown => (params === undefined ? {} : params);

const toList = (env: Record<string, string>): string[] => Object.entries(env).map(([k, v]) => `${k}=${v}`);

export const labels = (role: Role, owner: Owner, extra: Record<string, string>): Record<string, string> => ({
  [LABEL]: 'true',
  'zfaas.role': role,
  'zfaas.node': owner.node,
  'zfaas.miniworker': owner.miniworker,
  ...extra,
});

// The host folder holding the node's socket for one container, and where the loader finds it inside.
export const lineBind = (lineDir: string): string => `${lineDir}:${LINE_DIR}:ro`;
const lineEnv = { [LINE_ENV]: `${LINE_DIR}/${LINE_FILE}` };

export interface CallContainer {
  name: string;
  fn: FunctionMeta;
  runtime: Runtime;
  treeDir: string;
  call: CallIdentity;
  params: unknown;
  gated?: boolean; // the run waits for a line on stdin: its secrets are written into the tmpfs first
}

// A gated run reads one line from stdin (sh's `read` takes it byte by byte, never more), then becomes the
// run command with the rest of stdin (the params). The run command is an argument, not interpolated.
export const GATE = 'IFS= read -r _ || exit 125; exec sh -c "$1"';

// Policy `none`: one call in a fresh container running the runtime's `run` command, params on stdin.
export function callContainer(c: CallContainer, owner: Owner): Docker.ContainerCreateOptions {
  const params = JSON.stringify(paramsOf(c.params));
  const env: Record<string, string> = { HOME: '/tmp', ...functionEnv(c.fn, c.runtime), ...callEnv(c.call) };
  if (params.length <= MAX_ENV_PARAMS) env.ZFAAS_PARAMS = params;
  return {
    name: c.name,
    Image: c.runtime.image,
    Cmd: c.gated ? ['sh', '-c', GATE, 'zfaas-gate', c.runtime.run] : ['sh', '-c', c.runtime.run],
    WorkingDir: c.runtime.path,
    Env: toList(env),
    User: USER,
    Labels: labels('call', owner, { 'zfaas.function': c.fn.functionName, 'zfaas.call': String(c.call.callNum) }),
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: !c.fn.settings.network,
    HostConfig: hostConfig([`${c.treeDir}:${c.runtime.path}:ro`], limitsOf(c.fn), {
      isolation: c.runtime.isolation,
      secrets: c.fn.settings.secrets.length > 0,
    }),
  };
}

export interface HeldContainer {
  name: string;
  runtime: Runtime;
  treeDir: string; // the function's tree, or a stem cell's empty folder its tree is put into later
  lineDir?: string; // with a loader: the folder of the node's socket
  fn?: FunctionMeta; // a container holding a function; none for a stem cell
}

// A long-lived container: with a loader, it dials the node's socket and keeps the function loaded; a
// runtime with only a `run` command gets an idle process next to which each call is a `docker exec`.
export function heldContainer(c: HeldContainer, owner: Owner): Docker.ContainerCreateOptions {
  const loader = c.runtime.loader !== undefined && c.lineDir !== undefined;
  const env: Record<string, string> = { HOME: '/tmp', ZFAAS_DIR: c.runtime.path, ...(c.fn ? functionEnv(c.fn, c.runtime) : {}) };
  const binds = [`${c.treeDir}:${c.runtime.path}:ro`];
  if (loader) {
    Object.assign(env, lineEnv);
    binds.push(lineBind(c.lineDir!));
  }
  const extra: Record<string, string> = c.fn ? { 'zfaas.function': c.fn.functionName } : { 'zfaas.runtime': c.runtime.name };
  return {
    name: c.name,
    Image: c.runtime.image,
    Cmd: loader ? ['sh', '-c', `exec ${c.runtime.loader}`] : ['sleep', 'infinity'],
    WorkingDir: c.runtime.path,
    Env: toList(env),
    User: USER,
    Labels: labels(c.fn ? 'warm' : 'stem', owner, extra),
    Tty: false,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: !(c.fn?.settings.network ?? false),
    // Every stem cell: a mount cannot be added once it takes a function that has secrets.
    HostConfig: hostConfig(binds, c.fn ? limitsOf(c.fn) : STEM_LIMITS, {
      isolation: c.runtime.isolation,
      secrets: c.fn ? c.fn.settings.secrets.length > 0 : true,
    }),
  };
}

export interface DependenciesContainer {
  name: string;
  fn: FunctionMeta;
  runtime: Runtime;
  srcDir: string; // the unpacked archive on the host, read-only to the step
  srcMount: string; // where the step finds it
  script: string; // copies the tree in, runs the step, streams the tree out as a tar
  maxMiB: number; // the most the finished tree may hold
  network: boolean;
}

// The `dependencies` step: the function's tree in a size-limited tmpfs at the runtime's path. tmpfs pages
// count against the memory limit, so the limit grows by what the tree may hold.
export function dependenciesContainer(c: DependenciesContainer, owner: Owner): Docker.ContainerCreateOptions {
  const l: Limits = { memoryMiB: Math.max(c.fn.settings.memory, 512), cpus: 1, pids: 256, network: c.network, tmpfsMiB: 256 };
  // It runs code the function brings (setup.py, install scripts): isolated as its calls are; no secrets.
  const base = hostConfig([`${c.srcDir}:${c.srcMount}:ro`], l, { isolation: c.runtime.isolation });
  const memory = (l.memoryMiB + c.maxMiB) * 1024 * 1024;
  return {
    name: c.name,
    Image: c.runtime.image,
    Cmd: ['sh', '-c', c.script],
    WorkingDir: '/',
    Env: toList({ HOME: '/tmp', ZFAAS_FUNCTION: c.fn.functionName, ZFAAS_TREE: c.runtime.path }),
    User: USER,
    Labels: labels('dependencies', owner, { 'zfaas.function': c.fn.functionName }),
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: !c.network,
    HostConfig: {
      ...base,
      Memory: memory,
      MemorySwap: memory,
      Tmpfs: { ...base.Tmpfs, [c.runtime.path]: `rw,nosuid,nodev,size=${c.maxMiB}m,uid=${UID},gid=${UID},mode=0755` },
    },
  };
}
