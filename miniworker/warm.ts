// A long-lived container this miniworker owns. With a loader (built-in runtimes) the function stays loaded
// in one process and a call is one JSON line in and one out over the attach stream: no process starts,
// no `docker exec`. Runtimes with only a `run` command get an idle container and a `docker exec` per call.
// A call that runs past its timeout, or a container that dies, removes the container.
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { Bounded, hostConfig, inspectExited, LABEL, MAX_OUTPUT, Output, USER, type Demuxer } from '../common/docker.js';
import type { CallOutcome } from '../common/model.js';
import type { ContainerSpec, Job, Load } from '../protocol/worker.js';
import { outcomeOf, TRUNCATION_MARK } from './outcome.js';
import { callEnv, paramsOf } from './run-once.js';

interface LoaderReply {
  op: string;
  id?: number;
  ok?: boolean;
  result?: string;
  error?: string;
  logs?: string;
  truncated?: boolean; // the loader cut the result at its limit
  stray?: number; // processes the call left running in the container
}

// The loaders cut a result at 6 MiB characters and logs at 64 Ki; JSON escaping can make a line up to six
// times longer. A line longer than this is a broken (or tampered-with) loader, not a result.
const MAX_LINE = 48 * 1024 * 1024;

export class ReplyTooLong extends Error {}
export class OutputFlood extends Error {}

export class WarmContainer {
  private stdin?: NodeJS.WritableStream;
  private pending?: { resolve(r: LoaderReply): void; reject(e: Error): void; match(r: LoaderReply): boolean };
  private line: string[] = []; // the parts of the protocol line not yet ended by a newline
  private lineLength = 0;
  private skipping = false; // dropping the rest of an over-long line
  private readonly stderr = new Bounded(16 * 1024, 'tail');
  private dead = false;
  private seq = 0;
  private exited?: Promise<void>;
  private output = 0; // stderr and stray stdout bytes since the last call started (see countOutput)
  private idleProcesses = 0; // exec mode: what runs in the container between calls (docker-init, sleep)

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
      else w.idleProcesses = await w.processes();
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
    err.on('data', (b: Buffer) => {
      this.countOutput(b.length);
      this.stderr.push(b);
    });
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

  // A function writing below the loader's capture (fd 1 or 2 itself, a child process), during a call or
  // from a timer between calls, costs the Docker daemon CPU for every byte: past MAX_OUTPUT the container
  // goes. Counted: stderr and whatever on stdout is not the awaited reply (a reply is bounded by MAX_LINE).
  private countOutput(n: number): void {
    this.output += n;
    if (this.output > MAX_OUTPUT)
      this.stop(new OutputFlood(`function wrote more than ${MAX_OUTPUT / (1024 * 1024)} MiB of output and was stopped`));
  }

  private stop(e: Error): void {
    if (this.dead) return;
    const p = this.pending;
    this.pending = undefined;
    this.dead = true;
    p?.reject(e);
    void this.remove();
  }

  // Only the new chunk is searched for a newline, so a long line costs linear time, and it is never
  // held beyond MAX_LINE: a function cannot make this process buffer its output.
  private onStdout(s: string): void {
    let from = 0;
    for (;;) {
      const nl = s.indexOf('\n', from);
      const part = nl < 0 ? s.slice(from) : s.slice(from, nl);
      if (!this.skipping) {
        this.lineLength += part.length;
        if (this.lineLength > MAX_LINE) {
          this.skipping = true;
          this.line = [];
          this.lineLength = 0;
          this.stop(new ReplyTooLong(`the loader sent a reply longer than ${MAX_LINE / (1024 * 1024)} MiB`));
        } else if (part) this.line.push(part);
      }
      if (nl < 0) return;
      from = nl + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      const line = this.line.join('');
      this.line = [];
      this.lineLength = 0;
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let msg: LoaderReply | undefined;
    try {
      msg = JSON.parse(line) as LoaderReply;
    } catch {
      msg = undefined; // not protocol: the loader keeps function output off this stream, so this is noise
    }
    const p = this.pending;
    if (msg && p && p.match(msg)) {
      this.pending = undefined;
      p.resolve(msg);
    } else this.countOutput(line.length + 1);
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
    this.output = 0;
    try {
      const r = await this.request({ op: 'call', id, params: paramsOf(job) }, (m) => m.op === 'result' && m.id === id, timeoutMs);
      const durationMs = Date.now() - started;
      let logs = typeof r.logs === 'string' ? r.logs : '';
      // A call that leaves processes behind (a fork bomb, a daemon, a miner) spends its container: the
      // next call must not share it with them. Removal goes on in the background.
      if (typeof r.stray === 'number' && r.stray > 0) {
        this.dead = true;
        void this.remove();
        logs += `${logs && !logs.endsWith('\n') ? '\n' : ''}${strayNote(r.stray)}`;
      }
      if (r.ok) {
        const result = typeof r.result === 'string' ? r.result : '';
        return { status: 'DONE', result: r.truncated ? result + TRUNCATION_MARK : result, logs, durationMs };
      }
      return { status: 'ERROR', result: '', error: typeof r.error === 'string' ? r.error : 'the function failed', logs, durationMs };
    } catch (e) {
      const durationMs = Date.now() - started;
      if (e instanceof TimeoutError) {
        await this.remove();
        return { status: 'TIMEOUT', result: '', error: `function ran past its timeout of ${s.timeout} s and was killed`, durationMs };
      }
      if (e instanceof OutputFlood) {
        await this.remove();
        return { status: 'ERROR', result: '', error: e.message, logs: this.stderr.text(), durationMs };
      }
      if (e instanceof ReplyTooLong) {
        await this.remove();
        return { status: 'ERROR', result: '', error: `${e.message}: the container was removed`, durationMs };
      }
      // The process died during the call: out of memory, process.exit(), a crash in native code.
      const info = await inspectExited(this.container);
      await this.remove();
      if (info?.State?.OOMKilled) {
        return { status: 'ERROR', result: '', error: `function was killed: it exceeded its memory limit of ${s.memory} MiB`, durationMs };
      }
      const tail = this.stderr.text().trim().slice(-4000);
      const code = info?.State?.ExitCode;
      return {
        status: 'ERROR',
        result: '',
        error: `the function process exited${code !== undefined ? ` (code ${code})` : ''}${tail ? `: ${tail}` : ''}`,
        durationMs,
      };
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
    let stop: () => void = () => undefined;
    const output = new Output(() => stop());
    const { out, err } = output;
    let timedOut = false;
    output.read(this.container.modem as Demuxer, stream);
    stream.end(JSON.stringify(paramsOf(job)));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, timeoutMs);
      stop = () => {
        clearTimeout(timer);
        resolve();
      };
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    });
    const s = job.fn.settings;
    const outputExceeded = output.exceeded;
    if (outputExceeded !== undefined) {
      await this.remove();
      return outcomeOf(
        {
          exitCode: null,
          stdout: out.text(),
          stderr: err.text(),
          timedOut: false,
          oomKilled: false,
          stdoutTruncated: true,
          stderrTruncated: err.truncated,
          outputExceeded,
          durationMs: Date.now() - started,
        },
        s.timeout,
        s.memory,
      );
    }
    if (timedOut) {
      // An exec'd process cannot be killed on its own through the API: the container goes with it.
      await this.remove();
      return outcomeOf(
        {
          exitCode: null,
          stdout: '',
          stderr: err.text(),
          timedOut: true,
          oomKilled: false,
          stdoutTruncated: false,
          stderrTruncated: err.truncated,
          durationMs: Date.now() - started,
        },
        s.timeout,
        s.memory,
      );
    }
    const info = await exec.inspect();
    const cinfo = info.ExitCode === 0 ? null : await this.container.inspect().catch(() => null);
    const oomKilled = Boolean(cinfo?.State?.OOMKilled);
    if (oomKilled || (cinfo && !cinfo.State.Running)) await this.remove();
    const outcome = outcomeOf(
      {
        exitCode: info.ExitCode ?? null,
        stdout: out.text(),
        stderr: err.text(),
        timedOut: false,
        oomKilled,
        stdoutTruncated: out.truncated,
        stderrTruncated: err.truncated,
        durationMs: Date.now() - started,
      },
      s.timeout,
      s.memory,
    );
    // As with a loader: a call that leaves processes behind (a daemon, a fork bomb) spends its container.
    const now = this.dead || this.idleProcesses < 0 ? -1 : await this.processes();
    const stray = now < 0 ? 0 : now - this.idleProcesses;
    if (stray > 0) {
      this.dead = true;
      void this.remove();
      outcome.logs = `${outcome.logs ?? ''}${outcome.logs && !outcome.logs.endsWith('\n') ? '\n' : ''}${strayNote(stray)}`;
    }
    return outcome;
  }

  // How many processes run in the container now (-1 when it cannot be told, so nothing is concluded).
  private async processes(): Promise<number> {
    const top = (await this.container.top().catch(() => null)) as { Processes?: unknown[] } | null;
    return top?.Processes?.length ?? -1;
  }

  async remove(): Promise<void> {
    this.dead = true;
    this.pending?.reject(new Error('the container was removed'));
    this.pending = undefined;
    await this.container.remove({ force: true }).catch(() => undefined);
    if (this.exited) await Promise.race([this.exited, new Promise((r) => setTimeout(r, 1000))]);
  }
}

const strayNote = (n: number): string => `[zfaas: the call left ${n} process${n === 1 ? '' : 'es'} running; the container was removed]\n`;

export class TimeoutError extends Error {}
export class LoadError extends Error {}
