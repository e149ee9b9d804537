// The instance's miniworkers: child processes it supervises and the ROUTER it speaks protocol/worker.ts
// on. Each miniworker's life is a small state machine (starting, ready, busy, leaving, gone); its one job
// slot is claimed as a lease, which carries one command at a time and is released by its holder (a call
// that needs a container made and then a `docker exec` in it keeps the same miniworker for both), while
// removals go to it at any time. A miniworker that dies fails the job it held (the pool puts the call
// back) and the removals it owed.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Router } from 'zeromq';
import { createInterface } from 'node:readline';
import { errText, logFormat, prettyLine, type Logger } from '../common/log.js';
import { SendQueue } from '../common/zmq.js';
import { decode, encode } from '../protocol/codec.js';
import { FromWorkerSchema, replyTo, type ExitReport, type FromWorker, type ToWorker } from '../protocol/worker.js';

export type WorkerState = 'starting' | 'ready' | 'busy' | 'leaving' | 'gone';

const NEXT: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['ready', 'leaving', 'gone'],
  ready: ['busy', 'leaving', 'gone'],
  busy: ['ready', 'leaving', 'gone'],
  leaving: ['gone'],
  gone: [],
};

export type JobCommand = Exclude<ToWorker, { type: 'remove' | 'shutdown' }>;
export type JobReply<C extends JobCommand> = Extract<FromWorker, { type: (typeof replyTo)[C['type']] }>;

export class WorkerDied extends Error {}

interface Worker {
  name: string;
  proc: ChildProcess;
  state: WorkerState;
  told?: boolean; // shutdown sent
  leased?: Lease; // who holds its job slot
  job?: { cmd?: JobCommand; resolve(r: FromWorker): void; reject(e: Error): void }; // cmd: once it is made
  removals: Map<string, ((exit: ExitReport | undefined) => void)[]>;
}

// A miniworker's job slot, held from claim() to release(): its jobs go one at a time.
export interface Lease {
  readonly worker: string;
  job<C extends JobCommand>(cmd: C | Promise<C>): Promise<JobReply<C>>;
  release(): void;
}

// One job on a miniworker, its slot released with the reply.
export async function oneJob<C extends JobCommand>(
  port: Pick<WorkerPort, 'claim'>,
  name: string,
  cmd: C | Promise<C>,
): Promise<JobReply<C>> {
  const lease = port.claim(name);
  try {
    return await lease.job(cmd);
  } finally {
    lease.release();
  }
}

export interface MiniworkersOptions extends WorkerHooks {
  address: string; // ipc:// or tcp:// the miniworkers connect to
  nodeId: string;
  script: string; // the miniworker's entry file
  log: Logger;
}

// What the pool needs of its miniworkers (a fake stands in for them in the pool's unit tests).
export interface WorkerPort {
  // Every miniworker of this life has a name that starts with this (its containers carry that name).
  readonly life: string;
  start(n: number): Promise<void>;
  resize(n: number): void;
  leaving(): string[];
  dismiss(): void;
  readonly size: number;
  ready(): string[];
  busy(): number;
  // Takes a ready miniworker's job slot (throws WorkerDied when it is not ready).
  claim(name: string): Lease;
  remove(name: string, id: string, report?: boolean): Promise<ExitReport | undefined>;
  stop(): Promise<void>;
}

export interface WorkerHooks {
  onReady(): void; // a job slot became free
  onGone(name: string): void; // a miniworker exited (its containers are gone or going)
  onExited?(id: string): void; // a held container's process ended on its own
  // A miniworker told to leave goes once this says so: its containers may still be serving calls.
  mayLeave?(name: string): boolean;
}

export class Miniworkers implements WorkerPort {
  private readonly socket = new Router({ mandatory: true });
  private readonly out = new SendQueue(this.socket);
  private readonly workers = new Map<string, Worker>();
  private target = 0;
  private seq = 0;
  // Made on the first miniworker whose lines it shows (only when the node writes to a terminal).
  private pretty: ((line: string) => string) | undefined;
  private stopping = false;

  // Unique across lives of the node: a miniworker of an earlier life, cleaning up, removes only its own,
  // and what an earlier life made is told from what this one made.
  readonly life: string;

  constructor(private readonly o: MiniworkersOptions) {
    this.life = `${o.nodeId}-${randomBytes(3).toString('hex')}-`;
  }

  async start(n: number): Promise<void> {
    await this.socket.bind(this.o.address);
    void this.loop();
    this.resize(n);
  }

  // Grows at once; shrinking lets idle miniworkers go now and busy ones after their job.
  resize(n: number): void {
    this.target = n;
    while (!this.stopping && this.live().length < n) this.spawn();
    let excess = this.live().length - n;
    for (const state of ['starting', 'ready', 'busy'] as const) {
      for (const w of this.workers.values()) {
        if (excess <= 0) return;
        if (w.state !== state) continue;
        this.move(w, 'leaving');
        excess--;
      }
    }
    this.dismiss();
  }

  // Miniworkers that are leaving: none of their containers may be chosen for a call any more.
  leaving(): string[] {
    return [...this.workers.values()].filter((w) => w.state === 'leaving').map((w) => w.name);
  }

  // Lets go the leaving miniworkers whose job is done and whose containers serve no call.
  dismiss(): void {
    for (const w of this.workers.values()) {
      if (w.state !== 'leaving' || w.job || w.leased || w.told) continue;
      if (this.o.mayLeave && !this.o.mayLeave(w.name)) continue;
      w.told = true;
      this.send(w, { type: 'shutdown' });
    }
  }

  get size(): number {
    return this.live().length;
  }

  // Miniworkers whose job slot is free.
  ready(): string[] {
    const out: string[] = [];
    for (const w of this.workers.values()) if (w.state === 'ready') out.push(w.name);
    return out;
  }

  busy(): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.state === 'busy') n++;
    return n;
  }

  claim(name: string): Lease {
    const w = this.workers.get(name);
    if (!w || w.state !== 'ready') throw new WorkerDied(`miniworker ${name} cannot take a job now`);
    this.move(w, 'busy');
    const lease: Lease = {
      worker: name,
      job: (cmd) => this.give(w, lease, cmd),
      release: () => {
        if (w.leased !== lease) return;
        w.leased = undefined;
        if (!w.job) this.freed(w);
      },
    };
    w.leased = lease;
    return lease;
  }

  // A job on a leased slot; the promise holds its reply (or WorkerDied). The command may still be being
  // made (a folder or socket it needs): the slot is the lease's meanwhile.
  private give<C extends JobCommand>(w: Worker, lease: Lease, cmd: C | Promise<C>): Promise<JobReply<C>> {
    if (w.leased !== lease || w.state === 'gone') return Promise.reject(new WorkerDied(`the miniworker ${w.name} is gone`));
    if (w.job) return Promise.reject(new Error(`invariant broken: miniworker ${w.name} was given a second job`));
    return new Promise<FromWorker>((resolve, reject) => {
      const entry: NonNullable<Worker['job']> = { resolve, reject };
      w.job = entry;
      Promise.resolve(cmd).then(
        (c) => {
          if (w.job !== entry) return;
          entry.cmd = c;
          this.send(w, c);
        },
        (e: Error) => {
          if (w.job !== entry) return;
          w.job = undefined;
          reject(e);
        },
      );
    }) as Promise<JobReply<C>>;
  }

  // Its slot is free again: the reply to its last job came and nobody holds it.
  private freed(w: Worker): void {
    if (w.state === 'leaving') return this.dismiss();
    if (w.state !== 'busy') return;
    this.move(w, 'ready');
    this.o.onReady();
  }

  // Kills and removes a container its miniworker holds, at once (also while that miniworker is busy).
  remove(name: string, id: string, report = false): Promise<ExitReport | undefined> {
    const w = this.workers.get(name);
    if (!w || w.state === 'gone') return Promise.resolve(undefined);
    return new Promise((resolve) => {
      w.removals.set(id, [...(w.removals.get(id) ?? []), resolve]);
      this.send(w, { type: 'remove', id, report });
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
          w.proc.once('exit', () => resolve());
          // It removes every container it holds (also creates still in flight), which ends its job, then
          // exits; one that does not within a few seconds is killed (the instance sweeps what it left).
          this.send(w, { type: 'shutdown' });
          setTimeout(() => w.proc.kill('SIGTERM'), 4000).unref();
          setTimeout(() => w.proc.kill('SIGKILL'), 6000).unref();
        }),
    );
    await Promise.all(exits);
    this.socket.close();
    // ZeroMQ leaves the ipc socket file behind.
    // A socket file already gone is what we want.
    if (this.o.address.startsWith('ipc://')) await rm(this.o.address.slice('ipc://'.length), { force: true }).catch(() => undefined);
  }

  private live(): Worker[] {
    return [...this.workers.values()].filter((w) => w.state !== 'leaving' && w.state !== 'gone');
  }

  private move(w: Worker, to: WorkerState): void {
    if (w.state === to) return;
    if (!NEXT[w.state].includes(to)) throw new Error(`miniworker ${w.name}: ${w.state} -> ${to}`);
    w.state = to;
  }

  private spawn(): void {
    const name = `${this.life}mw${++this.seq}`;
    // A miniworker logs JSON lines; on a terminal the node shows them as its own logger does.
    const pretty = logFormat() === 'pretty';
    const proc = fork(this.o.script, [this.o.address, this.o.nodeId, name, String(process.pid)], {
      stdio: ['ignore', pretty ? 'pipe' : 'inherit', 'inherit', 'ipc'],
      // A node runs several miniworkers, so their memory counts several times. A miniworker mostly waits
      // on sockets: V8's interpreter and baseline compiler serve it well, one thread does its garbage
      // collection, and its young generation stays small: about 50 MB each instead of 75. Lite mode turns
      // WebAssembly off (nothing here uses it); saying so keeps V8 from warning about it at every start.
      execArgv: ['--lite-mode', '--no-expose-wasm', '--single-threaded', '--max-semi-space-size=1'],
      env: { ...process.env, ZFAAS_LOG_FORMAT: 'json' },
    });
    if (pretty && proc.stdout) {
      const show = this.pretty ?? (this.pretty = prettyLine());
      createInterface({ input: proc.stdout, crlfDelay: Infinity }).on('line', (line) => process.stdout.write(show(line)));
    }
    const w: Worker = { name, proc, state: 'starting', removals: new Map() };
    this.workers.set(name, w);
    proc.on('exit', (code, signal) => this.onExit(w, code, signal));
    proc.on('error', (e) => this.o.log.error({ miniworker: name, err: errText(e) }, 'miniworker failed to start'));
  }

  private onExit(w: Worker, code: number | null, signal: string | null): void {
    const had = w.job;
    if (!this.stopping && w.state !== 'leaving')
      this.o.log.warn({ miniworker: w.name, code, signal, job: had?.cmd?.type }, 'miniworker exited');
    this.move(w, 'gone');
    this.workers.delete(w.name);
    w.job = undefined;
    w.leased = undefined;
    had?.reject(new WorkerDied(`the miniworker running it died (${signal ?? `exit ${code}`})`));
    for (const list of w.removals.values()) for (const r of list) r(undefined);
    w.removals.clear();
    this.o.onGone(w.name);
    if (!this.stopping) {
      this.resize(this.target);
      this.o.onReady();
    }
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const [id, ...rest] = frames as Buffer[];
        const w = id && this.workers.get(id.toString());
        if (!w) continue;
        let msg: FromWorker;
        try {
          msg = decode(FromWorkerSchema, rest).msg;
        } catch (e) {
          this.o.log.warn({ miniworker: w.name, err: errText(e) }, 'bad message from miniworker');
          continue;
        }
        this.onMessage(w, msg);
      }
    } catch (e) {
      if (!this.stopping) this.o.log.error({ err: errText(e) }, 'miniworker socket failed');
    }
  }

  private onMessage(w: Worker, msg: FromWorker): void {
    if (msg.type === 'ready') {
      if (w.state === 'starting') this.move(w, 'ready');
      this.o.onReady();
      return;
    }
    if (msg.type === 'exited') {
      this.o.onExited?.(msg.id);
      return;
    }
    if (msg.type === 'removed') {
      const list = w.removals.get(msg.id) ?? [];
      w.removals.delete(msg.id);
      for (const r of list) r(msg.exit);
      return;
    }
    const job = w.job;
    if (!job?.cmd || replyTo[job.cmd.type] !== msg.type) {
      this.o.log.warn({ miniworker: w.name, reply: msg.type }, 'miniworker answered a job it was not given');
      return;
    }
    w.job = undefined;
    job.resolve(msg);
    // The reply is also its ready, unless a lease still holds it; one that is leaving goes once its
    // containers are free.
    if (!w.leased) this.freed(w);
  }

  private send(w: Worker, m: ToWorker): void {
    this.out.send([Buffer.from(w.name), ...encode(m)]).catch((e) => {
      this.o.log.warn({ miniworker: w.name, type: m.type, err: errText(e) }, 'could not reach miniworker');
    });
  }
}
