// The instance's miniworkers (broker-worker pattern) and the containers they hold. A miniworker says
// `ready`, gets one command (a job, a prestart, a remove), answers, and is ready again. Which container
// serves a call is decided in containers.ts; this file carries the decision out. A miniworker that dies
// gives its job back to the queue (one crashing loses no job) and its containers are removed. Sizes
// (miniworkers, stem cells, idle TTL) change at any time without losing a job.
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Router } from 'zeromq';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, FunctionMeta, Policy, Runtime } from '../common/model.js';
import { SendQueue } from '../common/zmq.js';
import { decode, encode } from '../protocol/codec.js';
import { FromWorkerSchema, type ContainerSpec, type FromWorker, type Job, type Load, type ToWorker } from '../protocol/worker.js';
import { ContainerTable, decide, fnKey, rtKey, toEvict, type ContainerRec } from './containers.js';

const run = promisify(execFile);

type WorkerState = 'starting' | 'ready' | 'busy' | 'leaving';

interface Worker {
  name: string;
  proc: ChildProcess;
  state: WorkerState;
  job?: Job;
  cmds: ToWorker[]; // control commands waiting for this miniworker (prestart, remove)
}

// A call accepted by the node, before the pool has placed it.
export type Work = Omit<Job, 'use' | 'jobId'>;

export interface PoolSettings {
  miniworkers: number;
  stemCells: number; // per runtime, kept warm when the node's policy is `runtime`
  idleTtlMs: number;
  maxContainers: number;
}

export interface PoolOptions {
  address: string; // ipc:// or tcp:// the miniworkers connect to
  nodeId: string;
  dataDir: string;
  script: string; // the miniworker's entry file
  policy: Policy;
  settings: PoolSettings;
  log: Logger;
  onResult(job: Job, outcome: CallOutcome): void;
  onWorkerGone(name: string): Promise<void>; // removes what a dead miniworker left in Docker
}

export class MiniworkerPool {
  private readonly socket = new Router({ mandatory: true });
  private readonly out = new SendQueue(this.socket);
  private readonly workers = new Map<string, Worker>();
  private readonly queue: Work[] = [];
  readonly table = new ContainerTable();
  private readonly stemRuntimes = new Map<string, Runtime>();
  // Runtimes whose stem cells fail to start (an image that cannot run its loader): tried again after a
  // delay that doubles with each failure, up to a minute, instead of at once and forever.
  private readonly stemFailures = new Map<string, { count: number; timer?: NodeJS.Timeout }>(); // timer set: waiting
  private settings: PoolSettings;
  private seq = 0;
  private jobSeq = 0;
  private stopping = false;
  private reaper?: NodeJS.Timeout;

  constructor(private readonly o: PoolOptions) {
    this.settings = { ...o.settings };
  }

  async start(): Promise<void> {
    await this.socket.bind(this.o.address);
    void this.loop();
    this.fill();
    this.reaper = setInterval(() => this.reap(), 1000);
    this.reaper.unref();
  }

  submit(work: Work): void {
    this.queue.push(work);
    this.dispatch();
  }

  // Runtimes whose stem cells this node keeps (policy `runtime`).
  addStemRuntime(rt: Runtime): void {
    if (this.stemRuntimes.has(rt.name)) return;
    this.stemRuntimes.set(rt.name, rt);
    this.dispatch();
  }

  // Policy `function`: a warm container holding the function before its first call.
  preload(fn: FunctionMeta, runtime: Runtime, treeDir: string): void {
    const key = fnKey(fn.functionName, fn.version);
    // Over the node's cap, the reaper makes room by removing the least recently used idle container.
    if (this.table.count(key, ['starting', 'warm', 'idle', 'busy']) > 0) return;
    const owner = this.quietestWorker();
    if (!owner) return;
    const id = this.newId();
    this.table.add({ id, owner: owner.name, key, runtime: runtime.name });
    owner.cmds.push({ type: 'prestart', spec: this.functionSpec(id, owner.name, fn, runtime, treeDir), load: loadOf(fn, runtime) });
    this.dispatch();
    this.reap();
  }

  configure(s: Partial<PoolSettings>): PoolSettings {
    this.settings = { ...this.settings, ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) };
    if (s.miniworkers !== undefined) this.resize(s.miniworkers);
    this.reap();
    this.dispatch();
    return { ...this.settings };
  }

  get current(): PoolSettings {
    return { ...this.settings };
  }

  private resize(n: number): void {
    this.fill();
    // Shrink: idle ones leave now, busy ones after their job; their containers go with them.
    let excess = this.live().length - n;
    for (const w of this.workers.values()) {
      if (excess <= 0) break;
      if (w.state === 'ready' || w.state === 'starting') {
        this.retire(w);
        excess--;
      }
    }
    for (const w of this.workers.values()) {
      if (excess <= 0) break;
      if (w.state === 'busy') {
        w.state = 'leaving';
        excess--;
      }
    }
  }

  // A redundant call got its answer: its other run is dropped if still queued; if it is running, the
  // container it runs in is returned so the caller can kill it.
  cancel(callNum: number, keepJobId: number): { dequeued: number; running: { containerId?: string; worker: string }[] } {
    let dequeued = 0;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      if (this.queue[i]!.callNum === callNum) {
        this.queue.splice(i, 1);
        dequeued++;
      }
    }
    const running = [...this.workers.values()]
      .filter((w) => w.job && w.job.callNum === callNum && w.job.jobId !== keepJobId)
      .map((w) => ({ containerId: w.job!.use?.id, worker: w.name }));
    return { dequeued, running };
  }

  stats(): {
    miniworkers: number;
    busy: number;
    queued: number;
    containers: Record<string, number>;
    warm: Record<string, number>;
    stems: Record<string, number>;
  } {
    return {
      miniworkers: this.live().length,
      busy: [...this.workers.values()].filter((w) => w.job).length,
      queued: this.queue.length,
      containers: this.table.byState(),
      warm: this.table.warmByFunction(),
      stems: this.table.stemsByRuntime(),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.reaper);
    const exits = [...this.workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
          w.proc.once('exit', () => resolve());
          w.proc.kill('SIGTERM');
          setTimeout(() => w.proc.kill('SIGKILL'), 5000).unref();
        }),
    );
    await Promise.all(exits);
    this.socket.close();
    await rm(join(this.o.dataDir, 'slots'), { recursive: true, force: true }).catch(() => undefined);
    // ZeroMQ leaves the ipc socket file behind.
    if (this.o.address.startsWith('ipc://')) await rm(this.o.address.slice('ipc://'.length), { force: true }).catch(() => undefined);
  }

  private live(): Worker[] {
    return [...this.workers.values()].filter((w) => w.state !== 'leaving');
  }

  private fill(): void {
    while (!this.stopping && this.live().length < this.settings.miniworkers) this.spawn();
  }

  private spawn(): void {
    const name = `${this.o.nodeId}-mw${++this.seq}`;
    const proc = fork(this.o.script, [this.o.address, this.o.nodeId, name], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // A node runs several miniworkers, so their memory counts several times. A miniworker mostly waits
      // on sockets: V8's interpreter and baseline compiler serve it well, one thread does its garbage
      // collection, and its young generation stays small: about 50 MB each instead of 75.
      execArgv: ['--lite-mode', '--single-threaded', '--max-semi-space-size=1'],
      env: { ...process.env, ZFAAS_LOG_FORMAT: process.env.ZFAAS_LOG_FORMAT ?? 'json' },
    });
    const w: Worker = { name, proc, state: 'starting', cmds: [] };
    this.workers.set(name, w);
    proc.on('exit', (code, signal) => this.onExit(w, code, signal));
    proc.on('error', (e) => this.o.log.error({ miniworker: name, err: errText(e) }, 'miniworker failed to start'));
  }

  private retire(w: Worker): void {
    w.state = 'leaving';
    for (const r of this.table.ownedBy(w.name)) this.dropContainer(r);
    this.sendTo(w, { type: 'shutdown' });
  }

  private onExit(w: Worker, code: number | null, signal: string | null): void {
    this.workers.delete(w.name);
    for (const r of this.table.ownedBy(w.name)) this.dropContainer(r);
    void this.o.onWorkerGone(w.name).catch(() => undefined);
    if (w.job && w.job.fn.settings.retry === false) {
      // The retry rule: a function with retry=false never runs twice, even when its executor died.
      this.o.log.warn(
        { miniworker: w.name, code, signal, callNum: w.job.callNum },
        'miniworker died with a job; not retried (retry=false)',
      );
      this.o.onResult(w.job, {
        status: 'ERROR',
        result: '',
        error: 'the miniworker running the call died; not retried (the function has retry=false)',
      });
    } else if (w.job) {
      // Its job goes back to the front of the queue: it was accepted and must finish.
      this.o.log.warn({ miniworker: w.name, code, signal, callNum: w.job.callNum }, 'miniworker died with a job; requeued');
      const { use: _use, jobId: _id, ...work } = w.job;
      this.queue.unshift(work);
    } else if (!this.stopping && w.state !== 'leaving') {
      this.o.log.warn({ miniworker: w.name, code, signal }, 'miniworker exited');
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
        const w = this.workers.get(id.toString());
        if (!w) continue;
        let msg: FromWorker;
        try {
          msg = decode(FromWorkerSchema, rest).msg;
        } catch (e) {
          this.o.log.warn({ miniworker: w.name, err: errText(e) }, 'bad message from miniworker');
          continue;
        }
        this.onMessage(w, msg);
        this.dispatch();
      }
    } catch (e) {
      if (!this.stopping) this.o.log.error({ err: errText(e) }, 'miniworker socket failed');
    }
  }

  private onMessage(w: Worker, msg: FromWorker): void {
    switch (msg.type) {
      case 'result': {
        const job = w.job;
        if (!job || job.jobId !== msg.jobId) return;
        w.job = undefined;
        if (job.use) {
          const rec = this.table.get(job.use.id);
          if (rec) {
            if (msg.containerAlive) this.table.move(rec.id, 'idle');
            else this.forget(rec);
          }
        }
        if (w.state === 'busy') w.state = 'starting'; // until it says ready again
        this.o.onResult(job, msg.outcome);
        return;
      }
      case 'started': {
        const rec = this.table.get(msg.id);
        if (!rec) return;
        if (msg.ok) {
          this.table.move(rec.id, 'warm');
          if (rec.slotDir) this.stemStarted(rec.runtime, true);
        } else {
          this.o.log.warn({ container: msg.id, key: rec.key, err: msg.error }, 'warm container did not start');
          if (rec.slotDir) this.stemStarted(rec.runtime, false);
          this.forget(rec);
        }
        if (w.state === 'busy') w.state = 'starting';
        return;
      }
      case 'removed':
        if (w.state === 'busy') w.state = 'starting';
        return;
      case 'ready':
        if (w.state === 'leaving') {
          if (!w.job) this.sendTo(w, { type: 'shutdown' });
        } else if (!w.job) {
          w.state = 'ready';
        }
        return;
    }
  }

  // Sends each free miniworker its next command: control commands first, then calls in arrival order.
  private dispatch(): void {
    if (this.stopping) return;
    for (const w of this.workers.values()) {
      if (w.state === 'ready' && w.cmds.length) {
        w.state = 'busy';
        this.sendTo(w, w.cmds.shift()!);
      }
    }
    while (this.queue.length) {
      const ready = [...this.workers.values()].filter((w) => w.state === 'ready' && w.cmds.length === 0).map((w) => w.name);
      const work = this.queue[0]!;
      const d = decide(this.table, {
        policy: work.policy,
        key: fnKey(work.fn.functionName, work.fn.version),
        runtime: work.runtime.name,
        stemsAllowed: !work.fn.settings.network,
        ready,
      });
      if (d.kind === 'wait') break;
      this.queue.shift();
      const w = this.workers.get(d.worker)!;
      w.state = 'busy';
      const job: Job = { ...work, jobId: ++this.jobSeq, use: null };
      w.job = job;
      if (d.kind === 'use') {
        this.table.move(d.id, 'busy');
        job.use = { id: d.id };
        this.sendTo(w, { type: 'job', job });
      } else if (d.kind === 'create') {
        const id = this.newId();
        this.table.add({ id, owner: w.name, key: fnKey(work.fn.functionName, work.fn.version), runtime: work.runtime.name });
        this.table.move(id, 'busy');
        job.use = { id, create: this.functionSpec(id, w.name, work.fn, work.runtime, work.treeDir), load: loadOf(work.fn, work.runtime) };
        this.sendTo(w, { type: 'job', job });
      } else if (d.kind === 'adopt') {
        const rec = this.table.move(d.id, 'busy')!;
        rec.key = fnKey(work.fn.functionName, work.fn.version);
        job.use = { id: d.id, load: loadOf(work.fn, work.runtime), limits: limitsOf(work.fn) };
        void this.fillSlot(rec, work.treeDir).then(
          () => this.sendTo(w, { type: 'job', job }),
          (e) => {
            // The stem cell cannot take it: run the call in a fresh container instead.
            this.o.log.warn({ container: rec.id, err: errText(e) }, 'could not put the function into a stem cell');
            this.dropContainer(rec);
            job.use = null;
            this.sendTo(w, { type: 'job', job });
          },
        );
      } else {
        this.sendTo(w, { type: 'job', job });
      }
    }
    this.replenish();
  }

  private stemStarted(runtime: string, ok: boolean): void {
    const f = this.stemFailures.get(runtime);
    if (ok) {
      clearTimeout(f?.timer);
      this.stemFailures.delete(runtime);
      return;
    }
    const count = (f?.count ?? 0) + 1;
    const delay = Math.min(1000 * 2 ** (count - 1), 60_000);
    clearTimeout(f?.timer);
    const entry: { count: number; timer?: NodeJS.Timeout } = { count };
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.dispatch();
    }, delay);
    entry.timer.unref();
    this.stemFailures.set(runtime, entry);
    this.o.log.warn({ runtime, failures: count, retryInMs: delay }, 'stem cells of this runtime fail to start; trying again later');
  }

  // Keeps the configured number of stem cells per runtime (policy `runtime`), within the node's cap.
  private replenish(): void {
    if (this.o.policy !== 'runtime' || this.stopping) return;
    for (const rt of this.stemRuntimes.values()) {
      if (this.stemFailures.get(rt.name)?.timer) continue;
      let missing = this.settings.stemCells - this.table.count(rtKey(rt.name), ['starting', 'warm']);
      while (missing-- > 0 && this.table.all().length < this.settings.maxContainers) {
        const owner = this.quietestWorker();
        if (!owner) return;
        const id = this.newId();
        const slotDir = join(this.o.dataDir, 'slots', id);
        const rec = this.table.add({ id, owner: owner.name, key: rtKey(rt.name), runtime: rt.name, slotDir });
        void makeSlot(slotDir).then(
          () => {
            owner.cmds.push({ type: 'prestart', spec: this.stemSpec(id, owner.name, rt, slotDir) });
            this.dispatch();
          },
          (e) => {
            this.o.log.warn({ err: errText(e) }, 'could not make a stem cell folder');
            this.forget(rec);
          },
        );
      }
    }
  }

  private reap(): void {
    for (const r of toEvict(this.table, { idleTtlMs: this.settings.idleTtlMs, maxContainers: this.settings.maxContainers })) {
      this.o.log.debug({ container: r.id, key: r.key }, 'removing idle container');
      this.dropContainer(r);
    }
  }

  // Tells the owner to remove a container (after what it is doing) and forgets it now.
  private dropContainer(r: ContainerRec): void {
    const owner = this.workers.get(r.owner);
    this.forget(r);
    if (owner && owner.state !== 'leaving') {
      owner.cmds.push({ type: 'remove', id: r.id });
    }
  }

  private forget(r: ContainerRec): void {
    if (this.table.get(r.id)) this.table.move(r.id, 'removed');
    if (r.slotDir) void rm(r.slotDir, { recursive: true, force: true }).catch(() => undefined);
  }

  private quietestWorker(): Worker | undefined {
    let best: Worker | undefined;
    let bestN = Infinity;
    for (const w of this.live()) {
      const n = this.table.ownedBy(w.name).length + w.cmds.length;
      if (n < bestN) [best, bestN] = [w, n];
    }
    return best;
  }

  private newId(): string {
    return `zfaas-${this.o.nodeId}-${randomBytes(4).toString('hex')}`.slice(0, 120);
  }

  // The function's tree, hardlinked into the stem cell's folder (read-only inside the container).
  private async fillSlot(rec: ContainerRec, treeDir: string): Promise<void> {
    if (!rec.slotDir) throw new Error('not a stem cell');
    await run('cp', ['-a', '-l', `${treeDir}/.`, rec.slotDir]);
  }

  private functionSpec(id: string, owner: string, fn: FunctionMeta, rt: Runtime, treeDir: string): ContainerSpec {
    const env = ['HOME=/tmp', ...Object.entries(baseEnv(fn, rt)).map(([k, v]) => `${k}=${v}`)];
    return containerSpec(
      id,
      rt,
      `${treeDir}:${rt.path}:ro`,
      env,
      this.labels(owner, { 'zfaas.function': fn.functionName, 'zfaas.role': 'warm' }),
      limitsOf(fn),
    );
  }

  private stemSpec(id: string, owner: string, rt: Runtime, slotDir: string): ContainerSpec {
    // generic limits; the call's own are applied when the stem cell takes a function
    const limits = { memoryMiB: 256, cpus: 1, pids: 128, network: false };
    return containerSpec(
      id,
      rt,
      `${slotDir}:${rt.path}:ro`,
      ['HOME=/tmp', `ZFAAS_DIR=${rt.path}`],
      this.labels(owner, { 'zfaas.runtime': rt.name, 'zfaas.role': 'stem' }),
      limits,
    );
  }

  private labels(owner: string, extra: Record<string, string>): Record<string, string> {
    return { 'zfaas.node': this.o.nodeId, 'zfaas.miniworker': owner, ...extra };
  }

  private sendTo(w: Worker, m: ToWorker): void {
    this.out.send([Buffer.from(w.name), ...encode(m)]).catch((e) => {
      this.o.log.warn({ miniworker: w.name, err: errText(e) }, 'could not reach miniworker');
    });
  }
}

function containerSpec(
  id: string,
  rt: Runtime,
  bind: string,
  env: string[],
  labels: Record<string, string>,
  limits: ContainerSpec['limits'],
): ContainerSpec {
  return {
    id,
    image: rt.image,
    mode: rt.loader ? 'loader' : 'exec',
    loader: rt.loader,
    run: rt.run,
    workdir: rt.path,
    bind,
    env,
    labels,
    limits,
  };
}

function baseEnv(fn: FunctionMeta, rt: Runtime): Record<string, string> {
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

function loadOf(fn: FunctionMeta, rt: Runtime): Load {
  return { dir: rt.path, handler: fn.settings.handler ?? null, env: baseEnv(fn, rt) };
}

function limitsOf(fn: FunctionMeta): ContainerSpec['limits'] {
  return { memoryMiB: fn.settings.memory, cpus: fn.settings.cpus, pids: fn.settings.pids, network: fn.settings.network };
}

async function makeSlot(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chown(dir, 1000, 1000);
}
