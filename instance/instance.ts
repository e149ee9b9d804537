// An instance: one per node. Receives invocations from the API, prepares function trees, hands jobs to its
// miniworkers, and reports each result to the DB service (the record) and to the API (the waiters).
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeLabelled } from '../common/docker.js';
import type { Job } from '../protocol/worker.js';
import type { CurveClient } from '../common/curve.js';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, Policy } from '../common/model.js';
import { DbClient, type LocalDb } from '../db/client.js';
import type { ToInstance } from '../protocol/broker.js';
import { ApiLink } from './link.js';
import { MiniworkerPool } from './pool.js';
import { TreeCache } from './trees.js';
import { Images } from './images.js';

export interface InstanceOptions {
  broker: string;
  db: string | LocalDb;
  dataDir: string;
  miniworkers: number;
  policy: Policy;
  stemCells?: number;
  idleTtlMs?: number;
  maxContainers?: number;
  nodeId?: string;
  labels?: Record<string, string>;
  curve?: CurveClient; // with keys: CURVE on the links to the API and the DB service
  registry?: string; // HOST:PORT of the private registry images are pulled from
  depsNetwork?: boolean;
  depsMaxMiB?: number;
  log: Logger;
}

export class Instance {
  private readonly docker = new Docker();
  private readonly db: DbClient;
  private link!: ApiLink;
  private pool!: MiniworkerPool;
  private trees!: TreeCache;
  private images!: Images;
  private nodeId = '';
  private readonly archiveWaiters = new Map<string, { resolve(b: Buffer): void; reject(e: Error): void }[]>();
  private readonly accepted = new Set<number>(); // calls this node has and has not reported
  // redundant calls: runs not yet answered, whether the call is decided, the last failure seen
  private readonly replicas = new Map<number, { left: number; decided: boolean }>();

  constructor(private readonly o: InstanceOptions) {
    this.db = new DbClient(o.db, 10_000, o.curve);
  }

  get id(): string {
    return this.nodeId;
  }

  async start(): Promise<void> {
    await mkdir(this.o.dataDir, { recursive: true });
    try {
      await this.docker.ping();
    } catch (e) {
      throw new Error(`no Docker engine answers (${errText(e)}); start dockerd or set DOCKER_HOST`);
    }
    this.nodeId = this.o.nodeId ?? (await this.stableId());
    // Containers left by an earlier run of this node (a crash) are removed first.
    const stale = await removeLabelled(this.docker, { 'zfaas.node': this.nodeId });
    if (stale) this.o.log.info({ removed: stale }, 'removed containers left by an earlier run');
    this.images = new Images(this.docker, this.o.registry, this.o.log);
    this.trees = new TreeCache({
      dataDir: this.o.dataDir,
      docker: this.docker,
      nodeId: this.nodeId,
      fetchArchive: (d) => this.fetchArchive(d),
      depsNetwork: this.o.depsNetwork ?? false,
      depsTimeoutMs: 300_000,
      depsMaxMiB: this.o.depsMaxMiB ?? 1024,
    });
    const script = fileURLToPath(new URL('../miniworker/main.js', import.meta.url));
    this.pool = new MiniworkerPool({
      address: `ipc://${join(tmpdir(), `zfaas-${this.nodeId}-${process.pid}.sock`)}`,
      nodeId: this.nodeId,
      dataDir: this.o.dataDir,
      script,
      policy: this.o.policy,
      settings: {
        miniworkers: this.o.miniworkers,
        stemCells: this.o.stemCells ?? 1,
        idleTtlMs: this.o.idleTtlMs ?? 10 * 60_000,
        maxContainers: this.o.maxContainers ?? Math.max(8, this.o.miniworkers * 4),
      },
      log: this.o.log,
      onResult: (job, outcome) => this.onJobResult(job, outcome),
      onWorkerGone: async (name) => void (await removeLabelled(this.docker, { 'zfaas.miniworker': name })),
    });
    await this.pool.start();
    if (this.o.policy === 'runtime') {
      // Stem cells for the runtimes that have a loader (the built-ins); others join when first called.
      const runtimes = await this.db.request('listRuntimes', {}).catch(() => []);
      for (const rt of runtimes) if (rt.loader) this.pool.addStemRuntime(rt);
    }
    const images = (await this.docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    this.link = new ApiLink({
      broker: this.o.broker,
      curve: this.o.curve,
      node: {
        id: this.nodeId,
        capacity: capacityFor(this.o.miniworkers),
        policy: this.o.policy,
        labels: this.o.labels ?? {},
        images,
        version: '0.1.0',
      },
      log: this.o.log,
      load: () => {
        const st = this.pool.stats();
        return {
          running: [...this.accepted],
          warm: st.warm,
          miniworkers: st.miniworkers,
          capacity: capacityFor(st.miniworkers),
          containers: st.containers,
          stems: st.stems,
          settings: this.pool.current,
        };
      },
      onMessage: (m, blobs) => this.onMessage(m, blobs),
    });
    this.link.start();
    this.o.log.info(
      { node: this.nodeId, broker: this.o.broker, miniworkers: this.o.miniworkers, policy: this.o.policy },
      'instance started',
    );
  }

  async stop(): Promise<void> {
    await this.link?.close();
    await this.pool?.stop();
    await removeLabelled(this.docker, { 'zfaas.node': this.nodeId }).catch(() => 0);
    this.db.close();
  }

  private async stableId(): Promise<string> {
    const file = join(this.o.dataDir, 'node-id');
    const existing = (await readFile(file, 'utf8').catch(() => '')).trim();
    if (existing) return existing;
    const id = `${
      hostname()
        .replace(/[^A-Za-z0-9_-]/g, '')
        .slice(0, 40) || 'node'
    }-${randomBytes(3).toString('hex')}`;
    await writeFile(file, id);
    return id;
  }

  private onMessage(m: ToInstance, blobs: Buffer[]): void {
    switch (m.type) {
      case 'invoke':
        void this.accept(m);
        break;
      case 'archive': {
        const waiters = this.archiveWaiters.get(m.digest) ?? [];
        this.archiveWaiters.delete(m.digest);
        for (const w of waiters) {
          if (m.error || !blobs[0]) w.reject(new Error(m.error ?? 'archive missing'));
          else w.resolve(blobs[0]);
        }
        break;
      }
      case 'configure': {
        const settings = this.pool.configure({
          miniworkers: m.miniworkers,
          stemCells: m.stemCells,
          maxContainers: m.maxContainers,
          idleTtlMs: m.idleTtlS === undefined ? undefined : m.idleTtlS * 1000,
        });
        this.o.log.info({ settings }, 'pool configured');
        break;
      }
      case 'preload':
        void this.images
          .ensure(m.runtime.image)
          .then(() => this.trees.prepare(m.fn, m.runtime))
          .then(
            (tree) => this.pool.preload(m.fn, m.runtime, tree),
            (e) => this.o.log.warn({ fn: m.fn.functionName, err: errText(e) }, 'could not preload function'),
          );
        break;
      default:
        break;
    }
  }

  private async accept(m: Extract<ToInstance, { type: 'invoke' }>): Promise<void> {
    const callNum = m.call.callNum;
    if (this.accepted.has(callNum)) return; // a duplicate dispatch: already ours
    this.accepted.add(callNum);
    try {
      // RUNNING is recorded on the way, not waited for: the DB applies this node's requests in order, so
      // it lands before the result. A call that was already final (a duplicate after a redispatch) runs
      // again at worst, and its second result is not recorded (the first final state wins).
      this.db
        .request('startCall', { callNum, node: this.nodeId })
        .catch((e) => this.o.log.warn({ callNum, err: errText(e) }, 'could not mark call RUNNING'));
      await this.images.ensure(m.runtime.image);
      const treeDir = await this.trees.prepare(m.fn, m.runtime);
      const policy = m.fn.settings.policy ?? this.o.policy;
      if (this.o.policy === 'runtime') this.pool.addStemRuntime(m.runtime);
      const work = { callNum, params: m.call.params, fn: m.fn, runtime: m.runtime, treeDir, policy };
      if (m.call.redundant) {
        this.replicas.set(callNum, { left: 2, decided: false });
        this.pool.submit({ ...work, replica: 0 });
        this.pool.submit({ ...work, replica: 1 });
      } else {
        this.pool.submit(work);
      }
    } catch (e) {
      await this.report(callNum, {
        status: 'ERROR',
        result: '',
        error: `could not prepare ${m.fn.functionName}@${m.fn.version}: ${errText(e)}`,
      });
    }
  }

  // Redundant calls (seed 001): the first DONE is the answer and the other run is cancelled; a failure
  // waits for the other run, and only when both failed is the last failure the answer.
  private onJobResult(job: Job, outcome: CallOutcome): void {
    const r = this.replicas.get(job.callNum);
    if (!r) return void this.report(job.callNum, outcome);
    r.left--;
    if (r.left <= 0) this.replicas.delete(job.callNum);
    if (r.decided) return; // the cancelled run ending
    if (outcome.status !== 'DONE' && r.left > 0) return; // fall back on the other run
    r.decided = true;
    void this.report(job.callNum, outcome);
    if (r.left > 0) {
      const c = this.pool.cancel(job.callNum, job.jobId);
      r.left -= c.dequeued;
      if (r.left <= 0) this.replicas.delete(job.callNum);
      for (const run of c.running) {
        const kill = run.containerId
          ? this.docker.getContainer(run.containerId).kill()
          : removeLabelled(this.docker, { 'zfaas.node': this.nodeId, 'zfaas.call': String(job.callNum), 'zfaas.miniworker': run.worker });
        void Promise.resolve(kill).catch(() => undefined);
      }
    }
  }

  private fetchArchive(digest: string): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const list = this.archiveWaiters.get(digest) ?? [];
      list.push({ resolve, reject });
      this.archiveWaiters.set(digest, list);
      if (list.length === 1) {
        this.link.send({ type: 'fetchArchive', digest }).catch((e) => reject(e as Error));
      }
      setTimeout(() => reject(new Error(`archive ${digest.slice(0, 12)} did not arrive from the API within 60 s`)), 60_000).unref();
    });
  }

  // The DB holds the record, so it is written first and retried until it takes; then the API is told.
  private async report(callNum: number, outcome: CallOutcome): Promise<void> {
    let recorded = false;
    for (let attempt = 0; attempt < 60 && !recorded; attempt++) {
      try {
        await this.db.request('finishCall', { callNum, node: this.nodeId, outcome });
        recorded = true;
      } catch (e) {
        if (attempt === 0) this.o.log.warn({ callNum, err: errText(e) }, 'could not record result yet; retrying');
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** attempt, 2000)));
      }
    }
    this.accepted.delete(callNum);
    await this.link
      .send({ type: 'result', callNum, outcome, recorded })
      .catch((e) => this.o.log.warn({ callNum, err: errText(e) }, 'result not sent to API'));
  }
}

// Calls a node takes at once: one running per miniworker plus one waiting behind each, so a miniworker
// that finishes finds its next call already on the node instead of a round trip away at the API.
const capacityFor = (miniworkers: number): number => Math.max(1, miniworkers * 2);
