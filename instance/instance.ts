// An instance: one per node. Takes invocations from the API, prepares function trees, and hands each call
// to its pool (warm loaders over their lines, Docker work to miniworkers). A result goes to the API at once,
// then to the DB service; the node keeps reporting the call as its own until the DB service has it.
// Given several APIs (`--broker a,b`, APIs sharing one PostgreSQL store), the node keeps a link to each at
// once: every API sees it and dispatches its own calls to it; every heartbeat reports the node's whole load;
// the node refuses a call it has no room for (given back as `full`), since no API knows what the others
// sent; and it tells a call's news to the API that sent it, or, when that one is silent, to another.
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { privateDir } from '../common/private-dir.js';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CurveClient } from '../common/curve.js';
import { errText, type Logger } from '../common/log.js';
import type { CallOutcome, FunctionMeta, Policy, Runtime } from '../common/model.js';
import { failure } from '../common/faults.js';
import { DbClient, type LocalDb } from '../db/client.js';
import { removeLabelled } from '../common/docker.js';
import { BROKER_PROTOCOL, type ColdStart, type FnDef, type FnRef, type ToInstance } from '../protocol/broker.js';
import { Definitions } from './definitions.js';
import { Images } from './images.js';
import { forNode, policyFor } from './image-functions.js';
import { ApiLink } from './link.js';
import { Pool, type Work } from './pool.js';
import type { StreamSink } from './stream-relay.js';
import { SecretCache, type SecretSet } from './secrets.js';
import { namespaceOf } from '../common/namespace.js';
import { TreeCache } from './trees.js';
import { setUpFunctionNetwork, type FenceState } from './network.js';
import type { AllowEntry } from '../common/allow-list.js';
import type { BrokerMemory } from '../protocol/broker.js';

export interface InstanceOptions {
  broker: string;
  brokerMemory?: BrokerMemory; // the API of this process (zfaas up): the link to it goes through this
  db: string | LocalDb;
  dataDir: string;
  miniworkers: number;
  policy: Policy;
  stemCells?: number;
  stemCellsMax?: number;
  idleTtlMs?: number;
  maxContainers?: number;
  nodeId?: string;
  labels?: Record<string, string>;
  curve?: CurveClient; // with keys: CURVE on the links to the API and the DB service
  registry?: string; // HOST:PORT of the private registry images are pulled from
  depsNetwork?: boolean;
  depsMaxMiB?: number;
  buildMaxMiB?: number; // the most a built tree may take packed, stored in the DB service (default 256)
  drainMs?: number; // on stop, how long the calls it runs may take to finish (default 10 s)
  functionNetworkAllow?: AllowEntry[]; // what network=true functions may reach beyond the internet (network.ts)
  log: Logger;
}

export class Instance {
  private readonly docker = new Docker(); // images only: function containers are the miniworkers' business
  private readonly db: DbClient;
  private readonly links: ApiLink[] = [];
  private readonly origin = new Map<number, ApiLink>(); // which API sent each call it holds
  private pool!: Pool;
  private trees!: TreeCache;
  private images!: Images;
  private nodeId = '';
  private readonly life = randomBytes(6).toString('hex');
  private readonly accepted = new Set<number>(); // calls this node holds and the DB service has not recorded
  private readonly started = new Map<number, number>(); // calls of which a run began here: the attempt
  private readonly warmTold = new Map<string, number>(); // function -> how many keepWarm words came (the latest wins)
  private readonly unacked = new Map<number, Unacked>(); // outcomes the API has not recorded yet
  private resender?: NodeJS.Timeout;
  private draining = false;
  // Function versions as the API sent them, validated once (a version never changes; a runtime may, and
  // then the API sends the definition again).
  private readonly defs = new Definitions((ref) => this.pool.holds(ref.name, ref.version));
  // redundant calls: runs not yet answered, and whether the call is decided
  private readonly replicas = new Map<number, { left: number; decided: boolean }>();
  private readonly cancelled = new Set<number>(); // cancelled while still being prepared
  private readonly secrets: SecretCache;
  // The function network's fence, set up when a function first needs it: until it stands, no network=true
  // function runs here. A failure is tried again after a minute.
  private fence?: Promise<FenceState>;
  private fenceFailedAt = 0;

  constructor(private readonly o: InstanceOptions) {
    this.db = new DbClient(o.db, 10_000, o.curve);
    this.db.onSwitch = (sw) => o.log.warn(sw, 'DB service stopped answering: moved to the next one');
    this.secrets = new SecretCache((namespace, names) => this.db.requestWithBlobs('readSecrets', { namespace, names }));
  }

  get id(): string {
    return this.nodeId;
  }

  async start(): Promise<void> {
    // Containers see only the folders mounted into them, never this one's path: it can be the owner's alone.
    await privateDir(this.o.dataDir);
    try {
      await this.docker.ping();
    } catch (e) {
      throw new Error(`no Docker engine answers (${errText(e)}); start dockerd or set DOCKER_HOST`);
    }
    this.nodeId = this.o.nodeId ?? (await this.stableId());
    await this.removeStaleSockets();
    // Every dependencies step on the network (a test setting): the fence first.
    const depsNetwork = (this.o.depsNetwork ?? false) && (await this.fenced()).ok;
    this.images = new Images(this.docker, this.o.registry, this.o.log);
    this.pool = new Pool({
      address: `ipc://${join(tmpdir(), `zfaas-${this.nodeId}-${process.pid}.sock`)}`,
      nodeId: this.nodeId,
      dataDir: this.o.dataDir,
      script: fileURLToPath(new URL('../miniworker/main.js', import.meta.url)),
      settings: {
        miniworkers: this.o.miniworkers,
        stemCells: this.o.stemCells ?? 1,
        stemCellsMax: Math.max(this.o.stemCells ?? 1, this.o.stemCellsMax ?? 4),
        idleTtlMs: this.o.idleTtlMs ?? 10 * 60_000,
        maxContainers: this.o.maxContainers ?? Math.max(8, this.o.miniworkers * 4),
      },
      log: this.o.log,
      onResult: (work, outcome, start) => this.onRunResult(work, outcome, start),
      onStart: (work) => this.onRunStart(work),
      onSlots: () => {
        for (const l of this.links) l.heartbeat(); // its capacity changed: the API hears at once
      },
    });
    this.trees = new TreeCache({
      dataDir: this.o.dataDir,
      fetchArchive: (digest) => this.fetchArchive(digest),
      runDeps: (job) => this.pool.runDeps(job),
      depsNetwork,
      depsTimeoutMs: 300_000,
      depsMaxMiB: this.o.depsMaxMiB ?? 1024,
      buildMaxMiB: this.o.buildMaxMiB ?? 256,
    });
    await this.pool.start();
    if (this.o.policy === 'runtime') {
      // Stem cells for the runtimes that have a loader (the built-ins); others join when first called.
      const runtimes = await this.db.request('listRuntimes', {}).catch(() => []);
      for (const rt of runtimes) this.pool.keepStems(rt);
    }
    const images = (await this.docker.listImages()).flatMap((i) => i.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
    const brokers = this.o.broker
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean);
    for (const broker of brokers) this.links.push(this.linkTo(broker, images));
    for (const link of this.links) link.start();
    this.resender = setInterval(() => this.resend(), RESEND_MS);
    this.resender.unref();
    this.o.log.info(
      { node: this.nodeId, broker: this.o.broker, miniworkers: this.o.miniworkers, policy: this.o.policy },
      'instance started',
    );
  }

  private linkTo(broker: string, images: string[]): ApiLink {
    const link: ApiLink = new ApiLink({
      broker,
      memory: this.o.brokerMemory,
      curve: this.o.curve,
      node: {
        id: this.nodeId,
        capacity: capacityFor(this.o.miniworkers),
        policy: this.o.policy,
        labels: this.o.labels ?? {},
        images,
        version: '0.1.0',
        protocol: BROKER_PROTOCOL,
        life: this.life,
      },
      log: this.o.log,
      load: () => {
        const st = this.pool.stats();
        const { miniworkers, stemCells, idleTtlMs, maxContainers } = this.pool.current;
        // Only what the protocol declares: in this process the message reaches the API as it is built.
        return {
          running: [...this.accepted],
          warm: st.warm,
          miniworkers: st.miniworkers,
          capacity: capacityFor(st.miniworkers) + this.pool.spareSlots(),
          containers: st.containers,
          stems: st.stems,
          settings: { miniworkers, stemCells, idleTtlMs, maxContainers },
          ...(this.draining ? { draining: true } : {}),
        };
      },
      onMessage: (m) => this.onMessage(m, link),
      onRegistered: () => {
        this.resend(true);
        this.restate(link);
      },
    });
    return link;
  }

  // The link a call's news goes to: the API that sent it, else (it fell silent) another that answers.
  private linkFor(callNum: number): ApiLink {
    const sender = this.origin.get(callNum);
    if (sender?.connected) return sender;
    return this.links.find((l) => l.connected) ?? sender ?? this.links[0]!;
  }

  async stop(): Promise<void> {
    await this.drain(this.o.drainMs ?? 10_000);
    clearInterval(this.resender);
    await Promise.all(this.links.map((l) => l.close()));
    await this.pool?.stop();
    await this.sweep();
    this.db.close();
  }

  // The miniworkers removed what they held; whatever one could not (it was killed, a create the engine
  // finished late) goes here, by the node's label, so that nothing of this node outlives its stop.
  private async sweep(): Promise<void> {
    if (!this.nodeId) return;
    let removed = 0;
    for (const wait of [0, 500]) {
      await new Promise((r) => setTimeout(r, wait));
      removed += await removeLabelled(this.docker, { 'zfaas.node': this.nodeId }).catch((e: unknown) => {
        this.o.log.warn({ err: errText(e) }, 'could not sweep the containers of the node');
        return 0;
      });
    }
    if (removed) this.o.log.warn({ removed }, 'removed containers the miniworkers left behind');
  }

  // Stopping without losing or repeating a call: the API hears at once that this node takes no more
  // (its heartbeat says `draining`), the calls waiting here go back to it to run elsewhere, and the ones
  // running get graceMs to finish and be reported. What still runs then is the API's to rescue, as for a
  // node that died.
  private async drain(graceMs: number): Promise<void> {
    if (this.links.length === 0 || this.draining) return;
    this.draining = true;
    for (const l of this.links) l.heartbeat();
    this.giveBack(this.pool.withdraw());
    const t0 = Date.now();
    const running = this.accepted.size;
    while (this.accepted.size > 0 && Date.now() - t0 < graceMs) await new Promise((r) => setTimeout(r, 50));
    this.o.log.info(
      { running, unfinished: this.accepted.size, ms: Date.now() - t0 },
      this.accepted.size ? 'drain time is up: the API reruns what is left' : 'drained',
    );
  }

  private giveBack(calls: number[]): void {
    if (calls.length === 0) return;
    const to = new Map<ApiLink, number[]>();
    for (const c of calls) {
      const link = this.linkFor(c);
      to.set(link, [...(to.get(link) ?? []), c]);
      this.accepted.delete(c);
      this.replicas.delete(c);
      this.origin.delete(c);
    }
    this.o.log.info({ calls: calls.length }, 'calls given back to the API (draining)');
    for (const [link, some] of to)
      link.send({ type: 'giveBack', calls: some }).catch((e) => this.o.log.warn({ err: errText(e) }, 'calls not given back'));
  }

  // The miniworkers' socket of an earlier life of this node that was killed (it could not remove it).
  private async removeStaleSockets(): Promise<void> {
    const prefix = `zfaas-${this.nodeId}-`;
    for (const name of await readdir(tmpdir()).catch(() => [] as string[])) {
      const pid = Number(name.slice(prefix.length, -'.sock'.length));
      if (!name.startsWith(prefix) || !name.endsWith('.sock') || !Number.isInteger(pid) || pid <= 0) continue;
      // Another process may have removed it first: what we want either way.
      if (pid !== process.pid && !alive(pid)) await rm(join(tmpdir(), name), { force: true }).catch(() => undefined);
    }
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

  private onMessage(m: ToInstance, from: ApiLink): void {
    switch (m.type) {
      case 'invoke':
        if (m.def) this.learn(m.def);
        void this.accept(m, from);
        break;
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
      case 'cancel':
        this.cancel(m.callNum);
        break;
      case 'recorded':
        this.recorded(m.callNum);
        break;
      case 'build':
        void this.build(m.fn, m.runtime); // not kept as the version's definition: its calls bring the built one
        break;
      case 'preload': {
        const def = forNode({ fn: m.fn, runtime: m.runtime });
        this.learn(def);
        this.pool.retireOthers(m.fn.functionName, m.fn.version);
        if (this.policyOf(m.fn) === 'runtime') {
          this.pool.keepStems(def.runtime, true);
          break;
        }
        void this.unfenced(m.fn)
          .then(async (refused) => {
            if (refused) return; // its calls say why
            await this.images.ensure(def.runtime.image);
            this.pool.preload(def.fn, def.runtime, await this.trees.prepare(def.fn, def.runtime));
          })
          .catch((e: unknown) => this.o.log.warn({ fn: m.fn.functionName, err: errText(e) }, 'could not preload function'));
        break;
      }
      case 'keepWarm':
        this.keepWarm(m);
        break;
      default:
        break;
    }
  }

  // A function's floor of warm containers here (its minWarm share): its tree and image made ready first.
  // Under policy none no container is ever reused, so there is nothing to keep.
  private keepWarm(m: Extract<ToInstance, { type: 'keepWarm' }>): void {
    const def = m.def && forNode(m.def);
    const told = (this.warmTold.get(m.name) ?? 0) + 1; // only the latest word about a function counts
    this.warmTold.set(m.name, told);
    if (m.floor === 0 || !def || this.policyOf(def.fn) === 'none') return this.pool.keepWarm(m.name);
    this.learn(def);
    void this.unfenced(def.fn)
      .then(async (refused) => {
        if (refused) return this.warmTold.get(m.name) === told && this.pool.keepWarm(m.name);
        await this.images.ensure(def.runtime.image);
        const treeDir = await this.trees.prepare(def.fn, def.runtime);
        if (this.warmTold.get(m.name) === told) this.pool.keepWarm(m.name, { ...def, treeDir, floor: m.floor });
      })
      .catch((e: unknown) => this.o.log.warn({ fn: m.name, err: errText(e) }, 'could not keep warm containers of the function'));
  }

  // A definition as the API sent it. The same name and version may be another deployment than the one this
  // node holds (the function, or its whole namespace, was deleted and deployed anew, and versions began
  // again at 1): the containers holding the other one must never serve it, so they go (busy ones after
  // their call).
  private learn(def: FnDef): void {
    const ref = { name: def.fn.functionName, version: def.fn.version };
    const had = this.defs.peek(ref);
    this.defs.keep(def);
    if (had && (had.fn.digest !== def.fn.digest || had.fn.createdAt !== def.fn.createdAt)) this.pool.revoke(ref.name, ref.version);
  }

  // The function network and its fence (network.ts), made the first time a function needs it, so that a
  // node that never runs one leaves the host's engine and firewall alone.
  private fenced(): Promise<FenceState> {
    if (!this.fence || (this.fenceFailedAt > 0 && Date.now() - this.fenceFailedAt > 60_000)) {
      this.fenceFailedAt = 0;
      this.fence = setUpFunctionNetwork({ docker: this.docker, allow: this.o.functionNetworkAllow ?? [], log: this.o.log }).then((f) => {
        if (f.ok) {
          const allowed = f.openings.map((x) => (x.port ? `${x.cidr}:${x.port}` : x.cidr));
          this.o.log.info({ subnet: f.subnet, allowed }, 'function network fenced');
        } else {
          this.fenceFailedAt = Date.now();
          this.o.log.warn(
            { reason: f.reason },
            'functions with network=true will not run on this node: the function network cannot be fenced',
          );
        }
        return f;
      });
    }
    return this.fence;
  }

  // Why a function may not run here: it asks for the network and this node's function network is not fenced.
  private async unfenced(fn: FunctionMeta): Promise<string | undefined> {
    if (!fn.settings.network) return undefined;
    const f = await this.fenced();
    return f.ok ? undefined : `node ${this.nodeId} runs no function with network=true: its function network cannot be fenced (${f.reason})`;
  }

  private policyOf(fn: FunctionMeta): Policy {
    return policyFor(fn, fn.settings.policy ?? this.o.policy);
  }

  // The definition of a function version: as the API sent it, else from the DB service (this node
  // restarted and the API did not notice).
  private async definition(ref: FnRef): Promise<FnDef> {
    const known = this.defs.get(ref);
    if (known) return forNode(known);
    const fn = await this.db.request('getFunction', { name: ref.name, version: ref.version });
    if (!fn) throw new Error(`function ${ref.name}@${ref.version} no longer exists`);
    const runtime: Runtime | null = await this.db.request('getRuntime', { name: fn.runtimeName });
    if (!runtime) throw new Error(`runtime ${fn.runtimeName} no longer exists`);
    const def = forNode({ fn, runtime });
    this.defs.keep(def);
    return def;
  }

  private async accept(m: Extract<ToInstance, { type: 'invoke' }>, from: ApiLink): Promise<void> {
    const callNum = m.call.callNum;
    if (this.accepted.has(callNum)) return; // a duplicate dispatch: already ours
    this.origin.set(callNum, from);
    if (this.draining) return this.giveBack([callNum]); // sent before the API heard we are draining
    // Several APIs each think they know this node's room; the node alone does (a call that ended and waits
    // for its outcome to be recorded holds none).
    const capacity = capacityFor(this.pool.current.miniworkers) + this.pool.spareSlots();
    if (this.links.length > 1 && this.accepted.size - this.unacked.size >= capacity) {
      this.origin.delete(callNum);
      from.send({ type: 'giveBack', calls: [callNum], full: true }).catch(() => undefined);
      return;
    }
    this.accepted.add(callNum);
    this.o.log.debug({ callNum, attempt: m.call.attempt ?? 1 }, 'call accepted');
    try {
      const { fn, runtime } = await this.definition(m.fn);
      const refused = await this.unfenced(fn);
      if (refused) return void this.report(callNum, failure('platform', refused));
      await this.images.ensure(runtime.image);
      const treeDir = await this.trees.prepare(fn, runtime);
      if (this.cancelled.delete(callNum)) return; // cancelled while its tree was prepared: reported already
      if (this.draining) return this.giveBack([callNum]);
      // Its secrets as they are now (within the cache's second): the container gets any that changed.
      let secrets: SecretSet | undefined;
      if (fn.settings.secrets.length) {
        const namespace = namespaceOf(fn.functionName);
        secrets = await this.secrets.get(namespace, fn.settings.secrets);
        if (this.cancelled.delete(callNum)) return;
        if (secrets.missing.length) {
          // The function cannot run without it; its containers may hold a value that was deleted.
          this.pool.revoke(fn.functionName, fn.version);
          const error = secrets.missing.map((n) => `secret ${n} not found in namespace ${namespace}`).join('; ');
          return void this.report(callNum, failure('platform', error));
        }
      }
      const policy = this.policyOf(fn);
      if (policy === 'runtime') this.pool.keepStems(runtime);
      const work: Work = {
        callNum,
        params: m.call.params,
        fn,
        runtime,
        treeDir,
        policy,
        http: m.call.http,
        attempt: m.call.attempt,
        ...(secrets ? { secrets: secrets.files } : {}),
        // A redundant call's two runs gather their answers: only the one that wins is the caller's.
        ...(m.call.http && m.call.stream && !m.call.redundant ? { stream: this.streamTo(callNum, m.call.attempt ?? 1) } : {}),
      };
      if (m.call.redundant) {
        this.replicas.set(callNum, { left: 2, decided: false });
        this.pool.submit({ ...work, replica: 0 });
        this.pool.submit({ ...work, replica: 1 });
      } else {
        this.pool.submit(work);
      }
    } catch (e) {
      const error = `could not prepare ${m.fn.name}@${m.fn.version}: ${errText(e)}`;
      void this.report(callNum, failure('platform', error));
    }
  }

  // Where a call's streamed answer goes: to the API that sent it, as it comes (protocol/broker.ts).
  private streamTo(callNum: number, attempt: number): StreamSink {
    return {
      head: (h) =>
        void this.linkFor(callNum)
          .send({ type: 'head', callNum, attempt, ...h })
          .catch((e) => this.o.log.warn({ callNum, err: errText(e) }, 'streamed head not sent to the API')),
      chunk: (seq, data) => this.linkFor(callNum).send({ type: 'chunk', callNum, attempt, seq, data }),
    };
  }

  // A run begins: the API records it (RUNNING, one more attempt) through the call's table; a call that
  // waited on this node and never ran is not counted. Once per call: a redundant call's second run, or a
  // run again after its miniworker died, is the same attempt.
  private onRunStart(work: Work): void {
    if (this.started.has(work.callNum)) return;
    this.started.set(work.callNum, work.attempt ?? 1);
    this.sayStarted(this.linkFor(work.callNum), work.callNum, work.attempt ?? 1);
  }

  private sayStarted(link: ApiLink, callNum: number, attempt: number): void {
    link
      .send({ type: 'started', callNum, attempt })
      .catch((e) => this.o.log.warn({ callNum, err: errText(e) }, 'start not sent to the API'));
  }

  // An API that welcomes this node again may have missed the starts said while it was away (it was
  // restarting): each call still running here is said started again (the DB takes a start said twice as
  // one). Else, should this node then be lost, the record would say the call never began, and a call of a
  // function that may not run twice would run again elsewhere. A call whose outcome is on its way is left
  // to that outcome.
  private restate(link: ApiLink): void {
    for (const [callNum, attempt] of this.started)
      if (this.accepted.has(callNum) && !this.unacked.has(callNum) && this.linkFor(callNum) === link)
        this.sayStarted(link, callNum, attempt);
  }

  // Redundant calls: the first DONE is the answer and the other run is cancelled; a failure waits for the
  // other run, and only when both failed is the last failure the answer.
  private onRunResult(work: Work, outcome: CallOutcome, start?: ColdStart): void {
    const r = this.replicas.get(work.callNum);
    if (!r) return void this.report(work.callNum, outcome, work, start);
    r.left--;
    if (r.left <= 0) this.replicas.delete(work.callNum);
    if (r.decided) return;
    if (outcome.status !== 'DONE' && r.left > 0) return; // fall back on the other run
    r.decided = true;
    this.replicas.delete(work.callNum);
    this.pool.cancel(work.callNum, work.replica);
    void this.report(work.callNum, outcome, work, start);
  }

  // The API cancelled the call (its final state is already recorded): it stops here, its container is
  // killed, and the node reports it ended so that the API frees its place.
  private cancel(callNum: number): void {
    if (!this.accepted.has(callNum)) return;
    this.replicas.delete(callNum);
    if (!this.pool.cancel(callNum)) this.cancelled.add(callNum);
    void this.report(callNum, { ...failure('cancelled', 'cancelled by request'), cancelled: true });
  }

  // A version's build, sent to this node at deploy: its end, and the built tree, go to the DB service, where
  // the API (and every node that runs the version) reads them. A build this node cannot end (the DB service
  // is away) is sent again by the API.
  private async build(fn: FunctionMeta, runtime: Runtime): Promise<void> {
    const at = { fn: fn.functionName, version: fn.version };
    try {
      // The step gets the network only behind the function network's fence, as the function's calls do.
      const refused = await this.unfenced(fn);
      if (refused) this.o.log.warn({ ...at, why: refused }, 'building without the network');
      const as = refused ? { ...fn, settings: { ...fn.settings, network: false } } : fn;
      const pulled = await this.images.ensure(runtime.image).then(
        () => undefined,
        (e: unknown) => `the runtime's image ${runtime.image} could not be pulled on node ${this.nodeId}: ${errText(e)}`,
      );
      const { end, archive, node } = pulled
        ? {
            end: {
              state: 'failed' as const,
              startedAt: fn.build?.startedAt ?? '',
              finishedAt: new Date().toISOString(),
              node: this.nodeId,
              error: pulled,
            },
          }
        : await this.trees.build(as, runtime, this.nodeId);
      // Stopping took its miniworkers from under it: another node builds it once this one is gone.
      if (node && this.draining) return void this.o.log.info({ ...at, why: end.error }, 'build left to another node');
      if (archive && end.digest) await this.db.request('putArchive', { digest: end.digest }, [archive]);
      const r = await this.db.request('endBuild', { name: fn.functionName, version: fn.version, createdAt: fn.createdAt, end });
      this.o.log.info({ ...at, state: end.state, bytes: end.size, error: end.error, taken: r.changed, why: r.why }, 'build ended');
    } catch (e) {
      this.o.log.warn({ ...at, err: errText(e) }, 'build not recorded; the API sends it again');
    }
  }

  private async fetchArchive(digest: string): Promise<Buffer> {
    const { data, blobs } = await this.db.requestWithBlobs('getArchive', { digest });
    if (!data || !blobs[0]) throw new Error(`archive ${digest.slice(0, 12)} not found in the DB service`);
    return blobs[0];
  }

  // The call ended here: the API records it through the call's table and says so (`recorded`). Until then
  // the node keeps the outcome and the call in its `running`, and sends it again every few seconds and
  // after each register, so that an API that restarted, or a message lost on the way, loses nothing; the
  // table takes it once. `ran`: the outcome is of a run (not a cancel or a failed start).
  private report(callNum: number, outcome: CallOutcome, run?: Pick<Work, 'fn' | 'attempt'>, start?: ColdStart): void {
    const ran = run?.fn !== undefined && !outcome.cancelled;
    const o: Unacked = { outcome, ran, ...(ran ? { attempt: run?.attempt ?? 1 } : {}), ...(start ? { start } : {}), sentAt: 0 };
    this.unacked.set(callNum, o);
    this.sendOutcome(callNum, o);
  }

  private sendOutcome(callNum: number, o: Unacked): void {
    o.sentAt = Date.now();
    this.linkFor(callNum)
      .send({
        type: 'outcome',
        callNum,
        outcome: o.outcome,
        ran: o.ran,
        ...(o.attempt ? { attempt: o.attempt } : {}),
        ...(o.start ? { start: o.start } : {}),
      })
      .catch((e) => this.o.log.warn({ callNum, err: errText(e) }, 'outcome not sent to the API yet'));
  }

  // Outcomes the API has not said it recorded: again, those sent longer than RESEND_MS ago (all, after a
  // register: the API may be a new one).
  private resend(all = false): void {
    const now = Date.now();
    for (const [callNum, o] of this.unacked) if (all || now - o.sentAt >= RESEND_MS) this.sendOutcome(callNum, o);
  }

  // The API recorded the call's outcome: it is no longer this node's.
  private recorded(callNum: number): void {
    if (!this.unacked.delete(callNum)) return;
    this.accepted.delete(callNum);
    this.origin.delete(callNum);
    this.started.delete(callNum);
  }
}

// An outcome sent to the API and not yet recorded.
interface Unacked {
  outcome: CallOutcome;
  ran: boolean;
  attempt?: number;
  start?: ColdStart; // the run began with a container start (for the API's cold-start metrics)
  sentAt: number;
}

const RESEND_MS = 3000;

// Whether a process with that id exists (signal 0 checks without sending anything).
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Calls a node takes at once: one running per miniworker plus one waiting behind each, so a miniworker
// that finishes finds its next call already on the node instead of a round trip away at the API.
// Calls a node takes at once: two per miniworker (its containers of several calls at once add their spare
// slots, pool.spareSlots()).
const capacityFor = (miniworkers: number): number => Math.max(1, miniworkers * 2);
