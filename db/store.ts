// LevelDB-backed state. The server applies writes one at a time (call writes one group at a time, see
// CallGroup), so read-modify-write here is safe; reads run beside them at any time and see LevelDB and
// `live` as of the last committed write.
import { Level } from 'level';
import { createHash } from 'node:crypto';
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';
import {
  isFinal,
  type Call,
  type CallOutcome,
  type Delivery,
  type FunctionMeta,
  type FunctionSettings,
  type Runtime,
} from '../common/model.js';
import { afterRun, attemptOf } from '../common/retry.js';
import { DEFAULT_NAMESPACE, namespaceOf, NS_SEP } from '../common/namespace.js';
import {
  IDEMPOTENCY_TTL_S,
  idempotencyPrefix,
  shownIdempotencyKey,
  type CreatedCall,
  type DbContent,
  type Purged,
  type Schedule,
  type Trigger,
  type TriggerStats,
} from '../protocol/db.js';

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>;
type BatchOp = AbstractBatchOperation<Level<string, unknown>, string, unknown>;
type CallChange = { call: Call | null; changed: boolean };
type NewCall = Omit<DbContent<'createCall'>, 'params'> & { params?: unknown };

// What an idempotency key made: the call, for which request (`hash`, see api/idempotency.ts), when (ms).
interface KeyEntry {
  funcName: string;
  hash: string;
  callNum: number;
  at: number;
}

interface FunctionHead {
  current: number;
  latest: number;
}

export class NotFoundError extends Error {}

const bodyBytes = (b64: string | undefined): number => (b64 ? Buffer.byteLength(b64, 'base64') : 0);
export class ConflictError extends Error {}

const pad = (n: number): string => n.toString().padStart(12, '0');
const MAX_LIVE = 20_000; // beyond this many unfinished calls, reads go to LevelDB
const PURGE_BATCH = 4096; // deletions written at once when a namespace goes

export class Store {
  private readonly db: Level<string, unknown>;
  private readonly runtimes: Sub<Runtime>;
  private readonly archives: Sub<Buffer>;
  private readonly heads: Sub<FunctionHead>;
  private readonly versions: Sub<FunctionMeta>;
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

  // The whole database, every sublevel under its prefix: what a backup reads (db/backup.ts).
  root(): Level<string, unknown> {
    return this.db;
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
    const meta: FunctionMeta = {
      functionName: c.functionName,
      runtimeName: c.runtimeName,
      version,
      digest: c.digest,
      size: c.size,
      format: c.format,
      originalname: c.originalname,
      createdAt: new Date().toISOString(),
      settings: c.settings,
    };
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
    await this.dropArchives(versions.map(([, v]) => v.digest));
    return { deleted: true };
  }
  // An old version goes; the current one stays (`current`: refused for that).
  async deleteVersion(name: string, version: number): Promise<{ deleted: boolean; current?: true }> {
    const head = await this.heads.get(name);
    const meta = head ? await this.versions.get(`${name}!${pad(version)}`) : undefined;
    if (!head || !meta) return { deleted: false };
    if (head.current === version) return { deleted: false, current: true };
    await this.versions.del(`${name}!${pad(version)}`);
    await this.dropArchives([meta.digest]);
    return { deleted: true };
  }
  // Archives no version of any function holds any more: stored once by digest, they go with the last one.
  private async dropArchives(digests: string[]): Promise<void> {
    const left = new Set(digests);
    for await (const v of this.versions.values()) {
      if (left.size === 0) return;
      left.delete(v.digest);
    }
    for (const digest of left) await this.archives.del(digest);
  }

  // Calls. Each write below is a group of one; the server groups many (see CallGroup).
  async createCall(c: NewCall): Promise<CreatedCall> {
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
  async startCall(callNum: number, node: string): Promise<CallChange> {
    const g = this.group();
    const r = await g.startCall(callNum, node);
    await g.commit();
    return r;
  }
  async requeueCall(callNum: number, unstartedOn?: string): Promise<CallChange> {
    const g = this.group();
    const r = await g.requeueCall(callNum, unstartedOn);
    await g.commit();
    return r;
  }
  async finishCall(callNum: number, outcome: CallOutcome, node?: string, ran = false, attempt?: number): Promise<CallChange> {
    const g = this.group();
    const r = await g.finishCall(callNum, outcome, node, ran, attempt);
    await g.commit();
    return r;
  }

  async listDeadLetters(q: { funcName?: string; namespace?: string; limit?: number }): Promise<Call[]> {
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

  // A new group of call writes, starting from what is committed now. One group at a time: the next is
  // begun only after this one committed or failed (the server's write queue sees to it).
  group(): CallGroup {
    return new CallGroup({
      lastCall: this.lastCall,
      read: (callNum) => this.getCall(callNum),
      readKey: async (key) => (await this.keys.get(key)) ?? null,
      keyOps: (key, entry) => [{ type: 'put', sublevel: this.keys, key, value: entry }],
      settings: async (funcName, version) =>
        version === undefined ? null : ((await this.versions.get(`${funcName}!${pad(version)}`))?.settings ?? null),
      due: async (now, limit) => {
        const out: number[] = [];
        for await (const [key, at] of this.outbox.iterator()) {
          if (at <= now) out.push(Number(key));
          if (out.length >= limit) break;
        }
        return out;
      },
      ops: (call, created) => {
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
      },
      commit: async (ops, touched, lastCall) => {
        await this.db.batch(ops);
        // Only once the batch is written do `live` and the counter move: a failed batch leaves both as
        // they were, and uses up no call number.
        this.lastCall = Math.max(this.lastCall, lastCall);
        for (const call of touched) this.remember(call);
      },
    });
  }

  async listCalls(q: {
    funcName?: string;
    namespace?: string;
    by?: string;
    status?: string;
    limit?: number;
    before?: number;
    order?: 'asc' | 'desc';
  }): Promise<Call[]> {
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
    const had = await this.triggers.get(`${t.funcName}!${t.id}`);
    const stored: Trigger = { ...t, ...(had?.lease ? { lease: had.lease } : {}), ...(had?.stats ? { stats: had.stats } : {}) };
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
  async leaseTrigger(r: {
    funcName: string;
    id: string;
    holder: string;
    leaseMs: number;
    stats?: TriggerStats;
    release?: boolean;
  }): Promise<{ trigger: Trigger | null; held: boolean }> {
    const t = await this.triggers.get(`${r.funcName}!${r.id}`);
    if (!t) return { trigger: null, held: false };
    const now = Date.now();
    if (t.lease && t.lease.holder !== r.holder && Date.parse(t.lease.until) > now) return { trigger: t, held: false };
    const { lease: _lease, ...rest } = t;
    const next: Trigger = {
      ...rest,
      ...(r.release ? {} : { lease: { holder: r.holder, until: new Date(now + r.leaseMs).toISOString() } }),
      ...(r.stats ? { stats: r.stats } : {}),
    };
    await this.triggers.put(`${r.funcName}!${r.id}`, next);
    return { trigger: next, held: !r.release };
  }

  // Everything kept under a namespace's name: its calls (with their results, logs, history and callback
  // deliveries) and their index entries (open, dead letters, outbox), its idempotency keys (schedule
  // ticks' included), and any schedule, function version or runtime still under its name. A namespace
  // that goes takes these along, and one made again under the same name starts from nothing, also on a
  // store where an earlier namespace of that name went without them. Call numbers are never reused.
  // Called in the write queue (nothing else writes meanwhile); written in batches of bounded size.
  async purgeNamespace(namespace: string): Promise<Purged> {
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

// What a CallGroup needs of the store.
interface CallTable {
  lastCall: number; // the newest call number committed
  read(callNum: number): Promise<Call | null>; // as committed (`live`, else LevelDB)
  readKey(key: string): Promise<KeyEntry | null>; // an idempotency key's entry, as committed
  keyOps(key: string, entry: KeyEntry): BatchOp[]; // the batch operations writing it
  settings(funcName: string, version: number | undefined): Promise<FunctionSettings | null>; // of that version
  due(now: number, limit: number): Promise<number[]>; // calls whose callback delivery is due, as committed
  ops(call: Call, created: boolean): BatchOp[]; // the batch operations writing this state of the call (and its indexes)
  commit(ops: BatchOp[], touched: Iterable<Call>, lastCall: number): Promise<void>;
}

// Call writes planned one after another, each against the state the ones before it left (this group's
// own writes first, then what is committed), then written as one LevelDB batch by commit(). A write that
// throws while being planned adds nothing, so it fails alone. Results hold only once commit() resolved.
export class CallGroup {
  private readonly ops: BatchOp[] = [];
  private readonly touched = new Map<number, Call>(); // the newest state of each call this group wrote
  private readonly keys = new Map<string, KeyEntry>(); // the idempotency keys this group wrote
  private lastCall: number;

  constructor(private readonly table: CallTable) {
    this.lastCall = table.lastCall;
  }

  private async read(callNum: number): Promise<Call | null> {
    const mine = this.touched.get(callNum);
    return mine ? { ...mine } : this.table.read(callNum);
  }

  private stage(call: Call, created = false): void {
    for (const op of this.table.ops(call, created)) this.ops.push(op);
    this.touched.set(call.callNum, call);
  }

  // A new PENDING call. With an idempotency key: a key used within its window for the same request (same
  // hash) answers the call it made, flagged `replayed`; for another request it is a conflict; else the
  // key is written with the new call, in the same batch. Keys are checked against this group's own first,
  // so the same key sent many times at once makes one call.
  async createCall(c: NewCall): Promise<CreatedCall> {
    const idem = c.idempotency;
    if (idem) {
      const ttlS = idem.ttlS ?? IDEMPOTENCY_TTL_S;
      const had = this.keys.get(idem.key) ?? (await this.table.readKey(idem.key));
      const existing = had && Date.now() - had.at < ttlS * 1000 ? await this.read(had.callNum) : null;
      if (had && existing) {
        if (had.hash !== idem.hash) {
          const what = had.funcName === c.funcName ? `for call ${had.callNum} with other params` : 'for another function';
          throw new ConflictError(
            `idempotency key ${JSON.stringify(shownIdempotencyKey(idem.key))} was already used ${what} within the last ${ttlS} s: use a new key for a new request`,
          );
        }
        return { ...existing, replayed: true };
      }
    }
    const original = c.replayOf === undefined ? undefined : await this.read(c.replayOf);
    if (c.replayOf !== undefined) {
      if (!original) throw new NotFoundError(`call ${c.replayOf} not found`);
      if (original.funcName !== c.funcName)
        throw new ConflictError(`call ${c.replayOf} is a call of ${original.funcName}, not ${c.funcName}`);
      if (original.deadLetter !== 'listed')
        throw new ConflictError(
          original.replayedAs
            ? `call ${c.replayOf} was already replayed as call ${original.replayedAs}`
            : `call ${c.replayOf} is not a listed dead letter`,
        );
    }
    const call: Call = {
      callNum: this.lastCall + 1,
      funcName: c.funcName,
      version: c.version,
      params: c.params ?? {},
      ...(c.request ? { request: c.request } : {}),
      ...(c.schedule ? { schedule: c.schedule } : {}),
      ...(c.callback ? { callback: { url: c.callback.url, state: 'waiting' as const, deliveries: [] } } : {}),
      ...(original ? { replayOf: original.callNum } : {}),
      ...(c.by ? { by: c.by } : {}),
      status: 'PENDING',
      result: '',
      attempts: 0,
      createdAt: new Date().toISOString(),
    };
    this.stage(call, true);
    if (original) this.stage({ ...original, deadLetter: 'replayed', replayedAs: call.callNum });
    if (idem) {
      const entry: KeyEntry = { funcName: c.funcName, hash: idem.hash, callNum: call.callNum, at: Date.now() };
      for (const op of this.table.keyOps(idem.key, entry)) this.ops.push(op);
      this.keys.set(idem.key, entry);
    }
    this.lastCall = call.callNum;
    return { ...call };
  }

  // PENDING -> RUNNING on a node. A call already final is left alone.
  async startCall(callNum: number, node: string): Promise<CallChange> {
    const call = await this.read(callNum);
    if (!call || isFinal(call.status)) return { call, changed: false };
    const next: Call = { ...call, status: 'RUNNING', node, attempts: call.attempts + 1, startedAt: new Date().toISOString() };
    delete next.retryAt; // a retry's run has begun
    this.stage(next);
    return { call: { ...next }, changed: true };
  }

  // RUNNING -> PENDING when its node died before reporting, or gave it back unstarted (`unstartedOn`: that
  // node; then the run it was counted for never happened).
  async requeueCall(callNum: number, unstartedOn?: string): Promise<CallChange> {
    const call = await this.read(callNum);
    if (!call || isFinal(call.status)) return { call, changed: false };
    const unstarted = unstartedOn !== undefined && call.status === 'RUNNING' && call.node === unstartedOn;
    const next: Call = { ...call, status: 'PENDING', ...(unstarted ? { attempts: Math.max(0, call.attempts - 1) } : {}) };
    delete next.node;
    this.stage(next);
    return { call: { ...next }, changed: true };
  }

  // The first final outcome wins: a result reported twice is recorded once. The outcome of a run (`ran`)
  // of a function with `retries` may instead put the call back to PENDING until `retryAt`, keeping the
  // run in its history (common/retry.ts); the same run reported again meanwhile changes nothing.
  async finishCall(callNum: number, outcome: CallOutcome, node?: string, ran = false, attempt?: number): Promise<CallChange> {
    const call = await this.read(callNum);
    if (!call || isFinal(call.status)) return { call, changed: false };
    // The run that ended counts even when the word that it began was lost (then a call waiting for its
    // retry hears of a run newer than the one it waits after).
    const { attempt: ranAs, ...said } = outcome;
    const newer = ranAs !== undefined && ranAs > call.attempts;
    if (ran && ((call.retryAt && !newer) || (attempt !== undefined && attempt < call.attempts))) return { call, changed: false };
    return this.finish({ ...call, attempts: Math.max(call.attempts, ranAs ?? 0) }, said, new Date(), node, ran);
  }

  private async finish(call: Call, outcome: CallOutcome, now: Date, node: string | undefined, ran: boolean): Promise<CallChange> {
    const settings = ran ? await this.table.settings(call.funcName, call.version) : null;
    const after = settings ? afterRun(settings, call.history?.length ?? 0, outcome) : ({ kind: 'final', deadLetter: false } as const);
    if (after.kind === 'retry') {
      const next: Call = {
        ...call,
        status: 'PENDING',
        result: '',
        history: [...(call.history ?? []), attemptOf({ ...call, node: node ?? call.node }, outcome, now)],
        retryAt: new Date(now.getTime() + after.delayMs).toISOString(),
      };
      for (const k of ['node', 'error', 'logs', 'startedAt', 'durationMs', 'response'] as const) delete next[k];
      this.stage(next);
      return { call: { ...next }, changed: true };
    }
    // A web answer's body went to its caller; the record keeps its status, headers and size.
    const { response, ...rest } = outcome;
    const kept = response && { status: response.status, headers: response.headers, bytes: response.bytes ?? bodyBytes(response.body) };
    const next: Call = {
      ...call,
      ...rest,
      ...(kept ? { response: kept } : {}),
      ...(after.deadLetter ? { deadLetter: 'listed' as const } : {}),
      ...(call.callback ? { callback: { ...call.callback, state: 'pending' as const, nextAt: now.toISOString() } } : {}),
      node: node ?? call.node,
      finishedAt: now.toISOString(),
    };
    delete next.retryAt; // ended while waiting for a retry (cancelled): it will not run again
    this.stage(next);
    return { call: { ...next }, changed: true };
  }

  // A listed dead letter leaves the list without being replayed.
  async dismissDeadLetter(callNum: number): Promise<CallChange> {
    const call = await this.read(callNum);
    if (!call || call.deadLetter !== 'listed') return { call, changed: false };
    const next: Call = { ...call, deadLetter: 'dismissed' };
    this.stage(next);
    return { call: { ...next }, changed: true };
  }

  // Due callback deliveries, each claimed for leaseMs: its next try moves that far out, so that another
  // claim (another API) passes it by until then; recordDelivery() sets the real next try.
  async claimDeliveries(leaseMs: number, limit: number): Promise<Call[]> {
    const now = Date.now();
    const out: Call[] = [];
    // `due` is as committed: up to touched.size of its first ones may be claimed (or ended) in this group
    // already, so look that much further, lest claims grouped together share the same first `limit`.
    for (const callNum of await this.table.due(now, limit + this.touched.size)) {
      if (out.length >= limit) break;
      const call = await this.read(callNum);
      const cb = call?.callback;
      if (!call || cb?.state !== 'pending' || Date.parse(cb.nextAt ?? '') > now) continue; // claimed in this group
      const next: Call = { ...call, callback: { ...cb, nextAt: new Date(now + leaseMs).toISOString() } };
      this.stage(next);
      out.push({ ...next });
    }
    return out;
  }

  // One delivery try: kept on the call; then the next try, or the end of its callback.
  async recordDelivery(
    callNum: number,
    delivery: Delivery,
    state: 'pending' | 'delivered' | 'failed',
    nextAt?: string,
  ): Promise<CallChange> {
    const call = await this.read(callNum);
    const cb = call?.callback;
    if (!call || !cb || cb.state !== 'pending') return { call, changed: false };
    const next: Call = {
      ...call,
      callback: { ...cb, state, deliveries: [...cb.deliveries, delivery], ...(state === 'pending' ? { nextAt } : {}) },
    };
    if (state !== 'pending') delete next.callback!.nextAt;
    this.stage(next);
    return { call: { ...next }, changed: true };
  }

  // Writes the group as one batch (nothing at all when no write changed anything).
  async commit(): Promise<void> {
    if (this.ops.length > 0) await this.table.commit(this.ops, this.touched.values(), this.lastCall);
  }
}
