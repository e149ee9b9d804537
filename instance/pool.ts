// The node's calls and containers: takes the calls the node accepted, asks decide() which container serves
// each, and carries the decision out: a warm loader is called over its line (line.ts), Docker work goes to
// a miniworker (miniworkers.ts). Each container moves only through the state machine in containers.ts.
// Stem cells follow stems.ts; idle containers are reaped. A miniworker that dies puts its call back in the
// queue (one crashing loses no job) and its containers are removed. Sizes change at any time.
import { randomBytes } from 'node:crypto';
import { chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { callEnv, functionEnv, limitsOf, paramsOf, UID } from '../common/container-spec.js';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, FunctionMeta, Policy, Runtime, WebResponse } from '../common/model.js';
import { HOP_BY_HOP, HttpResponseSchema, RESULT_LIMIT, SECRETS_DIR, type HttpRequest } from '../protocol/loader.js';
import { MAX_OUTPUT } from '../common/docker.js';
import { TRUNCATION_MARK } from '../miniworker/outcome.js';
import { inSync, type DepsJob, type DepsRun, type ExitReport, type RunJob, type SecretFile } from '../protocol/worker.js';
import { ContainerTable, decide, fnKey, rtKey, toEvict, type ContainerRec, type Decision } from './containers.js';
import { LineBroken, LineClosed, LineTimeout, LoaderLine } from './line.js';
import { Miniworkers, WorkerDied, type JobCommand, type WorkerHooks, type WorkerPort } from './miniworkers.js';
import { StemPlanner } from './stems.js';

// A call the node accepted, with its prepared tree.
export interface Work {
  callNum: number;
  params: unknown;
  fn: FunctionMeta;
  runtime: Runtime;
  treeDir: string;
  policy: Policy;
  replica?: number; // redundant calls: which of the two runs
  attempt?: number; // which run of the call this is (ZFAAS_ATTEMPT)
  http?: HttpRequest; // a call through the function's web path
  spend?: boolean; // its container is removed after it (a web call under policy none)
  secrets?: SecretFile[]; // the secrets its function names, current when the node accepted it
}

export interface PoolSettings {
  miniworkers: number;
  stemCells: number; // the fewest stem cells a runtime that has them keeps
  stemCellsMax: number; // the most, while demand lasts
  idleTtlMs: number;
  maxContainers: number;
}

export interface PoolOptions {
  address: string; // ipc:// or tcp:// the miniworkers connect to
  nodeId: string;
  dataDir: string;
  script: string; // the miniworker's entry file
  settings: PoolSettings;
  log: Logger;
  onResult(work: Work, outcome: CallOutcome): void;
  workers?(hooks: WorkerHooks): WorkerPort; // the real miniworkers unless a test brings fakes
}

const STEM_TTL_MS = 60_000; // a stem cell beyond its runtime's target goes after this long unused
const START_TIMEOUT_MS = 30_000; // a new container's loader must dial in within this
// A loader's process environment grows a little with every call (the C library keeps every value a
// variable ever had): a warm container is replaced after this many calls, long before that matters.
const RECYCLE_AFTER_CALLS = 10_000;
const SECRETS_TIMEOUT_MS = 10_000; // a loader writes a function's secrets (a few small files) within this

// A Docker job waiting for a free miniworker (stem cells, preloads, dependency steps).
interface Chore {
  run(worker: string): Promise<void>;
}

class Requeue extends Error {}

export class Pool {
  readonly table = new ContainerTable();
  private readonly workers: WorkerPort;
  private readonly lines = new Map<string, LoaderLine>();
  private readonly stems: StemPlanner;
  private readonly queue: Work[] = [];
  private readonly chores: Chore[] = [];
  private readonly active = new Map<string, { work: Work; container?: string; run?: { owner: string; name: string } }>();
  private readonly cancelled = new Set<string>();
  private readonly stemsStarting = new Map<string, number>();
  private readonly stemRuntimes = new Map<string, Runtime>(); // the runtimes this node keeps stem cells of
  private readonly orphans = new Set<string>(); // containers whose miniworker died (their calls are its jobs)
  private settings: PoolSettings;
  private sweep: 'todo' | 'running' | 'done' = 'todo';
  private stopping = false;
  private jobSeq = 0;
  private callSeq = 0;
  private reaper?: NodeJS.Timeout;

  constructor(private readonly o: PoolOptions) {
    this.settings = { ...o.settings };
    this.stems = new StemPlanner({ min: o.settings.stemCells, max: o.settings.stemCellsMax, windowMs: STEM_TTL_MS });
    const hooks: WorkerHooks = {
      onReady: () => this.onReady(),
      onGone: (name) => this.onWorkerGone(name),
      onExited: (id) => this.onExited(id),
      mayLeave: (name) => this.table.ownedBy(name).length === 0,
    };
    this.workers = o.workers?.(hooks) ?? new Miniworkers({ address: o.address, nodeId: o.nodeId, script: o.script, log: o.log, ...hooks });
  }

  async start(): Promise<void> {
    await rm(this.linesDir, { recursive: true, force: true });
    await mkdir(this.linesDir, { recursive: true, mode: 0o700 });
    await this.workers.start(this.settings.miniworkers);
    this.reaper = setInterval(() => this.reap(), 1000);
    this.reaper.unref();
  }

  private get linesDir(): string {
    return join(this.o.dataDir, 'lines');
  }

  submit(work: Work): void {
    this.queue.push(work);
    this.dispatch();
  }

  // This node keeps stem cells of the runtime from now on (policy `runtime`, the node's or a function's);
  // `expectCall`: a function was just deployed that will take one for its first call.
  keepStems(rt: Runtime, expectCall = false): void {
    if (!rt.loader) return; // a stem cell without a loader could not take a function
    if (this.stems.add(rt.name)) this.stemRuntimes.set(rt.name, rt);
    if (expectCall) this.stems.expect(rt.name);
    this.dispatch();
  }
  // Policy `function`: a warm container holding the function before its first call.
  preload(fn: FunctionMeta, runtime: Runtime, treeDir: string): void {
    const key = fnKey(fn.functionName, fn.version);
    if (this.table.count(key) > 0) return;
    this.chores.push({ run: (w) => this.startContainer(w, { key, runtime, fn, treeDir }).then(() => undefined) });
    this.dispatch();
  }

  // The dependencies step of a function version, run by a miniworker.
  runDeps(deps: Omit<DepsJob, 'name'>): Promise<DepsRun> {
    return new Promise<DepsRun>((resolve, reject) => {
      this.chores.push({
        run: async (w) => {
          try {
            const reply = await this.workers.job(w, { type: 'deps', jobId: ++this.jobSeq, deps: { ...deps, name: this.newId('deps') } });
            resolve(reply.run);
          } catch (e) {
            reject(e as Error);
          }
        },
      });
      this.dispatch();
    });
  }

  // A version was replaced: its idle containers go now instead of after their TTL.
  drain(name: string, keepVersion: number): void {
    for (const r of this.table.all()) {
      if (!r.key.startsWith(`fn:${name}@`) || r.key === fnKey(name, keepVersion)) continue;
      if (r.state === 'idle' || r.state === 'warm') void this.discard(r);
    }
  }

  // A secret a function version names is gone: its containers hold a value that must not be read any more.
  // Spare ones go now, busy ones once their call ends (the function cannot run again without the secret).
  revoke(name: string, version: number): void {
    const key = fnKey(name, version);
    for (const r of this.table.all()) {
      if (r.key !== key) continue;
      if (r.state === 'idle' || r.state === 'warm') void this.discard(r);
      else r.spent = true;
    }
  }

  configure(s: Partial<PoolSettings>): PoolSettings {
    this.settings = { ...this.settings, ...Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) };
    this.stems.configure({ min: this.settings.stemCells, max: Math.max(this.settings.stemCells, this.settings.stemCellsMax) });
    if (s.miniworkers !== undefined) this.workers.resize(s.miniworkers);
    this.reap(); // also lets go the containers of miniworkers that leave
    this.dispatch();
    return { ...this.settings };
  }

  get current(): PoolSettings {
    return { ...this.settings };
  }

  // Stops a call's runs (all of them, or a redundant call's other one once it has its answer): queued ones
  // are dropped, running ones cancelled (their containers killed). Whether the pool had any.
  cancel(callNum: number, keepReplica?: number): boolean {
    const keep = (w: Work): boolean => keepReplica !== undefined && w.replica === keepReplica;
    let had = false;
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const w = this.queue[i]!;
      if (w.callNum === callNum && !keep(w)) {
        this.queue.splice(i, 1);
        had = true;
      }
    }
    for (const [k, a] of this.active) {
      if (a.work.callNum !== callNum || keep(a.work)) continue;
      had = true;
      this.cancelled.add(k);
      const rec = a.container ? this.table.get(a.container) : undefined;
      if (rec && rec.state === 'busy') {
        this.table.move(rec.id, 'cancelling');
        void this.discard(rec);
      } else if (a.run) void this.workers.remove(a.run.owner, a.run.name);
    }
    return had;
  }

  // Takes every call still waiting in the queue out of it (the node is draining): their numbers, once each.
  withdraw(): number[] {
    const calls = new Set(this.queue.map((w) => w.callNum));
    for (const w of this.queue) if (this.activeCall(w.callNum)) calls.delete(w.callNum); // a replica runs: it stays
    for (let i = this.queue.length - 1; i >= 0; i--) if (calls.has(this.queue[i]!.callNum)) this.queue.splice(i, 1);
    return [...calls];
  }

  private activeCall(callNum: number): boolean {
    for (const a of this.active.values()) if (a.work.callNum === callNum) return true;
    return false;
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
      miniworkers: this.workers.size,
      busy: this.workers.busy(),
      queued: this.queue.length,
      containers: this.table.byState(),
      warm: this.table.warmByFunction(),
      stems: this.table.stemsByRuntime(),
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.reaper);
    for (const line of this.lines.values()) line.close();
    await this.workers.stop();
    await rm(this.linesDir, { recursive: true, force: true }).catch(() => undefined);
    await rm(join(this.o.dataDir, 'slots'), { recursive: true, force: true }).catch(() => undefined);
  }

  private onReady(): void {
    if (this.sweep === 'todo') {
      // Before anything of this life exists, what an earlier life of this node left behind goes; nothing
      // is created until that is done (the sweep would take it too).
      const w = this.workers.ready()[0];
      if (!w) return;
      this.sweep = 'running';
      void this.workers
        .job(w, { type: 'sweep' })
        .then(
          (r) => {
            if (r.removed) this.o.log.info({ removed: r.removed }, 'removed containers left by an earlier run');
          },
          () => undefined,
        )
        .finally(() => {
          this.sweep = 'done';
          this.dispatch();
        });
      return;
    }
    this.dispatch();
  }

  private onWorkerGone(name: string): void {
    for (const r of this.table.ownedBy(name)) {
      this.orphans.add(r.id);
      this.lines.get(r.id)?.close();
      this.forget(r);
    }
    if (this.stopping) return;
    // What it held (and a create of its that the engine finishes late) is removed by another miniworker.
    const sweep = (): void =>
      void this.chores.push({ run: (w) => this.workers.job(w, { type: 'sweep', miniworker: name }).then(() => undefined) });
    sweep();
    setTimeout(() => {
      sweep();
      this.dispatch();
    }, 5000).unref();
  }

  // A container's process ended on its own: a call on its line learns it from the line; one waiting for
  // its loader to dial in, at once; one holding no call is removed.
  private onExited(id: string): void {
    const r = this.table.get(id);
    if (!r) return;
    this.lines.get(id)?.close(new LineClosed('the container exited'));
    if (r.state === 'warm' || r.state === 'idle') void this.discard(r);
  }

  // Hands out chores first, then calls in arrival order; a call that must wait does not hold up the next.
  private dispatch(): void {
    if (this.stopping || this.sweep !== 'done') return;
    for (let ready = this.workers.ready(); this.chores.length && ready.length; ready = this.workers.ready()) {
      // A chore's failure was said where it happened (a miniworker that died, its own log line); the
      // pool carries on.
      this.chores
        .shift()!
        .run(this.leastLoaded(ready))
        .catch((e: unknown) => this.o.log.debug({ err: errText(e) }, 'a chore did not finish'));
    }
    for (let i = 0; i < this.queue.length;) {
      const work = this.queue[i]!;
      const d = decide(this.table, {
        // Policy none runs the `run` command, which cannot answer a web request in a platform's form: a
        // web call of a function in another platform's convention gets a container of its own (a loader
        // to answer it) that is removed after it.
        policy: ownContainer(work) ? 'function' : work.policy,
        key: fnKey(work.fn.functionName, work.fn.version),
        runtime: work.runtime.name,
        stemsAllowed: !work.fn.settings.network,
        ready: this.workers.ready(),
        leaving: this.workers.leaving(),
      });
      if (d.kind === 'wait') {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      if (ownContainer(work)) work.spend = true;
      void this.serve(work, d);
    }
    this.replenish();
  }

  // Carries out one decision for one call and reports the outcome. The synchronous part of each branch
  // claims its container or miniworker, so the next decision sees them taken.
  private async serve(work: Work, d: Exclude<Decision, { kind: 'wait' }>): Promise<void> {
    const k = `${work.callNum}:${work.replica ?? ''}`;
    const a: { work: Work; container?: string; run?: { owner: string; name: string } } = { work };
    this.active.set(k, a);
    let outcome: CallOutcome;
    try {
      outcome = await this.execute(work, d, a);
    } catch (e) {
      if (e instanceof Requeue || (e instanceof WorkerDied && work.fn.settings.retry !== false)) {
        this.active.delete(k);
        if (!this.cancelled.delete(k) && !this.stopping) {
          this.o.log.warn({ callNum: work.callNum, why: errText(e) }, 'call goes back to the queue');
          this.queue.unshift(work);
        }
        this.dispatch();
        return;
      }
      const error =
        e instanceof WorkerDied
          ? `${e.message}; not retried (the function has retry=false)`
          : `zfaas could not run the function: ${errText(e)}`;
      outcome = { status: 'ERROR', result: '', error };
    }
    this.active.delete(k);
    // Its container may be free again: a call that waited for it goes now.
    if (!this.cancelled.delete(k)) this.o.onResult(work, outcome);
    this.dispatch();
  }

  private async execute(
    work: Work,
    d: Exclude<Decision, { kind: 'wait' }>,
    a: { container?: string; run?: { owner: string; name: string } },
  ): Promise<CallOutcome> {
    const key = fnKey(work.fn.functionName, work.fn.version);
    switch (d.kind) {
      case 'once': {
        const name = this.newId('call');
        a.run = { owner: d.worker, name };
        const reply = await this.workers.job(d.worker, { type: 'run', jobId: ++this.jobSeq, job: this.runJob(work, name) });
        return reply.outcome;
      }
      case 'use': {
        const rec = this.table.move(d.id, 'busy')!;
        a.container = rec.id;
        return rec.lined ? this.callLine(rec, work) : this.exec(rec, work);
      }
      case 'adopt': {
        const rec = this.table.move(d.id, 'loading')!;
        a.container = rec.id;
        rec.key = key;
        this.stems.tookOne(rec.runtime);
        const reply = await this.workers
          .job(d.worker, { type: 'adopt', id: rec.id, treeDir: work.treeDir, slotDir: rec.slotDir!, limits: limitsOf(work.fn) })
          .catch((e: Error) => ({ ok: false, error: errText(e) }));
        if (!reply.ok) {
          // The stem cell cannot take it: the call is decided again (a fresh container, most likely).
          this.o.log.warn({ container: rec.id, err: reply.error }, 'could not put the function into a stem cell');
          void this.discard(rec);
          throw new Requeue();
        }
        return this.loadAndCall(rec, work);
      }
      case 'create': {
        const rec = await this.startContainer(d.worker, { key, runtime: work.runtime, fn: work.fn, treeDir: work.treeDir, forCall: true });
        if (!rec.ok) return { status: 'ERROR', result: '', error: `zfaas could not start a container for the function: ${rec.error}` };
        a.container = rec.rec.id;
        if (!rec.rec.lined) {
          this.table.move(rec.rec.id, 'busy');
          return this.exec(rec.rec, work);
        }
        return this.loadAndCall(rec.rec, work);
      }
    }
  }

  // Creates a held container on a miniworker: a stem cell (no fn), or one for a function, loaded and
  // left warm (preload) or taken for the call that asked for it (forCall: left in `loading`).
  private async startContainer(
    worker: string,
    c: { key: string; runtime: Runtime; fn?: FunctionMeta; treeDir?: string; forCall?: boolean },
  ): Promise<{ ok: true; rec: ContainerRec } | { ok: false; error: string }> {
    const id = this.newId(c.fn ? 'fn' : 'stem');
    const lined = c.runtime.loader !== undefined;
    const slotDir = c.fn ? undefined : join(this.o.dataDir, 'slots', id);
    const rec = this.table.add({ id, owner: worker, key: c.key, runtime: c.runtime.name, lined, slotDir });
    const reply = this.workers.job(
      worker,
      (async () => {
        if (slotDir) await makeSlot(slotDir);
        const lineDir = lined ? join(this.linesDir, id) : undefined;
        if (lineDir) this.lines.set(id, await LoaderLine.listen(lineDir));
        return { type: 'create' as const, plan: { id, runtime: c.runtime, fn: c.fn, treeDir: slotDir ?? c.treeDir!, lineDir } };
      })(),
    );
    try {
      const r = await reply;
      if (!r.ok) throw new Error(r.error ?? 'create failed');
      this.table.move(id, 'starting');
      const line = this.lines.get(id);
      if (line) await line.ready(START_TIMEOUT_MS);
      if (!c.fn) {
        this.table.move(id, 'warm');
        this.stems.started(c.runtime.name, true);
      } else if (c.forCall) {
        this.table.move(id, 'loading');
      } else {
        await this.load(rec, c.fn, c.runtime, START_TIMEOUT_MS);
        this.table.move(id, 'warm');
      }
      return { ok: true, rec };
    } catch (e) {
      if (!c.fn) {
        const delay = this.stems.started(c.runtime.name, false);
        this.o.log.warn({ runtime: c.runtime.name, retryInMs: delay, err: errText(e) }, 'a stem cell did not start; trying again later');
        setTimeout(() => this.dispatch(), delay).unref();
      } else if (!c.forCall) {
        this.o.log.warn({ key: c.key, err: errText(e) }, 'warm container did not start');
      }
      if (e instanceof WorkerDied) throw e;
      void this.discard(rec);
      return { ok: false, error: errText(e) };
    }
  }

  private async load(rec: ContainerRec, fn: FunctionMeta, rt: Runtime, timeoutMs: number): Promise<void> {
    const line = this.lines.get(rec.id);
    if (!line) return; // exec mode: nothing to load
    const r = await line.request(
      { op: 'load', dir: rt.path, handler: fn.settings.handler ?? null, env: functionEnv(fn, rt), format: fn.settings.format ?? 'auto' },
      timeoutMs,
    );
    if (r.op === 'loaded' && r.ok) return;
    throw new LoadFailed(r.op === 'loaded' || r.op === 'error' ? (r.error ?? 'the function could not be loaded') : 'unexpected reply');
  }

  private async loadAndCall(rec: ContainerRec, work: Work): Promise<CallOutcome> {
    try {
      await this.load(rec, work.fn, work.runtime, work.fn.settings.timeout * 1000);
    } catch (e) {
      // A function that cannot load (no handler, a syntax error) fails its call; the container is spent.
      void this.discard(rec);
      const error = e instanceof LineTimeout ? 'the function did not finish loading within its timeout' : errText(e);
      return { status: 'ERROR', result: '', error };
    }
    this.table.move(rec.id, 'busy');
    return this.callLine(rec, work);
  }

  // One call over the container's line: no process starts, nothing passes through Docker.
  private async callLine(rec: ContainerRec, work: Work): Promise<CallOutcome> {
    const line = this.lines.get(rec.id);
    const started = Date.now();
    const timeoutS = work.fn.settings.timeout;
    const deadline = started + timeoutS * 1000;
    try {
      if (!line) throw new LineClosed('the container has no line');
      if (!inSync(work.secrets, (rec.secrets ??= new Map()))) await this.giveSecrets(line, rec, work.secrets ?? []);
      const r = await line.request(
        {
          op: 'call',
          id: ++this.callSeq,
          params: paramsOf(work.params),
          env: callEnv({ callNum: work.callNum, replica: work.replica, attempt: work.attempt, deadline }),
          ...(work.http ? { http: work.http } : {}),
        },
        timeoutS * 1000,
      );
      const durationMs = Date.now() - started;
      if (r.op === 'error') throw new LineBroken(`the loader refused the call: ${r.error}`);
      if (r.op !== 'result') throw new LineBroken('unexpected reply');
      let logs = r.logs ?? '';
      // A call that leaves processes behind (a fork bomb, a daemon, a miner) spends its container.
      if (r.stray && r.stray > 0) {
        void this.discard(rec);
        logs += `${logs && !logs.endsWith('\n') ? '\n' : ''}[zfaas: the call left ${r.stray} process${r.stray === 1 ? '' : 'es'} running; the container was removed]\n`;
      } else if (rec.calls >= RECYCLE_AFTER_CALLS || work.spend || rec.spent) void this.discard(rec);
      else if (rec.state === 'busy') this.table.move(rec.id, 'idle');
      if (r.ok && r.http !== undefined) {
        // A web answer is checked like a request: what comes out of a container is untrusted.
        const checked = checkResponse(r.http);
        if (typeof checked === 'string') return { status: 'ERROR', result: '', error: `malformed response: ${checked}`, logs, durationMs };
        return { status: 'DONE', result: textPrefix(checked.body), logs, durationMs, response: checked };
      }
      if (r.ok) {
        const result = (r.result ?? '').slice(0, RESULT_LIMIT);
        return { status: 'DONE', result: r.truncated ? result + TRUNCATION_MARK : result, logs, durationMs };
      }
      return { status: 'ERROR', result: '', error: r.error ?? 'the function failed', logs, durationMs };
    } catch (e) {
      const durationMs = Date.now() - started;
      if (e instanceof LineTimeout) {
        void this.discard(rec);
        return { status: 'TIMEOUT', result: '', error: `function ran past its timeout of ${timeoutS} s and was killed`, durationMs };
      }
      if (e instanceof LineBroken) {
        void this.discard(rec);
        return { status: 'ERROR', result: '', error: `${e.message}: the container was removed`, durationMs };
      }
      // The miniworker holding the container died: the call was its job as much as the container was.
      if (this.orphans.delete(rec.id)) throw new WorkerDied('the miniworker holding its container died');
      // The loader went away during the call: out of memory, process.exit(), a crash in native code.
      const exit = await this.discard(rec, true);
      return { status: 'ERROR', result: '', error: diedText(exit, work.fn.settings.memory), durationMs };
    }
  }

  // Brings the container's secrets folder to what the call needs: the values that are new or changed since
  // it last got them, and the names to keep (a secret the function no longer names is removed). Any failure
  // breaks the line: what the folder holds is not known any more, so the container goes.
  private async giveSecrets(line: LoaderLine, rec: ContainerRec, want: SecretFile[]): Promise<void> {
    const held = (rec.secrets ??= new Map());
    const files: Record<string, string> = {};
    for (const f of want) if (held.get(f.name) !== f.stamp) files[f.name] = f.value;
    held.clear(); // until the loader says it has them
    let r;
    try {
      r = await line.request({ op: 'secrets', dir: SECRETS_DIR, files, keep: want.map((f) => f.name) }, SECRETS_TIMEOUT_MS);
    } catch (e) {
      if (e instanceof LineTimeout) throw new LineBroken("the loader did not write the function's secrets in time");
      throw e;
    }
    if (r.op === 'error') throw new LineBroken(`the loader refused the function's secrets: ${r.error}`);
    if (r.op !== 'secretsSet') throw new LineBroken('unexpected reply');
    if (!r.ok) throw new LineBroken(`the loader could not write the function's secrets: ${r.error ?? 'no reason given'}`);
    for (const f of want) held.set(f.name, f.stamp);
  }

  // A call as a `docker exec` in a held container of a runtime without a loader.
  private async exec(rec: ContainerRec, work: Work): Promise<CallOutcome> {
    const name = this.newId('exec');
    const reply = await this.workers.job(rec.owner, { type: 'exec', jobId: ++this.jobSeq, id: rec.id, job: this.runJob(work, name) });
    if (reply.alive && rec.spent) void this.discard(rec);
    else if (reply.alive) {
      if (rec.state === 'busy') this.table.move(rec.id, 'idle');
    } else this.forget(rec);
    return reply.outcome;
  }

  private runJob(work: Work, name: string): RunJob {
    return {
      name,
      callNum: work.callNum,
      params: work.params,
      fn: work.fn,
      runtime: work.runtime,
      treeDir: work.treeDir,
      replica: work.replica,
      attempt: work.attempt,
      deadline: Date.now() + work.fn.settings.timeout * 1000,
      ...(work.secrets?.length ? { secrets: work.secrets } : {}),
    };
  }

  // Keeps each stem runtime at its target, within the node's cap.
  private replenish(): void {
    if (this.stopping) return;
    for (const name of this.stems.list()) {
      const rt = this.stemRuntimes.get(name);
      if (!rt || !this.stems.mayStart(name)) continue;
      const starting = this.stemsStarting.get(name) ?? 0;
      let missing = this.stems.target(name) - this.table.count(rtKey(name), ['creating', 'starting', 'warm']) - starting;
      while (missing-- > 0 && this.table.live() + this.startingStems() < this.settings.maxContainers) {
        this.stemsStarting.set(name, (this.stemsStarting.get(name) ?? 0) + 1);
        this.chores.push({
          run: (w) => {
            this.stemsStarting.set(name, (this.stemsStarting.get(name) ?? 1) - 1);
            return this.startContainer(w, { key: rtKey(name), runtime: rt }).then(() => undefined);
          },
        });
      }
    }
  }

  private startingStems(): number {
    let n = 0;
    for (const v of this.stemsStarting.values()) n += v;
    return n;
  }

  private reap(): void {
    // A miniworker that is leaving takes its containers along once they serve no call.
    for (const name of this.workers.leaving()) {
      for (const r of this.table.ownedBy(name)) if (r.state === 'warm' || r.state === 'idle') void this.discard(r);
    }
    this.workers.dismiss();
    const evict = toEvict(this.table, {
      idleTtlMs: this.settings.idleTtlMs,
      maxContainers: this.settings.maxContainers,
      stemTarget: (rt) => this.stems.target(rt),
      stemTtlMs: STEM_TTL_MS,
    });
    for (const r of evict) {
      this.o.log.debug({ container: r.id, key: r.key }, 'removing idle container');
      void this.discard(r);
    }
    if (this.stems.list().length) this.dispatch();
  }

  // Tells its miniworker to remove a container; with `report`, says how it ended.
  private async discard(r: ContainerRec, report = false): Promise<ExitReport | undefined> {
    if (!this.table.get(r.id) || r.state === 'removing') return undefined;
    this.table.move(r.id, 'removing');
    this.lines.get(r.id)?.close();
    const exit = await this.workers.remove(r.owner, r.id, report);
    this.forget(r);
    return exit;
  }

  private forget(r: ContainerRec): void {
    if (this.table.get(r.id)) this.table.move(r.id, 'removed');
    this.workers.dismiss();
    this.lines.get(r.id)?.close();
    this.lines.delete(r.id);
    if (r.slotDir) void rm(r.slotDir, { recursive: true, force: true }).catch(() => undefined);
  }

  private leastLoaded(ready: string[]): string {
    let best = ready[0]!;
    let bestN = Infinity;
    for (const w of ready) {
      const n = this.table.ownedBy(w).length;
      if (n < bestN) [best, bestN] = [w, n];
    }
    return best;
  }

  private newId(kind: string): string {
    return `zfaas-${this.o.nodeId}-${kind}-${randomBytes(4).toString('hex')}`.slice(0, 120);
  }
}

class LoadFailed extends Error {}

const ownContainer = (w: Work): boolean =>
  w.http !== undefined &&
  w.policy === 'none' &&
  w.runtime.loader !== undefined &&
  !['auto', 'json'].includes(w.fn.settings.format ?? 'auto');

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

// A function's web response as a proxy may send it on, or what is wrong with it.
export function checkResponse(raw: unknown): WebResponse | string {
  const r = HttpResponseSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    return `${issue?.path.join('.') || 'response'}: ${issue?.message ?? 'invalid'}`;
  }
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(r.data.headers)) {
    if (!TOKEN.test(name)) return `header name ${JSON.stringify(name.slice(0, 60))} is not a token`;
    for (const v of Array.isArray(value) ? value : [value]) if (/[\r\n\0]/.test(v)) return `header ${name} contains CR, LF or NUL`;
    const lower = name.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && lower !== 'content-length') headers[lower] = value; // the API sets its own length
  }
  const body = r.data.body;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0) return 'body is not valid base64';
  return { status: r.data.status, headers, body, bytes: Buffer.byteLength(body, 'base64') };
}

// What the call record keeps of a web answer's body: its start, when it is text.
function textPrefix(b64: string | undefined): string {
  if (!b64) return '';
  const bytes = Buffer.from(b64.slice(0, 1368), 'base64'); // about 1 KiB
  const text = bytes.toString('utf8');
  return text.includes('\uFFFD') ? '' : text;
}

// Why a loader went away in the middle of a call, in the words a function's author needs.
function diedText(exit: ExitReport | undefined, memoryMiB: number): string {
  if (exit?.flooded) return `function wrote more than ${MAX_OUTPUT / (1024 * 1024)} MiB of output and was stopped`;
  if (exit?.oomKilled) return `function was killed: it exceeded its memory limit of ${memoryMiB} MiB`;
  const tail = exit?.stderr.trim().slice(-4000) ?? '';
  const code = exit?.exitCode;
  return `the function process exited${code !== null && code !== undefined ? ` (code ${code})` : ''}${tail ? `: ${tail}` : ''}`;
}

async function makeSlot(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chown(dir, UID, UID);
}

export type { JobCommand };
