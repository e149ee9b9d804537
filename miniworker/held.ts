// A long-lived container held by this miniworker: created from a plan, started, watched and removed here.
// With a loader, calls do not pass through this process: the loader dials the node's socket and the
// instance talks to it directly. This process watches the container's own output (what a function writes
// below the loader's capture) and removes a container that floods it. A runtime with only a `run` command
// gets an idle process next to which each call is a `docker exec` run from here.
import type Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { limitUpdate, paramsOf, USER, type Limits } from '../common/container-spec.js';
import { Bounded, inspectExited, MAX_OUTPUT, Output, removeContainer, type Demuxer } from '../common/docker.js';
import { failure } from '../common/faults.js';
import { errText } from '../common/errors.js';
import type { CallOutcome } from '../common/model.js';
import { inSync, type ExitReport, type RunJob, type SecretStamps } from '../protocol/worker.js';
import { outcomeOf } from './outcome.js';
import { callEnvList } from './run-once.js';
import { syncSecrets } from './secrets.js';

const run = promisify(execFile);

export class Held {
  private readonly stderr = new Bounded(16 * 1024, 'tail');
  private output = 0; // bytes the container wrote outside any call's capture
  private flooded = false;
  private gone = false;
  private idleProcesses = -1; // exec mode: what runs in the container between calls (docker-init, sleep)
  private readonly secrets: SecretStamps = new Map(); // exec mode: the stamp of each secret written into it
  private onExit: () => void = () => undefined;

  private constructor(
    readonly id: string,
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    readonly mode: 'loader' | 'exec',
  ) {}

  // `onExit`: its process ended while nobody was removing it (a loader that could not start, a crash).
  static async create(
    docker: Docker,
    options: Docker.ContainerCreateOptions,
    mode: 'loader' | 'exec',
    onExit: () => void = () => undefined,
  ): Promise<Held> {
    const container = await docker.createContainer(options);
    const h = new Held(options.name!, docker, container, mode);
    h.onExit = onExit;
    try {
      await h.watch();
      await container.start();
      if (mode === 'exec') h.idleProcesses = await h.processes();
      return h;
    } catch (e) {
      await h.remove();
      throw e;
    }
  }

  get alive(): boolean {
    return !this.gone;
  }

  // Every byte a container writes costs the Docker daemon CPU on its way out: past MAX_OUTPUT it goes.
  private async watch(): Promise<void> {
    const stream = await this.container.attach({ stream: true, stdout: true, stderr: true });
    const out = new PassThrough();
    const err = new PassThrough();
    const count = (b: Buffer): void => {
      this.output += b.length;
      if (this.output > MAX_OUTPUT && !this.flooded) {
        this.flooded = true;
        void this.remove();
      }
    };
    out.on('data', count);
    err.on('data', (b: Buffer) => {
      count(b);
      this.stderr.push(b);
    });
    this.container.modem.demuxStream(stream, out, err);
    const ended = (): void => {
      if (!this.gone) this.onExit();
      this.gone = true;
    };
    stream.on('end', ended);
    stream.on('close', ended);
    stream.on('error', ended);
  }

  // A stem cell taking a function gets that function's limits (network cannot change: see decide()).
  async limit(l: Limits): Promise<void> {
    await this.container.update(limitUpdate(l));
  }

  // The function's tree, hard-linked into the stem cell's folder (read-only inside the container).
  static async fillSlot(treeDir: string, slotDir: string): Promise<void> {
    await run('cp', ['-a', '-l', `${treeDir}/.`, slotDir]);
  }

  // A `run`-only runtime: one `docker exec` of the run command per call, params on stdin and in the env.
  async exec(job: RunJob): Promise<{ outcome: CallOutcome; alive: boolean }> {
    const started = Date.now();
    const s = job.fn.settings;
    // Its secrets as this call knows them (a value changed since the last call is written before it runs).
    if (!inSync(job.secrets, this.secrets)) {
      try {
        await syncSecrets(this.container, job.secrets ?? [], this.secrets);
      } catch (e) {
        await this.remove(); // what its folder holds is not known any more
        return { outcome: failure('platform', errText(e)), alive: false };
      }
    }
    const exec = await this.container.exec({
      Cmd: ['sh', '-c', job.runtime.run],
      Env: callEnvList(job),
      WorkingDir: job.runtime.path,
      User: USER,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({ hijack: true, stdin: true });
    let stop: () => void = () => undefined;
    const output = new Output(() => stop());
    let timedOut = false;
    output.read(this.container.modem as Demuxer, stream);
    stream.end(JSON.stringify(paramsOf(job.params)));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, s.timeout * 1000);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      stop = done;
      stream.on('end', done);
      stream.on('close', done);
      stream.on('error', done);
    });
    const base = {
      stdout: output.out.text(),
      stderr: output.err.text(),
      stderrTruncated: output.err.truncated,
      durationMs: Date.now() - started,
    };
    if (output.exceeded !== undefined || timedOut) {
      // An exec'd process cannot be killed on its own through the API: the container goes with it.
      await this.remove();
      const r = { ...base, exitCode: null, timedOut, oomKilled: false, stdoutTruncated: true, outputExceeded: output.exceeded };
      return { outcome: outcomeOf(r, s.timeout, s.memory), alive: false };
    }
    const info = await exec.inspect();
    // null: it cannot be told, and nothing is concluded from it.
    const cinfo = info.ExitCode === 0 ? null : await this.container.inspect().catch(() => null);
    const oomKilled = Boolean(cinfo?.State?.OOMKilled);
    if (oomKilled || (cinfo && !cinfo.State.Running)) await this.remove();
    const outcome = outcomeOf(
      { ...base, exitCode: info.ExitCode ?? null, timedOut: false, oomKilled, stdoutTruncated: output.out.truncated },
      s.timeout,
      s.memory,
    );
    // A call that leaves processes behind (a daemon, a fork bomb) spends its container.
    const now = this.gone || this.idleProcesses < 0 ? -1 : await this.processes();
    const stray = now < 0 ? 0 : now - this.idleProcesses;
    if (stray > 0) {
      await this.remove();
      outcome.logs = `${outcome.logs ?? ''}${outcome.logs && !outcome.logs.endsWith('\n') ? '\n' : ''}${strayNote(stray)}`;
    }
    return { outcome, alive: this.alive };
  }

  // How many processes run in the container now (-1 when it cannot be told, so nothing is concluded).
  private async processes(): Promise<number> {
    // null: it cannot be told (-1 below), and nothing is concluded from it.
    const top = (await this.container.top().catch(() => null)) as { Processes?: unknown[] } | null;
    return top?.Processes?.length ?? -1;
  }

  // Kills and removes it; with `report`, first says how it ended (for a call its loader left unanswered).
  async remove(report = false): Promise<ExitReport | undefined> {
    this.gone = true;
    let exit: ExitReport | undefined;
    if (report) {
      const info = this.flooded ? null : await inspectExited(this.docker, this.container);
      exit = {
        exitCode: info?.State?.Running === false ? (info.State.ExitCode ?? null) : null,
        oomKilled: Boolean(info?.State?.OOMKilled),
        stderr: this.stderr.text().slice(-4000),
        flooded: this.flooded,
      };
    }
    await removeContainer(this.container);
    return exit;
  }
}

export const strayNote = (n: number): string =>
  `[zfaas: the call left ${n} process${n === 1 ? '' : 'es'} running; the container was removed]\n`;
