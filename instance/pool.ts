// The node's pool: the calls the node accepted wait here, placement.ts decides what each one gets, and the
// pool carries each decision out at once: a container's session (session.ts) runs the call, Docker work
// goes to a miniworker (miniworkers.ts) on a lease of its job slot. Stem cells follow stems.ts; spare
// containers are reaped. A miniworker that dies puts its call back in the queue (one crashing loses no
// job); its containers count until a sweep has removed them. Sizes change at any time.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, FunctionMeta, Runtime } from '../common/model.js';
import { failure } from '../common/faults.js';
import type { ColdStart } from '../protocol/broker.js';
import type { DepsJob, DepsRun, RunJob } from '../protocol/worker.js';
import { ContainerTable, fnKey, rtKey } from './containers.js';
import { NotBegun } from './line.js';
import { Miniworkers, oneJob, WorkerDied, type JobCommand, type Lease, type WorkerHooks, type WorkerPort } from './miniworkers.js';
import { Pace, type Verdict } from './pace.js';
import { plan, quickBound, toEvict, type CallNeed, type Decision } from './placement.js';
import { ContainerSession, Gone, slotsOf, StemRefused, type SessionDeps } from './session.js';
import { StemPlanner } from './stems.js';
import { installBridge, loadLimitMs } from './image-functions.js';
import type { Work } from './work.js';

export type { Work } from './work.js';
export { checkResponse } from './session.js';

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
  onResult(work: Work, outcome: CallOutcome, start?: ColdStart): void; // start: the run began with a container start
  onStart?(work: Work): void; // a run of the call begins (also again, after its miniworker died)
  onSlots?(): void; // the calls its containers may take beyond one each (spareSlots) changed
  workers?(hooks: WorkerHooks): WorkerPort; // the real miniworkers unless a test brings fakes
  lateSweepMs?: number; // when the second sweep of what a dead miniworker (or an earlier life) made goes (default 5 s)
  recycleAfterCalls?: number; // a container whose loader grows with each call goes after this many (session.ts)
  cpus?: number; // the machine's CPUs, which bound a quick function's containers (placement.ts), unless a test says
}

const STEM_TTL_MS = 60_000; // a stem cell beyond its runtime's target goes after this long unused
const PRELOAD_TIMEOUT_MS = 30_000; // a preloaded function loads within this
const WARM_RETRY_MS = 30_000; // a floor whose container failed to start tries again after this long
const MAX_REQUEUES = 3; // a call whose miniworker died under it this many times ends in ERROR

// A stem cell on a full node takes the place of a function container only once that one has been idle this
// long: a function used a moment ago is likelier to be called again than a new function is to arrive.
const STEM_EVICTS_IDLE_MS = 10_000;

// Docker work waiting for a free miniworker: urgent (a sweep, a dependencies step a call waits for) or
// spare (a stem cell, a preload); `room`: it makes a container.
interface Chore {
  urgent: boolean;
  room: boolean;
  evicts?: number; // may remove idle function containers unused this long to make room (see placement.ts)
  run(lease: Lease): Promise<void>;
  drop?(): void; // a spare chore there was no room for
}

// A call being served: what it holds, so that a cancel can stop it.
interface Active {
  work: Work;
  begun: number; // Date.now() when the node decided how to serve it
  how: Decision['kind'];
  session?: ContainerSession;
  run?: { owner: string; name: string }; // a fresh container of policy none
  cancelled?: boolean;
}

export class Pool {
  readonly table = new ContainerTable();
  private readonly workers: WorkerPort;
  private readonly sessions = new Map<string, ContainerSession>();
  private readonly stems: StemPlanner;
  private readonly queue: Work[] = [];
  private readonly requeues = new WeakMap<Work, number>();
  // Each waiting call as placement sees it, made once when it came to the node (a call put back keeps its
  // arrival); its pace and wait are brought up to date at each decision, in place: a burst of waiting calls
  // is decided on again at every call's end, and a new object for each of them each time showed in profiles.
  private readonly needs = new WeakMap<Work, { need: CallNeed; arrived: number }>();
  private readonly chores: Chore[] = [];
  private readonly active = new Map<string, Active>();
  private readonly stemsStarting = new Map<string, number>();
  private readonly stemRuntimes = new Map<string, Runtime>(); // the runtimes this node keeps stem cells of
  private transient = 0; // fresh containers (policy none) and dependency steps under way
  private spare = 0; // spareSlots() when the node was last told
  private readonly ghosts = new Map<string, number>(); // such containers of miniworkers that died, until swept
  private readonly deps: SessionDeps;
  private settings: PoolSettings;
  private sweep: 'todo' | 'running' | 'done' = 'todo';
  private stopping = false;
  private dispatching = false;
  private again = false;
  private jobSeq = 0;
  private reaper?: NodeJS.Timeout;
  // Functions' floors on this node by function name (one version each), and their containers on the way.
  private readonly floors = new Map<string, { key: string; fn: FunctionMeta; runtime: Runtime; treeDir: string; floor: number }>();
  private readonly warming = new Map<string, number>();
  private readonly warmFailed = new Map<string, number>(); // key -> when a warm container of it last failed to start
  private readonly pace = new Pace(); // where each function's warm calls spend their time
  private recheckTimer?: NodeJS.Timeout;
  private recheckAt = 0;
  private readonly cpus: number;

  constructor(private readonly o: PoolOptions) {
    this.settings = { ...o.settings };
    this.cpus = o.cpus ?? availableParallelism();
    this.stems = new StemPlanner({ min: o.settings.stemCells, max: o.settings.stemCellsMax, windowMs: STEM_TTL_MS });
    const hooks: WorkerHooks = {
      onReady: () => this.onReady(),
      onGone: (name) => this.onWorkerGone(name),
      onExited: (id) => this.sessions.get(id)?.exited(),
      mayLeave: (name) => this.table.ownedBy(name).length === 0,
    };
    this.workers = o.workers?.(hooks) ?? new Miniworkers({ address: o.address, nodeId: o.nodeId, script: o.script, log: o.log, ...hooks });
    this.deps = {
      table: this.table,
      workers: this.workers,
      linesDir: join(o.dataDir, 'lines'),
      slotsDir: join(o.dataDir, 'slots'),
      bridgeDir: join(o.dataDir, 'bridge'),
      log: o.log,
      recycleAfterCalls: o.recycleAfterCalls,
      paced: (key, tookUs, roundTripMs) => this.pace.note(key, tookUs, roundTripMs),
      runJob: (work, name) => this.runJob(work, name),
      jobId: () => ++this.jobSeq,
      forgotten: (s) => {
        this.sessions.delete(s.id);
        this.workers.dismiss();
        this.dispatch(); // its room is free
      },
      slotsChanged: () => {
        this.dispatch(); // calls may go into it (or no longer wait for it)
        const spare = this.table.spareSlots();
        if (spare !== this.spare) {
          this.spare = spare;
          this.o.onSlots?.();
        }
      },
    };
  }

  async start(): Promise<void> {
    await rm(this.deps.linesDir, { recursive: true, force: true });
    await mkdir(this.deps.linesDir, { recursive: true, mode: 0o700 });
    await installBridge(this.deps.bridgeDir!, this.o.log);
    await this.workers.start(this.settings.miniworkers);
    this.reaper = setInterval(() => this.reap(), 1000);
    this.reaper.unref();
  }

  submit(work: Work): void {
    if (ownContainer(work)) work.spend = true;
    this.needs.set(work, { need: needOfWork(work), arrived: Date.now() });
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

  // Policy `function`: a warm container holding the function before its first call, where there is room.
  preload(fn: FunctionMeta, runtime: Runtime, treeDir: string): void {
    const key = fnKey(fn.functionName, fn.version);
    if (this.table.count(key) > 0) return;
    this.chores.push(this.warmChore(key, fn, runtime, treeDir, () => this.table.count(key) === 0));
    this.dispatch();
  }

  // A function's floor on this node (its `minWarm` share, as the API spreads it): at least `floor`
  // containers holding that version, made as spare chores and kept past the idle time; calls use them as
  // any. Undefined or 0: the function has none here (and its other versions' floors go too).
  keepWarm(name: string, want?: { fn: FunctionMeta; runtime: Runtime; treeDir: string; floor: number }): void {
    if (!want || want.floor <= 0) this.floors.delete(name);
    else this.floors.set(name, { key: fnKey(name, want.fn.version), ...want });
    if (this.warmFailed.size > 1000) this.warmFailed.clear();
    this.topUp();
  }

  // Chores for the containers floors still lack (each counted while it is on its way).
  private topUp(): void {
    let added = false;
    for (const f of this.floors.values()) {
      if (Date.now() - (this.warmFailed.get(f.key) ?? -Infinity) < WARM_RETRY_MS) continue; // not in a loop
      const missing = f.floor - this.table.count(f.key) - (this.warming.get(f.key) ?? 0);
      for (let i = 0; i < missing; i++) {
        this.warming.set(f.key, (this.warming.get(f.key) ?? 0) + 1);
        const done = (): void => {
          this.warming.set(f.key, (this.warming.get(f.key) ?? 1) - 1);
          if (!this.warming.get(f.key)) this.warming.delete(f.key);
        };
        const chore = this.warmChore(f.key, f.fn, f.runtime, f.treeDir, () => this.floorOf(f.key) > this.table.count(f.key));
        this.chores.push({ ...chore, run: (lease) => chore.run(lease).finally(done), drop: () => (done(), chore.drop?.()) });
        added = true;
      }
    }
    if (added) this.dispatch();
  }

  private floorOf(key: string): number {
    for (const f of this.floors.values()) if (f.key === key) return f.floor;
    return 0;
  }

  // A spare chore that starts a container holding the function and loads it, while `wanted()` still holds.
  private warmChore(key: string, fn: FunctionMeta, runtime: Runtime, treeDir: string, wanted: () => boolean): Chore {
    return {
      urgent: false,
      room: true,
      evicts: 0, // its owner asked for it to be warm: room is made as for a call
      run: async (lease) => {
        if (!wanted()) return;
        const s = this.open({ owner: lease.worker, key, runtime, stem: false, slots: slotsOf(fn, runtime) });
        try {
          await s.start(lease, { fn, treeDir });
          await s.load(fn, loadLimitMs(fn, PRELOAD_TIMEOUT_MS));
          s.ready();
        } catch (e) {
          this.warmFailed.set(key, Date.now());
          this.o.log.warn({ key, err: errText(e) }, 'warm container did not start');
        }
      },
      drop: () => this.o.log.debug({ key }, 'no room for a warm container of the function now; its calls start one'),
    };
  }

  // The dependencies step of a function version, run by a miniworker in a container of its own.
  runDeps(deps: Omit<DepsJob, 'name'>): Promise<DepsRun> {
    return new Promise<DepsRun>((resolve, reject) => {
      this.chores.push({
        urgent: true,
        room: true,
        run: async (lease) => {
          this.transient++;
          let ghost = false;
          try {
            const reply = await lease.job({ type: 'deps', jobId: ++this.jobSeq, deps: { ...deps, name: this.newId('deps') } });
            resolve(reply.run);
          } catch (e) {
            ghost = e instanceof WorkerDied;
            reject(e as Error);
          } finally {
            this.transient--;
            if (ghost) this.haunt(lease.worker);
          }
        },
      });
      this.dispatch();
    });
  }

  // A version was replaced: its idle containers go now instead of after their TTL.
  retireOthers(name: string, keepVersion: number): void {
    for (const s of this.sessions.values()) {
      const r = s.rec;
      if (!r || !r.key.startsWith(`fn:${name}@`) || r.key === fnKey(name, keepVersion)) continue;
      if (r.state === 'idle' || r.state === 'warm') void s.discard();
    }
  }

  // A secret a function version names is gone: its containers hold a value that must not be read any more.
  // Spare ones go now, busy ones once their call ends (the function cannot run again without the secret).
  revoke(name: string, version: number): void {
    const key = fnKey(name, version);
    for (const s of this.sessions.values()) if (s.rec?.key === key) s.spend();
  }

  // Whether a container of that function version is on the node (in any state).
  holds(name: string, version: number): boolean {
    const key = fnKey(name, version);
    for (const s of this.sessions.values()) if (s.rec?.key === key) return true;
    return false;
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
  // are dropped, running ones cancelled (their containers killed, also one still being made for them).
  // Whether the pool had any.
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
    for (const a of this.active.values()) {
      if (a.work.callNum !== callNum || keep(a.work)) continue;
      had = true;
      a.cancelled = true;
      if (a.session) a.session.cancelCall(a.work);
      else if (a.run) void this.workers.remove(a.run.owner, a.run.name);
    }
    return had;
  }

  // Takes every call still waiting in the queue out of it (the node is draining): their numbers, once each.
  withdraw(): number[] {
    const calls = new Set(this.queue.map((w) => w.callNum));
    for (const a of this.active.values()) calls.delete(a.work.callNum); // a replica runs: it stays
    for (let i = this.queue.length - 1; i >= 0; i--) if (calls.has(this.queue[i]!.callNum)) this.queue.splice(i, 1);
    return [...calls];
  }

  stats(): {
    miniworkers: number;
    busy: number;
    queued: number;
    containers: Record<string, number>;
    warm: Record<string, number>;
    stems: Record<string, number>;
    transient: number;
  } {
    return {
      miniworkers: this.workers.size,
      busy: this.workers.busy(),
      queued: this.queue.length,
      containers: this.table.byState(),
      warm: this.table.warmByFunction(),
      stems: this.table.stemsByRuntime(),
      transient: this.onEngine() - this.table.all().length,
    };
  }

  // Calls its containers of several calls at once may take beyond one each: the node takes that many more.
  spareSlots(): number {
    return this.table.spareSlots();
  }

  // Every miniworker removes what it holds and exits (what runs is cut short: the node drained first).
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.recheckTimer);
    clearInterval(this.reaper);
    for (const s of this.sessions.values()) s.closeLine();
    await this.workers.stop();
    // Folders already gone are what we want.
    await rm(this.deps.linesDir, { recursive: true, force: true }).catch(() => undefined);
    await rm(this.deps.slotsDir, { recursive: true, force: true }).catch(() => undefined);
  }

  // Containers on the engine, as far as this node knows: its table, and the fresh ones under way.
  private onEngine(): number {
    let n = this.table.all().length + this.transient;
    for (const g of this.ghosts.values()) n += g;
    return n;
  }

  private open(o: { owner: string; key: string; runtime: Runtime; stem: boolean; slots?: number }): ContainerSession {
    const s = ContainerSession.open(this.deps, { id: this.newId(o.stem ? 'stem' : 'fn'), ...o });
    this.sessions.set(s.id, s);
    return s;
  }

  // A fresh container of a miniworker that died under it: counted until a sweep of what it held.
  private haunt(worker: string): void {
    this.ghosts.set(worker, (this.ghosts.get(worker) ?? 0) + 1);
  }

  private onReady(): void {
    if (this.sweep === 'todo') {
      // Before anything of this life exists, what an earlier life of this node left behind goes; nothing
      // is created until that is done (the sweep would take it too).
      const w = this.workers.ready()[0];
      if (!w) return;
      this.sweep = 'running';
      void oneJob(this.workers, w, { type: 'sweep' })
        .then(
          (r) => {
            if (r.removed) this.o.log.info({ removed: r.removed }, 'removed containers left by an earlier run');
          },
          () => undefined, // that miniworker died: the next ones' sweeps of it remove what it made
        )
        .finally(() => {
          this.sweep = 'done';
          this.dispatch();
          setTimeout(() => this.sweepEarlierLife(), this.o.lateSweepMs ?? 5000).unref();
        });
      return;
    }
    this.dispatch();
  }

  // A create an earlier life's miniworker sent just before it died may be finished by the engine after
  // the first sweep: a second one, later, removes what is of this node but not of this life.
  private sweepEarlierLife(): void {
    if (this.stopping) return;
    this.chores.push({
      urgent: true,
      room: false,
      run: async (lease) => {
        const r = await lease.job({ type: 'sweep', keep: this.workers.life });
        if (r.removed) this.o.log.info({ removed: r.removed }, 'removed containers an earlier run made after it ended');
      },
    });
    this.dispatch();
  }

  // A miniworker died: its containers went with it or go with a sweep by another miniworker, and are
  // counted until then. A second sweep later takes a create the engine finished after the first.
  private onWorkerGone(name: string): void {
    const late: ContainerSession[] = [];
    const now: ContainerSession[] = [];
    for (const s of this.sessions.values()) if (s.owner === name) (s.lostOwner() ? late : now).push(s);
    if (this.stopping) return;
    const sweep = (forget: ContainerSession[], last: boolean): void => {
      const chore: Chore = {
        urgent: true,
        room: false,
        run: async (lease) => {
          try {
            await lease.job({ type: 'sweep', miniworker: name });
          } catch (e) {
            // The sweeper died too: another one sweeps (the containers stay counted until then).
            if (!this.stopping) this.chores.push(chore);
            throw e;
          }
          for (const s of forget) s.forget(true);
          if (last) this.ghosts.delete(name);
        },
      };
      this.chores.push(chore);
    };
    sweep(now, false);
    setTimeout(() => {
      sweep(late, true);
      this.dispatch();
    }, this.o.lateSweepMs ?? 5000).unref();
    this.dispatch();
  }

  // Asks placement.ts what happens next and carries it out before anything else can change the table.
  private dispatch(): void {
    if (this.stopping || this.sweep !== 'done') return;
    if (this.dispatching) {
      this.again = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.again = false;
        this.replenish();
        const queue = [...this.queue];
        const chores = [...this.chores];
        const now = Date.now();
        const verdicts = new Map<string, Verdict>(); // each waiting function's pace, looked up once
        const needOf = (w: Work): CallNeed => {
          let q = this.needs.get(w);
          if (!q) this.needs.set(w, (q = { need: needOfWork(w), arrived: now }));
          const need = q.need;
          let v = verdicts.get(need.key);
          if (!v) verdicts.set(need.key, (v = this.pace.verdict(need.key, now)));
          need.quickMs = v.quickMs;
          need.unjudged = v.unjudged;
          need.waitedMs = now - q.arrived;
          return need;
        };
        const actions = plan({
          containers: this.table.all(),
          transient: this.onEngine() - this.table.all().length,
          calls: queue.map(needOf),
          chores,
          ready: this.workers.ready(),
          leaving: this.workers.leaving(),
          maxContainers: this.settings.maxContainers,
          now,
          cpus: this.cpus,
        });
        if (actions.length === 0) break;
        const before = this.onEngine();
        const calls = new Set<Work>();
        const done = new Set<Chore>();
        for (const a of actions) {
          if (a.kind === 'call') calls.add(queue[a.index]!);
          else if (a.kind === 'chore' || a.kind === 'drop') done.add(chores[a.index]!);
        }
        removeAll(this.queue, calls);
        removeAll(this.chores, done);
        for (const a of actions) {
          if (a.kind === 'recheck') this.recheckIn(a.afterMs);
          else if (a.kind === 'evict') void this.sessions.get(a.id)?.discard();
          else if (a.kind === 'drop') chores[a.index]!.drop?.();
          else if (a.kind === 'chore') this.runChore(chores[a.index]!, a.worker);
          else this.serve(queue[a.index]!, a.decision);
        }
        const after = this.onEngine();
        if (after > this.settings.maxContainers && after > before)
          this.o.log.error({ containers: after, max: this.settings.maxContainers }, 'invariant broken: more containers than the limit');
      } while (this.again);
    } finally {
      this.dispatching = false;
    }
  }

  // Decides again after `ms`, unless an earlier decision is already due (a quick function's calls wait for
  // their busy containers only so long: placement.ts).
  private recheckIn(ms: number): void {
    const at = Date.now() + ms;
    if (this.recheckTimer && this.recheckAt <= at) return;
    clearTimeout(this.recheckTimer);
    this.recheckAt = at;
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined;
      this.dispatch();
    }, ms);
    this.recheckTimer.unref();
  }

  private runChore(c: Chore, worker: string): void {
    const lease = this.workers.claim(worker);
    c.run(lease)
      // A chore's failure was said where it happened (a miniworker that died, its own log line).
      .catch((e: unknown) => this.o.log.debug({ err: errText(e) }, 'a chore did not finish'))
      .finally(() => lease.release());
  }

  // Serves one call as decided. The synchronous part claims its container and miniworker.
  private serve(work: Work, d: Decision): void {
    const k = `${work.callNum}:${work.replica ?? ''}`;
    const a: Active = { work, begun: Date.now(), how: d.kind };
    this.active.set(k, a);
    this.o.log.debug({ callNum: work.callNum, attempt: work.attempt ?? 1, replica: work.replica, how: d.kind }, 'run starts');
    this.o.onStart?.(work);
    let outcome: Promise<CallOutcome>;
    try {
      outcome = this.execute(work, d, a);
    } catch (e) {
      outcome = Promise.reject(e as Error);
    }
    outcome.then(
      (o) => this.finish(k, a, o),
      (e: unknown) => this.failed(k, a, e),
    );
  }

  private execute(work: Work, d: Decision, a: Active): Promise<CallOutcome> {
    const key = fnKey(work.fn.functionName, work.fn.version);
    switch (d.kind) {
      case 'once': {
        const lease = this.workers.claim(d.worker);
        const name = this.newId('call');
        a.run = { owner: d.worker, name };
        this.transient++;
        let ghost = false;
        return lease
          .job({ type: 'run', jobId: ++this.jobSeq, job: this.runJob(work, name) })
          .then(
            (r) => r.outcome,
            (e: unknown) => {
              ghost = e instanceof WorkerDied;
              throw e;
            },
          )
          .finally(() => {
            this.transient--;
            if (ghost) this.haunt(d.worker);
            lease.release();
          });
      }
      case 'use': {
        const s = this.sessions.get(d.id)!;
        s.take(work);
        a.session = s;
        if (!d.worker) return s.call(work);
        const lease = this.workers.claim(d.worker);
        return s.exec(lease, work).finally(() => lease.release());
      }
      case 'behind': {
        const s = this.sessions.get(d.id)!;
        s.takeBehind(work);
        a.session = s;
        return s.call(work);
      }
      case 'adopt': {
        const s = this.sessions.get(d.id)!;
        const lease = this.workers.claim(d.worker);
        this.table.adopt(d.id, key, slotsOf(work.fn, work.runtime));
        this.stems.tookOne(s.runtime.name);
        a.session = s;
        return s
          .adopt(lease, work)
          .finally(() => lease.release())
          .then(() => s.loadAndCall(work));
      }
      case 'create': {
        const lease = this.workers.claim(d.worker);
        const s = this.open({ owner: d.worker, key, runtime: work.runtime, stem: false, slots: slotsOf(work.fn, work.runtime) });
        a.session = s;
        return this.createFor(s, lease, work, a);
      }
    }
  }

  // A container made for this call: a lined one serves it over its line once started; an exec one runs it
  // with the same lease, so its miniworker cannot be given other work between the create and the exec.
  private async createFor(s: ContainerSession, lease: Lease, work: Work, a: Active): Promise<CallOutcome> {
    try {
      try {
        await s.start(lease, { fn: work.fn, treeDir: work.treeDir });
      } catch (e) {
        if (e instanceof WorkerDied || a.cancelled) throw e;
        return failure('platform', `zfaas could not start a container for the function: ${errText(e)}`);
      }
      if (!s.lined) {
        s.take(work);
        return await s.exec(lease, work);
      }
    } finally {
      lease.release();
    }
    return s.loadAndCall(work);
  }

  private finish(k: string, a: Active, outcome: CallOutcome): void {
    this.release(k, a);
    if (!a.cancelled) this.o.onResult(a.work, outcome, coldStart(a, outcome, Date.now()));
    this.dispatch();
  }

  private failed(k: string, a: Active, e: unknown): void {
    this.release(k, a);
    const work = a.work;
    if (a.cancelled || this.stopping) return this.dispatch();
    let error: string;
    const retry = work.fn.settings.retry !== false;
    // A call that waited behind another in a container that went: it never began (or, unless certain, may
    // have), like a call whose miniworker died.
    if ((e instanceof WorkerDied && retry) || e instanceof StemRefused || (e instanceof NotBegun && (e.certain || retry))) {
      const n = (this.requeues.get(work) ?? 0) + 1;
      if (n <= MAX_REQUEUES) {
        this.requeues.set(work, n);
        this.o.log.warn({ callNum: work.callNum, why: errText(e) }, 'call goes back to the queue');
        this.queue.unshift(work);
        return this.dispatch();
      }
      error = `${errText(e)}; gave up after ${MAX_REQUEUES} tries on this node`;
    } else if (e instanceof WorkerDied) error = `${e.message}; not retried (the function has retry=false)`;
    else if (e instanceof NotBegun)
      error = `zfaas lost the container the call waited in (${e.message}); it may have begun; not retried (the function has retry=false)`;
    else if (e instanceof Gone) error = `zfaas lost the container of the call: ${e.message}`;
    else error = `zfaas could not run the function: ${errText(e)}`;
    this.o.onResult(work, failure('platform', error));
    this.dispatch();
  }

  // The call no longer holds its container: one left half made or marked busy goes.
  private release(k: string, a: Active): void {
    this.active.delete(k);
    if (a.session?.settle(a.work) && !a.cancelled)
      this.o.log.warn({ callNum: a.work.callNum, container: a.session.id }, 'a container was left behind by its call; removed');
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

  // Keeps each stem runtime at its target; placement.ts starts them only into room no call waits for.
  private replenish(): void {
    if (this.stopping) return;
    for (const name of this.stems.list()) {
      const rt = this.stemRuntimes.get(name);
      if (!rt || !this.stems.mayStart(name)) continue;
      const starting = this.stemsStarting.get(name) ?? 0;
      let missing = this.stems.target(name) - this.table.count(rtKey(name), ['creating', 'starting', 'warm']) - starting;
      while (missing-- > 0) {
        this.stemsStarting.set(name, (this.stemsStarting.get(name) ?? 0) + 1);
        const settled = (): void => void this.stemsStarting.set(name, (this.stemsStarting.get(name) ?? 1) - 1);
        this.chores.push({
          urgent: false,
          room: true,
          evicts: STEM_EVICTS_IDLE_MS, // the node's policy keeps stem cells: long-idle function containers make room
          run: (lease) => {
            settled();
            return this.startStem(lease, rt);
          },
          drop: settled,
        });
      }
    }
  }

  private async startStem(lease: Lease, rt: Runtime): Promise<void> {
    const s = this.open({ owner: lease.worker, key: rtKey(rt.name), runtime: rt, stem: true });
    try {
      await s.start(lease, {});
      s.ready();
      this.stems.started(rt.name, true);
    } catch (e) {
      if (e instanceof WorkerDied || e instanceof Gone) return;
      const delay = this.stems.started(rt.name, false);
      this.o.log.warn({ runtime: rt.name, retryInMs: delay, err: errText(e) }, 'a stem cell did not start; trying again later');
      setTimeout(() => this.dispatch(), delay).unref();
    }
  }

  private reap(): void {
    this.pace.prune();
    // A miniworker that is leaving takes its containers along once they serve no call.
    const leaving = new Set(this.workers.leaving());
    for (const s of this.sessions.values()) {
      const st = s.rec?.state;
      if (leaving.has(s.owner) && (st === 'warm' || st === 'idle')) void s.discard();
    }
    this.workers.dismiss();
    const evict = toEvict(this.table.all(), {
      idleTtlMs: this.settings.idleTtlMs,
      maxContainers: this.settings.maxContainers,
      stemTarget: (rt) => this.stems.target(rt),
      stemTtlMs: STEM_TTL_MS,
      floor: (key) => this.floorOf(key),
      quickBound: (key) => (this.pace.quickMs(key) === undefined ? undefined : quickBound(this.cpus)),
    });
    for (const r of evict) {
      this.o.log.debug({ container: r.id, key: r.key }, 'removing idle container');
      void this.sessions.get(r.id)?.discard();
    }
    if (this.stems.list().length) this.dispatch();
    this.topUp(); // a floor's container that went (removed, crashed, given way to a call) is made again
  }

  private newId(kind: string): string {
    return `zfaas-${this.o.nodeId}-${kind}-${randomBytes(4).toString('hex')}`.slice(0, 120);
  }
}

// Policy none runs the `run` command, which cannot answer a web request in a platform's form: a web call of
// a function in another platform's convention gets a container of its own (a loader to answer it) that
// is removed after it.
// An image function under policy none gets the same, for every call: its server is its only way to answer.
const ownContainer = (w: Work): boolean =>
  (w.fn.image !== undefined && w.policy === 'none') ||
  (w.http !== undefined &&
    w.policy === 'none' &&
    w.runtime.loader !== undefined &&
    !['auto', 'json'].includes(w.fn.settings.format ?? 'auto'));

function needOfWork(w: Work): CallNeed {
  return {
    key: fnKey(w.fn.functionName, w.fn.version),
    runtime: w.runtime.name,
    policy: ownContainer(w) ? 'function' : w.policy,
    stemsAllowed: !w.fn.settings.network,
    maxContainers: w.fn.settings.maxContainers,
    slots: slotsOf(w.fn, w.runtime),
    // An image function's bridge hands each call it reads to the image's server at once: none goes behind.
    ...(w.fn.image ? { inOrder: false } : {}),
  };
}

function removeAll<T>(list: T[], gone: Set<T>): void {
  for (let i = list.length - 1; i >= 0; i--) if (gone.has(list[i]!)) list.splice(i, 1);
}

export type { JobCommand };

// A run that began with a container start (a fresh one, one made for it, a stem cell taking the function)
// was a cold start: how long it took is the run's time beyond the function's own.
const COLD: Partial<Record<Decision['kind'], ColdStart['kind']>> = { once: 'fresh', create: 'new', adopt: 'stem' };
export function coldStart(a: Pick<Active, 'begun' | 'how' | 'work'>, outcome: CallOutcome, now: number): ColdStart | undefined {
  const kind = COLD[a.how];
  if (!kind || outcome.fault === 'platform') return undefined;
  return { fn: a.work.fn.functionName, kind, ms: Math.max(0, Math.round(now - a.begun - (outcome.durationMs ?? 0))) };
}
