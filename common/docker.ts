// One container run from start to end through dockerode: create, attach, start, feed stdin, wait (with a
// deadline), collect bounded output, remove. Used for per-call containers (policy `none`) and for a
// function's one-off `dependencies` step. Every container carries the zfaas label so it can be found.
import Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import { LABEL } from './container-spec.js';

export interface RunOptions {
  stdin?: string;
  timeoutMs: number;
  maxStdout?: number;
  maxStderr?: number;
  /** Output (stdout and stderr together) past which the container is killed: see MAX_OUTPUT. */
  maxOutput?: number;
  /** Runs once the container has started, before stdin is fed (a gated run's secrets); throwing fails the run. */
  beforeInput?(container: Docker.Container): Promise<void>;
}

// What zfaas keeps of a call's output: the head of stdout (the result) and the end of stderr (the logs).
export const MAX_RESULT = 6 * 1024 * 1024;
export const MAX_LOGS = 64 * 1024;
// Output a call may write at all. Every byte costs the host's Docker daemon CPU on its way out of the
// container (outside the function's own CPU limit), so a function writing gigabytes is stopped here.
// The loaders cut a result at MAX_RESULT themselves, so only output beyond any use reaches this.
export const MAX_OUTPUT = 16 * 1024 * 1024;

export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  oomKilled: boolean;
  stdoutTruncated: boolean;
  /** The start of stderr was dropped (only its end is kept). */
  stderrTruncated?: boolean;
  /** The function wrote more than maxOutput and was killed. */
  outputExceeded?: number;
  durationMs: number;
}

// Keeps the first `max` bytes (stdout: the result) or the last `max` bytes (stderr: the error's end).
export class Bounded {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  seen = 0; // every byte pushed, kept or not
  constructor(
    private readonly max: number,
    private readonly keep: 'head' | 'tail',
  ) {}
  push(b: Buffer): void {
    this.seen += b.length;
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

export interface Demuxer {
  demuxStream(stream: NodeJS.ReadableStream, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): void;
}

/** A run's output as zfaas keeps it: the head of stdout, the end of stderr, and a cap on all of it together. */
export class Output {
  readonly out: Bounded;
  readonly err: Bounded;
  exceeded?: number; // set (to the cap) once the output passed it; `onExceeded` stops the function
  constructor(
    private readonly onExceeded: () => void,
    private readonly max = MAX_OUTPUT,
    maxStdout = MAX_RESULT,
    maxStderr = MAX_LOGS,
  ) {
    this.out = new Bounded(maxStdout, 'head');
    this.err = new Bounded(maxStderr, 'tail');
  }

  /** Splits Docker's multiplexed attach or exec stream into the two. */
  read(modem: Demuxer, stream: NodeJS.ReadableStream): void {
    const o = new PassThrough();
    const e = new PassThrough();
    o.on('data', (b: Buffer) => this.add(this.out, b));
    e.on('data', (b: Buffer) => this.add(this.err, b));
    modem.demuxStream(stream, o, e);
  }

  private add(to: Bounded, b: Buffer): void {
    to.push(b);
    if (this.exceeded === undefined && this.out.seen + this.err.seen > this.max) {
      this.exceeded = this.max;
      this.onExceeded();
    }
  }
}

// Creates the container described by `create` (see container-spec.ts), runs it to its end and removes it.
export async function runContainer(docker: Docker, create: Docker.ContainerCreateOptions, spec: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const container = await docker.createContainer(create);
  const output = new Output(
    // A container that is already gone needs no kill.
    () => void container.kill({ signal: 'SIGKILL' }).catch(() => undefined),
    spec.maxOutput,
    spec.maxStdout,
    spec.maxStderr,
  );
  const { out, err } = output;
  try {
    const stream = await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    output.read(container.modem as Demuxer, stream);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    await container.start();
    if (spec.beforeInput) await spec.beforeInput(container);
    stream.end(spec.stdin ?? '');
    const exit = await waitOrKill(container, spec.timeoutMs);
    // The attach stream ends just after the process; give it a moment to flush the last bytes.
    await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
    const info = await inspectExited(docker, container, exit.timedOut || output.exceeded !== undefined);
    return {
      exitCode: exit.StatusCode,
      stdout: out.text(),
      stderr: err.text(),
      timedOut: exit.timedOut,
      oomKilled: Boolean(info?.State?.OOMKilled),
      stdoutTruncated: out.truncated,
      stderrTruncated: err.truncated,
      outputExceeded: output.exceeded,
      durationMs: Date.now() - started,
    };
  } finally {
    await removeContainer(container);
  }
}

/** Waits for a started container to exit, killing it (SIGKILL) once `timeoutMs` have passed. */
export async function waitOrKill(container: Docker.Container, timeoutMs: number): Promise<{ StatusCode: number; timedOut: boolean }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // A container that is already gone needs no kill; the timeout is reported either way.
    container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }, timeoutMs);
  try {
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    return { StatusCode, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A stopped container's state. The engine learns of an out-of-memory kill by an event of its own, which may
 * come a moment after the exit (seen here past half a second on a busy machine): a SIGKILL exit (137) not
 * (yet) marked OOMKilled is looked at again, for up to 2 s. The engine may also apply the exit after the
 * kill and lose the mark (seen once in seven runs of test/hostile.e2e on a busy machine): its event log,
 * which keeps every `oom`, then says.
 */
export async function inspectExited(
  docker: Docker,
  container: Docker.Container,
  killedByUs = false,
): Promise<Docker.ContainerInspectInfo | null> {
  // null: the container is gone, which the caller is told.
  let info = await container.inspect().catch(() => null);
  const again = (i: Docker.ContainerInspectInfo): boolean =>
    i.State.Running || (!killedByUs && i.State.ExitCode === 137 && !i.State.OOMKilled);
  for (let i = 0; i < 20 && info && again(info); i++) {
    await new Promise((r) => setTimeout(r, 100));
    // A failed look keeps the last one.
    info = (await container.inspect().catch(() => null)) ?? info;
  }
  if (info && again(info) && !info.State.Running && (await oomEvent(docker, container, info.State.StartedAt)))
    info = { ...info, State: { ...info.State, OOMKilled: true } };
  return info;
}

/**
 * Whether the engine's event log has an out-of-memory kill of this container since `startedAt` (ISO). A log
 * that cannot be read (or takes more than 3 s) says no.
 */
export async function oomEvent(docker: Docker, container: Docker.Container, startedAt: string): Promise<boolean> {
  const since = Math.floor(Date.parse(startedAt) / 1000) - 1;
  if (!Number.isFinite(since)) return false;
  // dockerode types the answer as a bare stream; it is the HTTP response, which can be destroyed.
  let stream: Readable | undefined;
  const read = (async () => {
    stream = (await docker.getEvents({
      since,
      until: Math.ceil(Date.now() / 1000), // the log is read until then: less than a second from now
      filters: { container: [container.id], event: ['oom'] },
    })) as Readable;
    let seen = '';
    for await (const d of stream) seen += d.toString();
    return seen.includes('"oom"');
  })().catch(() => false);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3000)));
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
    stream?.destroy();
  }
}

// Kills and removes a container, and resolves once the engine no longer has it: a removal already under
// way (409) is waited for, so that whoever counts containers never counts one gone that still stands.
// Whether it is gone (false: the engine kept refusing, which the caller may log).
export async function removeContainer(c: Docker.Container): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      await c.remove({ force: true });
      return true;
    } catch (e) {
      const code = (e as { statusCode?: number }).statusCode;
      if (code === 404) return true;
      if (code !== 409 && i >= 2) return false;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

// Removes every container this label selector matches (a node's leftovers after a crash or on shutdown),
// but those whose labels `spare` says stay.
export async function removeLabelled(
  docker: Docker,
  filters: Record<string, string>,
  spare: (labels: Record<string, string>) => boolean = () => false,
): Promise<number> {
  const label = [LABEL + '=true', ...Object.entries(filters).map(([k, v]) => `${k}=${v}`)];
  const list = (await docker.listContainers({ all: true, filters: { label } })).filter((c) => !spare(c.Labels ?? {}));
  await Promise.all(list.map((c) => removeContainer(docker.getContainer(c.Id))));
  return list.length;
}
