// The instance's miniworkers (broker-worker pattern). A miniworker says `ready`, gets one job, answers.
// A miniworker that dies gives its job back to the queue: one crashing loses no job. The pool can be
// resized at any time; a miniworker over the new size leaves after its current job.
import { fork, type ChildProcess } from 'node:child_process';
import { Router } from 'zeromq';
import type { Logger } from '../common/log.js';
import { errText } from '../common/log.js';
import { SendQueue } from '../common/zmq.js';
import type { CallOutcome } from '../common/model.js';
import { decode, encode } from '../protocol/codec.js';
import { FromWorkerSchema, type Job, type ToWorker } from '../protocol/worker.js';

type SlotState = 'starting' | 'ready' | 'busy' | 'leaving';

interface Slot {
  name: string;
  proc: ChildProcess;
  state: SlotState;
  job?: Job;
}

export interface PoolOptions {
  address: string; // ipc:// or tcp:// the miniworkers connect to
  nodeId: string;
  size: number;
  script: string; // the miniworker's entry file
  log: Logger;
  onResult(job: Job, outcome: CallOutcome): void;
}

export class MiniworkerPool {
  private readonly socket = new Router({ mandatory: true });
  private readonly out = new SendQueue(this.socket);
  private readonly slots = new Map<string, Slot>();
  private readonly queue: Job[] = [];
  private size: number;
  private seq = 0;
  private stopping = false;

  constructor(private readonly o: PoolOptions) {
    this.size = o.size;
  }

  async start(): Promise<void> {
    await this.socket.bind(this.o.address);
    void this.loop();
    this.fill();
  }

  submit(job: Job): void {
    this.queue.push(job);
    this.dispatch();
  }

  resize(n: number): void {
    this.size = n;
    this.fill();
    // Shrink: idle ones leave now, busy ones after their job.
    let excess = this.live().length - n;
    for (const s of this.slots.values()) {
      if (excess <= 0) break;
      if (s.state === 'ready' || s.state === 'starting') {
        this.retire(s);
        excess--;
      }
    }
    for (const s of this.slots.values()) {
      if (excess <= 0) break;
      if (s.state === 'busy') {
        s.state = 'leaving';
        excess--;
      }
    }
  }

  stats(): { miniworkers: number; busy: number; queued: number } {
    const live = this.live();
    return { miniworkers: live.length, busy: [...this.slots.values()].filter((s) => s.job).length, queued: this.queue.length };
  }

  // Jobs accepted and not yet answered (queued or on a miniworker).
  running(): number[] {
    return [...this.queue.map((j) => j.callNum), ...[...this.slots.values()].flatMap((s) => (s.job ? [s.job.callNum] : []))];
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.slots.values()].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
          s.proc.once('exit', () => resolve());
          s.proc.kill('SIGTERM');
          setTimeout(() => s.proc.kill('SIGKILL'), 5000).unref();
        }),
    );
    await Promise.all(exits);
    this.socket.close();
  }

  private live(): Slot[] {
    return [...this.slots.values()].filter((s) => s.state !== 'leaving');
  }

  private fill(): void {
    while (!this.stopping && this.live().length < this.size) this.spawn();
  }

  private spawn(): void {
    const name = `${this.o.nodeId}-mw${++this.seq}`;
    const proc = fork(this.o.script, [this.o.address, this.o.nodeId, name], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ZFAAS_LOG_FORMAT: process.env.ZFAAS_LOG_FORMAT ?? 'json' },
    });
    const slot: Slot = { name, proc, state: 'starting' };
    this.slots.set(name, slot);
    proc.on('exit', (code, signal) => this.onExit(slot, code, signal));
    proc.on('error', (e) => this.o.log.error({ miniworker: name, err: errText(e) }, 'miniworker failed to start'));
  }

  private retire(s: Slot): void {
    s.state = 'leaving';
    this.sendTo(s, { type: 'shutdown' });
  }

  private onExit(s: Slot, code: number | null, signal: string | null): void {
    this.slots.delete(s.name);
    if (s.job) {
      // Its job goes back to the front of the queue: it was accepted and must finish.
      this.o.log.warn({ miniworker: s.name, code, signal, callNum: s.job.callNum }, 'miniworker died with a job; requeued');
      this.queue.unshift(s.job);
    } else if (!this.stopping && s.state !== 'leaving') {
      this.o.log.warn({ miniworker: s.name, code, signal }, 'miniworker exited');
    }
    if (!this.stopping) {
      this.fill();
      this.dispatch();
    }
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const [id, ...rest] = frames as Buffer[];
        if (!id) continue;
        const s = this.slots.get(id.toString());
        if (!s) continue;
        let msg;
        try {
          msg = decode(FromWorkerSchema, rest).msg;
        } catch (e) {
          this.o.log.warn({ miniworker: s.name, err: errText(e) }, 'bad message from miniworker');
          continue;
        }
        if (msg.type === 'result') {
          const job = s.job;
          if (job && job.jobId === msg.jobId) {
            s.job = undefined;
            if (s.state === 'busy') s.state = 'starting'; // until it says ready again
            this.o.onResult(job, msg.outcome);
          }
        } else if (msg.type === 'ready') {
          if (s.state === 'leaving') {
            if (!s.job) this.sendTo(s, { type: 'shutdown' });
          } else if (!s.job) {
            s.state = 'ready';
          }
        }
        this.dispatch();
      }
    } catch (e) {
      if (!this.stopping) this.o.log.error({ err: errText(e) }, 'miniworker socket failed');
    }
  }

  // The one place that decides which miniworker runs the next job.
  private dispatch(): void {
    for (const s of this.slots.values()) {
      if (this.queue.length === 0) return;
      if (s.state !== 'ready') continue;
      const job = this.queue.shift()!;
      s.job = job;
      s.state = 'busy';
      this.sendTo(s, { type: 'job', job });
    }
  }

  private sendTo(s: Slot, m: ToWorker): void {
    this.out.send([Buffer.from(s.name), ...encode(m)]).catch((e) => {
      this.o.log.warn({ miniworker: s.name, err: errText(e) }, 'could not reach miniworker');
    });
  }
}
