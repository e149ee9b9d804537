// One container run from start to end through dockerode: create, attach, start, feed stdin, wait (with a
// deadline), collect bounded output, remove. Used for per-call containers (policy `none`) and for a
// function's one-off `dependencies` step. Every container carries the zfaas label so it can be found.
import Docker from 'dockerode';
import { PassThrough } from 'node:stream';

export const LABEL = 'zfaas';

export interface Limits {
  memoryMiB: number;
  cpus: number;
  pids: number;
  network: boolean;
  tmpfsMiB?: number;
}

export interface RunSpec {
  image: string;
  cmd: string[];
  workdir: string;
  env: string[];
  binds: string[];
  labels: Record<string, string>;
  limits: Limits;
  stdin?: string;
  timeoutMs: number;
  readOnlyRoot?: boolean;
  maxStdout?: number;
  maxStderr?: number;
}

export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  oomKilled: boolean;
  stdoutTruncated: boolean;
  durationMs: number;
}

export const USER = '1000:1000';

// The security baseline every function container gets: nothing from the host but its own tree.
export function hostConfig(binds: string[], l: Limits, readOnlyRoot = true): Docker.ContainerCreateOptions['HostConfig'] {
  return {
    Binds: binds,
    NetworkMode: l.network ? 'bridge' : 'none',
    Memory: l.memoryMiB * 1024 * 1024,
    MemorySwap: l.memoryMiB * 1024 * 1024,
    NanoCpus: Math.round(l.cpus * 1e9),
    PidsLimit: l.pids,
    ReadonlyRootfs: readOnlyRoot,
    Tmpfs: { '/tmp': `rw,nosuid,nodev,size=${l.tmpfsMiB ?? 64}m,mode=1777` },
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    Init: true, // reaps zombies and forwards signals: a killed call leaves no process behind
  };
}

// Keeps the first `max` bytes (stdout: the result) or the last `max` bytes (stderr: the error's end).
export class Bounded {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(
    private readonly max: number,
    private readonly keep: 'head' | 'tail',
  ) {}
  push(b: Buffer): void {
    if (this.keep === 'head') {
      if (this.size >= this.max) {
        this.truncated = true;
        return;
      }
      const room = this.max - this.size;
      if (b.length > room) this.truncated = true;
      const part = b.length > room ? b.subarray(0, room) : b;
      this.chunks.push(part);
      this.size += part.length;
      return;
    }
    this.chunks.push(b);
    this.size += b.length;
    while (this.size > this.max && this.chunks.length > 1) {
      this.size -= this.chunks.shift()!.length;
      this.truncated = true;
    }
    if (this.size > this.max) {
      const only = this.chunks[0]!;
      this.chunks = [only.subarray(only.length - this.max)];
      this.size = this.max;
      this.truncated = true;
    }
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export async function runContainer(docker: Docker, spec: RunSpec): Promise<RunResult> {
  const started = Date.now();
  const container = await docker.createContainer({
    Image: spec.image,
    Cmd: spec.cmd,
    WorkingDir: spec.workdir,
    Env: spec.env,
    User: USER,
    Labels: { [LABEL]: 'true', ...spec.labels },
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: !spec.limits.network,
    HostConfig: hostConfig(spec.binds, spec.limits, spec.readOnlyRoot ?? true),
  });
  const out = new Bounded(spec.maxStdout ?? 6 * 1024 * 1024, 'head');
  const err = new Bounded(spec.maxStderr ?? 64 * 1024, 'tail');
  let timedOut = false;
  try {
    const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const o = new PassThrough();
    const e = new PassThrough();
    o.on('data', (b: Buffer) => out.push(b));
    e.on('data', (b: Buffer) => err.push(b));
    container.modem.demuxStream(stream, o, e);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    await container.start();
    stream.end(spec.stdin ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
    }, spec.timeoutMs);
    let exit: { StatusCode: number };
    try {
      exit = (await container.wait()) as { StatusCode: number };
    } finally {
      clearTimeout(timer);
    }
    // The attach stream ends just after the process; give it a moment to flush the last bytes.
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
    const info = await container.inspect().catch(() => null);
    return {
      exitCode: exit.StatusCode,
      stdout: out.text(),
      stderr: err.text(),
      timedOut,
      oomKilled: Boolean(info?.State?.OOMKilled),
      stdoutTruncated: out.truncated,
      durationMs: Date.now() - started,
    };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

// Removes every container this label selector matches (a node's leftovers after a crash or on shutdown).
export async function removeLabelled(docker: Docker, filters: Record<string, string>): Promise<number> {
  const label = [LABEL + '=true', ...Object.entries(filters).map(([k, v]) => `${k}=${v}`)];
  const list = await docker.listContainers({ all: true, filters: { label } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  return list.length;
}
