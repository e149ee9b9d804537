// A long-lived container this miniworker owns. With a loader (built-in runtimes) the function stays loaded
// in one process and a call is one JSON line in and one out over the attach stream: no process starts,
// no `docker exec`. Runtimes with only a `run` command get an idle container and a `docker exec` per call.
// A call that runs past its timeout, or a container that dies, removes the container.
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { Bounded, hostConfig, LABEL, USER } from '../common/docker.js';
import type { CallOutcome } from '../common/model.js';
import type { ContainerSpec, Job, Load } from '../protocol/worker.js';
import { outcomeOf } from './outcome.js';
import { callEnv } from './run-once.js';

interface LoaderReply {
  op: string;
  id?: number;
  ok?: boolean;
  result?: string;
  error?: string;
  logs?: string;
}

const MAX_LINE = 8 * 1024 * 1024; // a reply longer than this is a broken loader, not a result

export class WarmContainer {
  private stdin?: NodeJS.WritableStream;
  private pending?: { resolve(r: LoaderReply): void; reject(e: Error): void; match(r: LoaderReply): boolean };
  private buf = '';
  private readonly stderr = new Bounded(16 * 1024, 'tail');
  private dead = false;
  private seq = 0;
  private exited?: Promise<void>;

  private constructor(
    private readonly docker: Docker,
    readonly spec: ContainerSpec,
    private readonly container: Docker.Container,
  ) {}

  get alive(): boolean {
    return !this.dead;
  }

  static async create(docker: Docker, spec: ContainerSpec, startTimeoutMs = 30_000): Promise<WarmContainer> {
    const loader = spec.mode === 'loader';
    const cmd = loader ? ['sh', '-c', `exec ${spec.loader}`] : ['sleep', 'infinity'];
    const container = await docker.createContainer({
      name: spec.id,
      Image: spec.image,
      Cmd: cmd,
      WorkingDir: spec.workdir,
      Env: spec.env,
      User: USER,
      Labels: { [LABEL]: 'true', ...spec.labels },
      OpenStdin: loader,
      StdinOnce: false,
      AttachStdin: loader,
      AttachStdout: loader,
      AttachStderr: loader,
      Tty: false,
      NetworkDisabled: !spec.limits.network,
      HostConfig: hostConfig([spec.bind], spec.limits),
    });
    const w = new WarmContainer(docker, spec, container);
    try {
      if (loader) await w.attach();
      await container.start();
      if (loader) await w.request({ op: 'ping' }, (r) => r.op === 'pong', startTimeoutMs);
      return w;
    } catch (e) {
      await w.remove();
      throw e;
    }
  }

  private async attach(): Promise<void> {
    const stream = await this.container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    const out = new PassThrough();
    const err = new PassThrough();
    out.setEncoding('utf8');
    out.on('data', (s: string) => this.onStdout(s));
    err.on('data', (b: Buffer) => this.stderr.push(b));
    this.container.modem.demuxStream(stream, out, err);
    this.stdin = stream;
    this.exited = new Promise<void>((resolve) => {
      const gone = (): void => {
        this.dead = true;
        this.pending?.reject(new Error('the function process exited'));
        this.pending = undefined;
        resolve();
      };
      stream.on('end', gone);
      stream.on('close', gone);
      stream.on('error', gone);
    });
  }

  private onStdout(s: string): void {
    this.buf += s;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let msg: LoaderReply;
      try {
        msg = JSON.parse(line) as LoaderReply;
      } catch {
        continue; // not protocol: the loader keeps function output off this stream, so this is noise
      }
      const p = this.pending;
      if (p && p.match(msg)) {
        this.pending = undefined;
        p.resolve(msg);
      }
    }
    if (this.buf.length > MAX_LINE) {
      this.buf = '';
      this.pending?.reject(new Error('the loader sent a line longer than 8 MiB'));
      this.pending = undefined;
    }
  }

  private request(msg: object, match: (r: LoaderReply) => boolean, timeoutMs: number): Promise<LoaderReply> {
    if (this.dead || !this.stdin) return Promise.reject(new Error('the container is gone'));
    return new Promise<LoaderReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new TimeoutError());
      }, timeoutMs);
      this.pending = {
        match,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.stdin!.write(JSON.stringify(msg) + '\n');
    });
  }

  // A stem cell taking a function gets that function's limits (network cannot change: see decide()).
  async limit(l: ContainerSpec['limits']): Promise<void> {
    const bytes = l.memoryMiB * 1024 * 1024;
    await this.container.update({ Memory: bytes, MemorySwap: bytes, NanoCpus: Math.round(l.cpus * 1e9), PidsLimit: l.pids });
  }

  // Loads the function into the loader (a stem cell getting its function, or a fresh container).
  async load(load: Load, timeoutMs: number): Promise<void> {
    if (this.spec.mode !== 'loader') return;
    const r = await this.request({ op: 'load', dir: load.dir, handler: load.handler, env: load.env }, (m) => m.op === 'loaded', timeoutMs);
    if (!r.ok) throw new LoadError(r.error ?? 'the function could not be loaded');
  }

  async call(job: Job): Promise<CallOutcome> {
    const started = Date.now();
    const s = job.fn.settings;
    const timeoutMs = s.timeout * 1000;
    if (this.spec.mode === 'exec') return this.exec(job, timeoutMs);
    const id = ++this.seq;
    try {
      const r = await this.request({ op: 'call', id, params: job.params ?? {} }, (m) => m.op === 'result' && m.id === id, timeoutMs);
      const durationMs = Date.now() - started;
      if (r.ok) return { status: 'DONE', result: r.result ?? '', logs: r.logs ?? '', durationMs };
      return { status: 'ERROR', result: '', error: r.error ?? 'the function failed', logs: r.logs ?? '', durationMs };
    } catch (e) {
      const durationMs = Date.now() - started;
      if (e instanceof TimeoutError) {
        await this.remove();
        return { status: 'TIMEOUT', result: '', error: `function ran past its timeout of ${s.timeout} s and was killed`, durationMs };
      }
      // The process died during the call: out of memory, process.exit(), a crash in native code.
      const info = await this.container.inspect().catch(() => null);
      await this.remove();
      if (info?.State?.OOMKilled) {
        return { status: 'ERROR', result: '', error: `function was killed: it exceeded its memory limit of ${s.memory} MiB`, durationMs };
      }
      const tail = this.stderr.text().trim().slice(-4000);
      const code = info?.State?.ExitCode;
      return { status: 'ERROR', result: '', error: `the function process exited${code !== undefined ? ` (code ${code})` : ''}${tail ? `: ${tail}` : ''}`, durationMs };
    }
  }

  // A `run`-only runtime: one `docker exec` of the run command per call, params on stdin and in the env.
  private async exec(job: Job, timeoutMs: number): Promise<CallOutcome> {
    const started = Date.now();
    const exec = await this.container.exec({
      Cmd: ['sh', '-c', job.runtime.run],
      Env: callEnv(job),
      WorkingDir: job.runtime.path,
      User: USER,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: true });
    const out = new Bounded(6 * 1024 * 1024, 'head');
    const err = new Bounded(64 * 1024, 'tail');
    const o = new PassThrough();
    const e = new PassThrough();
    o.on('data', (b: Buffer) => out.push(b));
    e.on('data', (b: Buffer) => err.push(b));
    this.container.modem.demuxStream(stream, o, e);
    stream.end(JSON.stringify(job.params ?? {}));
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    });
    const s = job.fn.settings;
    if (timedOut) {
      // An exec'd process cannot be killed on its own through the API: the container goes with it.
      await this.remove();
      return outcomeOf({ exitCode: null, stdout: '', stderr: err.text(), timedOut: true, oomKilled: false, stdoutTruncated: false, durationMs: Date.now() - started }, s.timeout, s.memory);
    }
    const info = await exec.inspect();
    const cinfo = info.ExitCode === 0 ? null : await this.container.inspect().catch(() => null);
    const oomKilled = Boolean(cinfo?.State?.OOMKilled);
    if (oomKilled || (cinfo && !cinfo.State.Running)) await this.remove();
    return outcomeOf(
      { exitCode: info.ExitCode ?? null, stdout: out.text(), stderr: err.text(), timedOut: false, oomKilled, stdoutTruncated: out.truncated, durationMs: Date.now() - started },
      s.timeout,
      s.memory,
    );
  }

  async remove(): Promise<void> {
    this.dead = true;
    this.pending?.reject(new Error('the container was removed'));
    this.pending = undefined;
    await this.container.remove({ force: true }).catch(() => undefined);
    if (this.exited) await Promise.race([this.exited, new Promise((r) => setTimeout(r, 1000))]);
  }
}

export class TimeoutError extends Error {}
export class LoadError extends Error {}
