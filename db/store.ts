// The embedded store: LevelDB in the data folder, the default backend (StoreBackend, db/store-api.ts). The
// DB service applies writes one at a time (call writes one group at a time, see db/call-group.ts), and only
// one process opens a LevelDB folder, so read-modify-write here is safe; reads run beside them at any time
// and see LevelDB and `live` as of the last committed write.
import { Level } from 'level';
import { createHash } from 'node:crypto';
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';
import { isFinal, type Call, type FunctionMeta, type FunctionSettings, type Runtime } from '../common/model.js';
import { DEFAULT_NAMESPACE, namespaceOf, NS_SEP } from '../common/namespace.js';
import { endBuild } from '../common/build.js';
import {
  idempotencyPrefix,
  type CallChange,
  type CallIntent,
  type CreatedCall,
  type DbContent,
  type DbResults,
  type Purged,
  type Schedule,
  type Trigger,
} from '../protocol/db.js';
import { CallGroup, type KeyEntry } from './call-group.js';
import {
  ConflictError,
  NotFoundError,
  heldArchives,
  versionMeta,
  type CallQuery,
  type DeadLetterQuery,
  type StoreBackend,
  type StoreSnapshot,
} from './store-api.js';
import { LevelTenancy } from './level-tenancy.js';
import type { BackupRecord } from './backup-records.js';
import { keptOnPut, leased, type LeaseRequest } from './trigger-lease.js';
import { adoption, renewed, stale, type ApiLease, type LeaseAsk } from './api-lease.js';

export { ConflictError, NotFoundError } from './store-api.js';

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>;
type BatchOp = AbstractBatchOperation<Level<string, unknown>, string, unknown>;

interface FunctionHead {
  current: number;
  latest: number;
}

const pad = (n: number): string => n.toString().padStart(12, '0');
const MAX_LIVE = 20_000; // beyond this many unfinished calls, reads go to LevelDB
const PURGE_BATCH = 4096; // deletions written at once when a namespace goes

export class Store implements StoreBackend {
  readonly engine = 'leveldb';
  readonly tenancy: LevelTenancy;
  private readonly db: Level<string, unknown>;
  private readonly runtimes: Sub<Runtime>;
  private readonly archives: Sub<Buffer>;
  private readonly heads: Sub<FunctionHead>;
  private readonly versions: Sub<FunctionMeta>;
  // A version's settings never change while it exists: each outcome reads them, so they are kept here,
  // forgotten whenever versions are deleted or restored (a name deployed again starts at version 1).
  private readonly settingsSeen = new Map<string, FunctionSettings>();
  private readonly calls: Sub<Call>;
  private readonly meta: Sub<number>;
  private readonly openCalls: Sub<number>; // index of calls not yet final, so recovery never scans every call
  private readonly keys: Sub<KeyEntry>; // idempotency key -> the call it made (an expired one is overwritten)
  private readonly schedules: Sub<Schedule>; // "funcName!id" -> a schedule (cron trigger)
  private readonly triggers: Sub<Trigger>; // "funcName!id" -> a trigger (messages of a broker)
  // Indexes kept by each call write from the call's own state (CallTable.ops): the dead letters still
  // listed, and the callback deliveries still pending (value: when the next try is due, ms).
  private readonly deadLetters: Sub<number>;
  private readonly outbox: Sub<number>;
  private readonly apiLeases: Sub<ApiLease>; // several APIs on one store (db/api-lease.ts); not backed up
  // The calls not yet final, as last committed: a call is read back twice (RUNNING, then final) within
  // milliseconds of being written, and the warm path should not wait on LevelDB for what it just wrote.
  // Only a committed batch changes it, so a concurrent read never sees a write that may still fail.
  private readonly live = new Map<number, Call>();
  private lastCall = 0;

  constructor(dir: string) {
    this.db = new Level<string, unknown>(dir, { valueEncoding: 'json' });
    this.runtimes = this.db.sublevel<string, Runtime>('rt', { valueEncoding: 'json' });
    this.archives = this.db.sublevel<string, Buffer>('ar', { valueEncoding: 'buffer' });
    this.heads = this.db.sublevel<string, FunctionHead>('fn', { valueEncoding: 'json' });
    this.versions = this.db.sublevel<string, FunctionMeta>('fv', { valueEncoding: 'json' });
    this.calls = this.db.sublevel<string, Call>('call', { valueEncoding: 'json' });
    this.meta = this.db.sublevel<string, number>('meta', { valueEncoding: 'json' });
    this.openCalls = this.db.sublevel<string, number>('open', { valueEncoding: 'json' });
    this.keys = this.db.sublevel<string, KeyEntry>('idem', { valueEncoding: 'json' });
    this.schedules = this.db.sublevel<string, Schedule>('sched', { valueEncoding: 'json' });
    this.triggers = this.db.sublevel<string, Trigger>('trig', { valueEncoding: 'json' });
    this.deadLetters = this.db.sublevel<string, number>('dead', { valueEncoding: 'json' });
    this.outbox = this.db.sublevel<string, number>('outbox', { valueEncoding: 'json' });
    this.apiLeases = this.db.sublevel<string, ApiLease>('apil', { valueEncoding: 'json' });
    this.tenancy = new LevelTenancy(this.db);
  }

  async open(): Promise<void> {
    await this.db.open();
    // The newest call's number is its key; `meta.lastCall` is kept for stores written before that.
    let newest = 0;
    for await (const key of this.calls.keys({ reverse: true, limit: 1 })) newest = Number(key);
    this.lastCall = Math.max(newest, (await this.meta.get('lastCall')) ?? 0);
  }

  private remember(call: Call): void {
    if (isFinal(call.status)) this.live.delete(call.callNum);
    else if (this.live.size < MAX_LIVE || this.live.has(call.callNum)) this.live.set(call.callNum, call);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // The store's layout version (db/migrate.ts); 0 for a store written before it was kept.
  async schema(): Promise<number> {
    return (await this.meta.get('schema')) ?? 0;
  }
  async setSchema(v: number): Promise<void> {
    await this.meta.put('schema', v);
  }
  async isEmpty(): Promise<boolean> {
    for await (const _ of this.db.keys({ limit: 1 })) return false;
    return true;
  }

  // The whole database, every sublevel under its prefix (migrations write to it).
  root(): Level<string, unknown> {
    return this.db;
  }

  // Every record as of now: one iterator over the root, created at once, reads from LevelDB's implicit
  // snapshot of this instant (each write batch is in it entirely or not at all), however long it is read.
  snapshot(readBytes: number): Promise<StoreSnapshot> {
    const it = this.db.iterator<Buffer, Buffer>({ keyEncoding: 'buffer', valueEncoding: 'buffer', highWaterMarkBytes: readBytes });
    return Promise.resolve({
      next: async (max) => {
        const out: BackupRecord[] = [];
        while (out.length === 0) {
          const batch = await it.nextv(max);
          if (batch.length === 0) break;
          for (const [k, v] of batch) {
            const r = fromRaw(k, v);
            if (r) out.push(r);
          }
        }
        return out;
      },
      close: () => it.close(),
    });
  }

  // Records of a backup written back, indexes with them (a call through the same operations as its writes).
  async restore(records: BackupRecord[]): Promise<void> {
    this.settingsSeen.clear();
    const ops: BatchOp[] = [];
    for (const r of records) {
      switch (r.kind) {
        case 'runtime':
          ops.push({ type: 'put', sublevel: this.runtimes, key: r.value.name, value: r.value });
          break;
        case 'archive':
          ops.push({ type: 'put', sublevel: this.archives as Sub<unknown>, key: r.digest, value: r.data });
          break;
        case 'function':
          ops.push({ type: 'put', sublevel: this.heads, key: r.name, value: { current: r.current, latest: r.latest } });
          break;
        case 'version':
          ops.push({ type: 'put', sublevel: this.versions, key: `${r.value.functionName}!${pad(r.value.version)}`, value: r.value });
          break;
        case 'call':
          ops.push(...this.callOps(r.value, true));
          this.lastCall = Math.max(this.lastCall, r.value.callNum);
          break;
        case 'idempotency':
          ops.push({ type: 'put', sublevel: this.keys, key: r.key, value: r.value });
          break;
        case 'schedule':
          ops.push({ type: 'put', sublevel: this.schedules, key: `${r.value.funcName}!${r.value.id}`, value: r.value });
          break;
        case 'trigger':
          ops.push({ type: 'put', sublevel: this.triggers, key: `${r.value.funcName}!${r.value.id}`, value: r.value });
          break;
        default:
          ops.push(...this.tenancy.restoreOps(r));
      }
    }
    await this.db.batch(ops);
  }
  // Raw LevelDB entries of a backup from before backups were logical, as they were.
  async restoreRaw(entries: Array<[Buffer, Buffer]>): Promise<void> {
    this.settingsSeen.clear();
    const raw = this.db as unknown as Level<Buffer, Buffer>;
    await raw.batch(
      entries.map(([key, value]) => ({ type: 'put' as const, key, value })),
      { keyEncoding: 'buffer', valueEncoding: 'buffer' },
    );
  }
  async restored(): Promise<void> {
    // Synced: with it, every write before it is on disk.
    await this.db.batch([{ type: 'put', sublevel: this.meta, key: 'lastCall', value: this.lastCall }], { sync: true });
  }

  // Runtimes
  async putRuntime(rt: Runtime): Promise<Runtime> {
    await this.runtimes.put(rt.name, rt);
    return rt;
  }
  async getRuntime(name: string): Promise<Runtime | null> {
    return (await this.runtimes.get(name)) ?? null;
  }
  listRuntimes(): Promise<Runtime[]> {
    return this.runtimes.values().all();
  }
  async deleteRuntime(name: string): Promise<{ deleted: boolean }> {
    if (!(await this.runtimes.get(name))) return { deleted: false };
    for (const fn of await this.listFunctions()) {
      if (fn.runtimeName === name) throw new ConflictError(`runtime ${name} is used by function ${fn.functionName}`);
    }
    await this.runtimes.del(name);
    return { deleted: true };
  }

  // Archives, stored once by content digest.
  async putArchive(digest: string, data: Buffer): Promise<{ digest: string; size: number }> {
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== digest) throw new ConflictError(`archive digest mismatch: got ${actual}`);
    await this.archives.put(digest, data);
    return { digest, size: data.length };
  }
  async getArchive(digest: string): Promise<Buffer | null> {
    return (await this.archives.get(digest)) ?? null;
  }

  // Functions: every deploy is a new version; `current` is what an unversioned call runs.
  async addFunction(c: DbContent<'addFunction'> & { settings: FunctionMeta['settings'] }): Promise<FunctionMeta> {
    if (!(await this.runtimes.get(c.runtimeName))) throw new NotFoundError(`runtime ${c.runtimeName} not found`);
    if (!(await this.archives.get(c.digest))) throw new NotFoundError(`archive ${c.digest} not stored`);
    const head = (await this.heads.get(c.functionName)) ?? { current: 0, latest: 0 };
    const version = head.latest + 1;
    const meta = versionMeta(c, version);
    await this.db.batch([
      { type: 'put', sublevel: this.versions, key: `${c.functionName}!${pad(version)}`, value: meta },
      { type: 'put', sublevel: this.heads, key: c.functionName, value: { current: version, latest: version } },
    ]);
    return meta;
  }
  async getFunction(name: string, version?: number): Promise<FunctionMeta | null> {
    const head = await this.heads.get(name);
    if (!head) return null;
    return (await this.versions.get(`${name}!${pad(version ?? head.current)}`)) ?? null;
  }
  async listFunctions(): Promise<FunctionMeta[]> {
    const out: FunctionMeta[] = [];
    for await (const [name, head] of this.heads.iterator()) {
      const meta = await this.versions.get(`${name}!${pad(head.current)}`);
      if (meta) out.push(meta);
    }
    return out;
  }
  listVersions(name: string): Promise<FunctionMeta[]> {
    return this.versions.values({ gt: `${name}!`, lt: `${name}!~` }).all();
  }
  async setCurrentVersion(name: string, version: number): Promise<FunctionMeta | null> {
    const head = await this.heads.get(name);
    const meta = await this.versions.get(`${name}!${pad(version)}`);
    if (!head || !meta) return null;
    await this.heads.put(name, { ...head, current: version });
    return meta;
  }
  async deleteFunction(name: string): Promise<{ deleted: boolean }> {
    this.settingsSeen.clear();
    if (!(await this.heads.get(name))) return { deleted: false };
    const versions = await this.versions.iterator({ gt: `${name}!`, lt: `${name}!~` }).all();
    const schedules = await this.schedules.keys({ gt: `${name}!`, lt: `${name}!~` }).all(); // they go with it
    const triggers = await this.triggers.keys({ gt: `${name}!`, lt: `${name}!~` }).all(); // and so do these
    await this.db.batch([
      ...versions.map(([key]) => ({ type: 'del' as const, sublevel: this.versions, key })),
      ...schedules.map((key) => ({ type: 'del' as const, sublevel: this.schedules, key })),
      ...triggers.map((key) => ({ type: 'del' as const, sublevel: this.triggers, key })),
      { type: 'del' as const, sublevel: this.heads, key: name },
    ]);
    await this.dropArchives(versions.flatMap(([, v]) => heldArchives(v)));
    return { deleted: true };
  }
  // An old version goes; the current one stays (`current`: refused for that).
  async deleteVersion(name: string, version: number): Promise<{ deleted: boolean; current?: true }> {
    this.settingsSeen.clear();
    const head = await this.heads.get(name);
    const meta = head ? await this.versions.get(`${name}!${pad(version)}`) : undefined;
    if (!head || !meta) return { deleted: false };
    if (head.current === version) return { deleted: false, current: true };
    await this.versions.del(`${name}!${pad(version)}`);
    await this.dropArchives(heldArchives(meta));
    return { deleted: true };
  }
  // The DB service applies writes one at a time, in order: nothing else writes the version between the read and the put.
  async endBuild(c: DbContent<'endBuild'>): Promise<DbResults['endBuild']> {
    const key = `${c.name}!${pad(c.version)}`;
    const meta = (await this.heads.get(c.name)) ? await this.versions.get(key) : undefined;
    if (!meta || meta.createdAt !== c.createdAt) return { fn: null, changed: false, why: `version ${c.version} of ${c.name} is gone` };
    const v = endBuild(meta.build, c.end);
    if (!v.changed) return { fn: meta, changed: false, why: v.why };
    const next: FunctionMeta = { ...meta, build: v.next };
    await this.versions.put(key, next);
    return { fn: next, changed: true };
  }
  // Archives no version of any function holds any more: stored once by digest, they go with the last one.
  private async dropArchives(digests: string[]): Promise<void> {
    const left = new Set(digests);
    for await (const v of this.versions.values()) {
      if (left.size === 0) return;
      for (const d of heldArchives(v)) left.delete(d);
    }
    for (const digest of left) await this.archives.del(digest);
  }

  // Calls. Each write below is a group of one; the server groups many (see CallGroup).
  async createCall(c: DbContent<'createCall'>): Promise<CreatedCall> {
    const g = this.group();
    const call = await g.createCall(c);
    await g.commit();
    return call;
  }
  async getCall(callNum: number): Promise<Call | null> {
    const live = this.live.get(callNum);
    if (live) return { ...live };
    return (await this.calls.get(pad(callNum))) ?? null;
  }
  // Every change of a call after its creation: an intent its table (call-life.ts) accepts or refuses.
  async callIntent(callNum: number, intent: CallIntent): Promise<CallChange> {
    const g = this.group();
    const r = await g.callIntent(callNum, intent);
    await g.commit();
    return r;
  }

  async listDeadLetters(q: DeadLetterQuery): Promise<Call[]> {
    const out: Call[] = [];
    for await (const callNum of this.deadLetters.values({ reverse: true })) {
      const call = await this.getCall(callNum);
      if (!call || call.deadLetter !== 'listed' || (q.funcName && call.funcName !== q.funcName)) continue;
      if (q.namespace && namespaceOf(call.funcName) !== q.namespace) continue;
      out.push(call);
      if (out.length >= (q.limit ?? 1000)) break;
    }
    return out;
  }

  // The batch operations writing this state of a call, and its indexes.
  private callOps(call: Call, created: boolean): BatchOp[] {
    const key = pad(call.callNum);
    const ops: BatchOp[] = [{ type: 'put', sublevel: this.calls, key, value: call }];
    // The index of open calls: in it from creation until final.
    if (created) ops.push({ type: 'put', sublevel: this.openCalls, key, value: call.callNum });
    if (isFinal(call.status)) ops.push({ type: 'del', sublevel: this.openCalls, key });
    if (call.deadLetter === 'listed') ops.push({ type: 'put', sublevel: this.deadLetters, key, value: call.callNum });
    else if (call.deadLetter) ops.push({ type: 'del', sublevel: this.deadLetters, key });
    const cb = call.callback;
    if (cb?.state === 'pending') ops.push({ type: 'put', sublevel: this.outbox, key, value: Date.parse(cb.nextAt ?? '') || 0 });
    else if (cb && cb.state !== 'waiting') ops.push({ type: 'del', sublevel: this.outbox, key });
    return ops;
  }

  private async versionSettings(funcName: string, version: number | undefined): Promise<FunctionSettings | null> {
    if (version === undefined) return null;
    const key = `${funcName}!${pad(version)}`;
    const seen = this.settingsSeen.get(key);
    if (seen) return seen;
    const settings = (await this.versions.get(key))?.settings;
    if (!settings) return null; // not kept: it may be deployed next
    if (this.settingsSeen.size >= 4096) this.settingsSeen.clear();
    this.settingsSeen.set(key, settings);
    return settings;
  }

  passCallNum(callNum: number): void {
    this.lastCall = Math.max(this.lastCall, callNum);
  }

  // A new group of call writes, starting from what is committed now. One group at a time: the next is
  // begun only after this one committed or failed (the server's write queue sees to it).
  group(): CallGroup {
    return new CallGroup<BatchOp>({
      nextCallNum: async (after) => Math.max(after, this.lastCall) + 1,
      read: (callNum) => this.getCall(callNum),
      readKey: async (key) => (await this.keys.get(key)) ?? null,
      keyOps: (key, entry) => [{ type: 'put', sublevel: this.keys, key, value: entry }],
      settings: (funcName, version) => this.versionSettings(funcName, version),
      due: async (now, limit) => {
        const out: number[] = [];
        for await (const [key, at] of this.outbox.iterator()) {
          if (at <= now) out.push(Number(key));
          if (out.length >= limit) break;
        }
        return out;
      },
      ops: (call, created) => this.callOps(call, created),
      commit: async (ops, touched, lastCall) => {
        if (ops.length === 0) return;
        await this.db.batch(ops);
        // Only once the batch is written do `live` and the counter move: a failed batch leaves both as
        // they were, and uses up no call number.
        this.lastCall = Math.max(this.lastCall, lastCall);
        for (const call of touched.values()) this.remember(call);
      },
    });
  }

  async listCalls(q: CallQuery): Promise<Call[]> {
    const out: Call[] = [];
    const limit = q.limit ?? Infinity;
    const range = q.before ? { lt: pad(q.before) } : {};
    for await (const call of this.calls.values({ ...range, reverse: q.order === 'desc' })) {
      if (q.funcName && call.funcName !== q.funcName) continue;
      if (q.namespace && namespaceOf(call.funcName) !== q.namespace) continue;
      if (q.by && call.by !== q.by) continue;
      if (q.status && call.status !== q.status) continue;
      out.push(call);
      if (out.length >= limit) break;
    }
    return out;
  }
  // Schedules (api/schedules.ts fires them; the calls' idempotency keys make each tick fire once).
  async putSchedule(sc: Omit<Schedule, 'lastRun'>): Promise<Schedule> {
    const had = await this.schedules.get(`${sc.funcName}!${sc.id}`);
    const stored: Schedule = { ...sc, ...(had?.lastRun ? { lastRun: had.lastRun } : {}) };
    await this.schedules.put(`${sc.funcName}!${sc.id}`, stored);
    return stored;
  }
  async listSchedules(funcName?: string, namespace?: string): Promise<Schedule[]> {
    const all = await this.schedules.values(funcName ? { gt: `${funcName}!`, lt: `${funcName}!~` } : {}).all();
    return namespace ? all.filter((sc) => namespaceOf(sc.funcName) === namespace) : all;
  }
  async deleteSchedule(funcName: string, id: string): Promise<{ deleted: boolean }> {
    if (!(await this.schedules.get(`${funcName}!${id}`))) return { deleted: false };
    await this.schedules.del(`${funcName}!${id}`);
    return { deleted: true };
  }
  async recordScheduleRun(r: { funcName: string; id: string; tick: string; callNum: number }): Promise<Schedule | null> {
    const sc = await this.schedules.get(`${r.funcName}!${r.id}`);
    if (!sc) return null;
    if (sc.lastRun && Date.parse(sc.lastRun.tick) >= Date.parse(r.tick)) return sc;
    const next: Schedule = { ...sc, lastRun: { tick: r.tick, callNum: r.callNum, at: new Date().toISOString() } };
    await this.schedules.put(`${r.funcName}!${r.id}`, next);
    return next;
  }

  // Triggers (api/triggers consumes them; the calls' idempotency keys make each message one call).
  async putTrigger(t: Omit<Trigger, 'lease' | 'stats'>): Promise<Trigger> {
    const stored = keptOnPut(t, await this.triggers.get(`${t.funcName}!${t.id}`));
    await this.triggers.put(`${t.funcName}!${t.id}`, stored);
    return stored;
  }
  async listTriggers(funcName?: string, namespace?: string): Promise<Trigger[]> {
    const all = await this.triggers.values(funcName ? { gt: `${funcName}!`, lt: `${funcName}!~` } : {}).all();
    return namespace ? all.filter((t) => namespaceOf(t.funcName) === namespace) : all;
  }
  async deleteTrigger(funcName: string, id: string): Promise<{ deleted: boolean }> {
    if (!(await this.triggers.get(`${funcName}!${id}`))) return { deleted: false };
    await this.triggers.del(`${funcName}!${id}`);
    return { deleted: true };
  }
  async pauseTrigger(funcName: string, id: string, paused: boolean): Promise<Trigger | null> {
    const t = await this.triggers.get(`${funcName}!${id}`);
    if (!t) return null;
    const next: Trigger = { ...t, paused };
    await this.triggers.put(`${funcName}!${id}`, next);
    return next;
  }
  // Writes go one at a time through the service's write queue, so two holders never both get a lease.
  async leaseTrigger(r: LeaseRequest): Promise<{ trigger: Trigger | null; held: boolean }> {
    const t = await this.triggers.get(`${r.funcName}!${r.id}`);
    if (!t) return { trigger: null, held: false };
    const { next, held } = leased(t, r, Date.now());
    if (!next) return { trigger: t, held };
    await this.triggers.put(`${r.funcName}!${r.id}`, next);
    return { trigger: next, held };
  }

  // API leases: one DB service writes a LevelDB folder, one at a time (the write queue), so the rules of
  // db/api-lease.ts need nothing more here.
  async leaseApi(r: LeaseAsk): Promise<{ held: boolean; lost: boolean }> {
    const { next, keep, held, lost } = renewed((await this.apiLeases.get(r.id)) ?? null, r, Date.now());
    if (next) await this.apiLeases.put(r.id, next);
    else if (!keep) await this.apiLeases.del(r.id);
    return { held, lost };
  }
  async adoptCalls(adopter: string): Promise<{ calls: Call[]; from: string[] }> {
    const now = Date.now();
    const leases = await this.apiLeases.values().all();
    const { calls, leases: taken } = adoption(leases, await this.listUnfinished(), adopter, now);
    const old = leases.filter((l) => stale(l, now));
    if (calls.length === 0 && taken.length === 0 && old.length === 0) return { calls: [], from: [] };
    const ops: BatchOp[] = calls.flatMap((c) => this.callOps(c, false));
    for (const l of old) ops.push({ type: 'del', sublevel: this.apiLeases, key: l.id });
    for (const l of taken) ops.push({ type: 'put', sublevel: this.apiLeases, key: l.id, value: l });
    await this.db.batch(ops);
    for (const c of calls) this.remember(c);
    return { calls, from: taken.map((l) => l.id) };
  }

  // Everything kept under a namespace's name: its calls (with their results, logs, history and callback
  // deliveries) and their index entries (open, dead letters, outbox), its idempotency keys (schedule
  // ticks' included), and any schedule, function version or runtime still under its name. A namespace
  // that goes takes these along, and one made again under the same name starts from nothing, also on a
  // store where an earlier namespace of that name went without them. Call numbers are never reused.
  // Called in the write queue (nothing else writes meanwhile); written in batches of bounded size.
  async purgeNamespace(namespace: string): Promise<Purged> {
    this.settingsSeen.clear();
    if (namespace === DEFAULT_NAMESPACE) throw new ConflictError('the default namespace is never purged');
    const ops: BatchOp[] = [];
    const flush = async (): Promise<void> => {
      if (ops.length > 0) await this.db.batch(ops.splice(0));
    };
    const gone: number[] = [];
    for await (const [key, call] of this.calls.iterator()) {
      if (namespaceOf(call.funcName) !== namespace) continue;
      for (const sublevel of [this.calls, this.openCalls, this.deadLetters, this.outbox]) ops.push({ type: 'del', sublevel, key });
      gone.push(call.callNum);
      if (ops.length >= PURGE_BATCH) await flush();
    }
    let idempotencyKeys = 0;
    const under = (prefix: string) => ({ gt: prefix, lt: `${prefix}\x7f` }); // stored names are printable ASCII
    const named = `${namespace}${NS_SEP}`;
    const sublevels: [Sub<unknown>, string][] = [
      [this.keys as Sub<unknown>, idempotencyPrefix(namespace)],
      [this.schedules as Sub<unknown>, named],
      [this.triggers as Sub<unknown>, named],
      [this.versions as Sub<unknown>, named],
      [this.heads as Sub<unknown>, named],
      [this.runtimes as Sub<unknown>, named],
    ];
    for (const [sublevel, prefix] of sublevels) {
      for await (const key of sublevel.keys(under(prefix))) {
        ops.push({ type: 'del', sublevel, key });
        if (sublevel === (this.keys as Sub<unknown>)) idempotencyKeys++;
        if (ops.length >= PURGE_BATCH) await flush();
      }
    }
    await flush();
    for (const callNum of gone) this.live.delete(callNum);
    return { calls: gone.length, idempotencyKeys };
  }

  async listUnfinished(): Promise<Call[]> {
    const out: Call[] = [];
    for await (const callNum of this.openCalls.values()) {
      const call = await this.getCall(callNum);
      if (call && !isFinal(call.status)) out.push(call);
    }
    return out;
  }
}

// The logical record of a raw LevelDB entry ("!SUBLEVEL!KEY"); none for an index (rebuilt from the calls).
function fromRaw(k: Buffer, v: Buffer): BackupRecord | null {
  const key = k.toString('utf8');
  const m = /^!([a-z]+)!(.*)$/s.exec(key);
  if (!m) return null;
  const [, sub, id] = m as unknown as [string, string, string];
  const j = (): unknown => JSON.parse(v.toString('utf8'));
  switch (sub) {
    case 'rt':
      return { kind: 'runtime', value: j() as Runtime };
    case 'ar':
      return { kind: 'archive', digest: id, data: v };
    case 'fn':
      return { kind: 'function', name: id, ...(j() as FunctionHead) };
    case 'fv':
      return { kind: 'version', value: j() as FunctionMeta };
    case 'call':
      return { kind: 'call', value: j() as Call };
    case 'idem':
      return { kind: 'idempotency', key: id, value: j() as KeyEntry };
    case 'sched':
      return { kind: 'schedule', value: j() as Schedule };
    case 'trig':
      return { kind: 'trigger', value: j() as Trigger };
    default:
      return LevelTenancy.fromRaw(sub, id, j);
  }
}
