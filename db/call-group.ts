// A group of call writes (createCall and the intents, dead letters, callback deliveries): planned one after
// another, each against the state the ones before it left, then written at once by the store's commit
// (group commit). The rules are here and in db/call-life.ts, once for every backend; a backend (CallTable)
// only reads records as committed and writes the group's result atomically.
import type { Call, Delivery, FunctionSettings } from '../common/model.js';
import {
  IDEMPOTENCY_TTL_S,
  shownIdempotencyKey,
  type CallChange,
  type CallIntent,
  type CreatedCall,
  type DbContent,
} from '../protocol/db.js';
import { applyIntent } from './call-life.js';
import { ConflictError, NotFoundError } from './store-api.js';

// Where a request id is kept: beside the idempotency keys, under a prefix no namespace has (a namespace
// name never starts with "~"), so that no caller's key meets it. A request id begins with the time it was
// made (requestIdAt), so that the store drops those past any resend by one range of keys (requestKeysBefore).
export const REQUEST_KEY_PREFIX = '~request~';
export const requestKey = (requestId: string): string => `${REQUEST_KEY_PREFIX}${requestId}`;
export const requestIdAt = (ms: number): string => Math.max(0, Math.floor(ms)).toString(36).padStart(9, '0');
export const requestKeysBefore = (ms: number): string => requestKey(requestIdAt(ms));
// A request is sent again within its client's timeout (10 s): its id is kept well past that.
export const REQUEST_KEEP_MS = 10 * 60_000;

export type NewCall = Omit<DbContent<'createCall'>, 'params'> & { params?: unknown };

// What an idempotency key made: the call, for which request (`hash`, see api/idempotency.ts), when (ms).
export interface KeyEntry {
  funcName: string;
  hash: string;
  callNum: number;
  at: number;
}

// What a CallGroup needs of the store. `Op`: the backend's own write operations, written by commit().
export interface CallTable<Op = unknown> {
  nextCallNum(after: number): Promise<number>; // a new call's number (after: this group's newest one, or 0)
  read(callNum: number): Promise<Call | null>; // as committed (a backend shared by services: locked for this group)
  lock?(callNums: number[]): Promise<void>; // reads ahead (and locks) the calls the group's writes name, at once
  readKey(key: string): Promise<KeyEntry | null>; // an idempotency key's entry, as committed (and locked)
  keyOps(key: string, entry: KeyEntry, had: KeyEntry | null): Op[]; // the operations writing it (over `had`)
  settings(funcName: string, version: number | undefined): Promise<FunctionSettings | null>; // of that version
  due(now: number, limit: number): Promise<number[]>; // calls whose callback delivery is due, as committed
  ops(call: Call, created: boolean): Op[]; // the operations writing this state of the call (and its indexes)
  // Writes ops and the newest state of each call touched, all or nothing; also called for a group that
  // wrote nothing (touched empty), so that a backend ends what its reads began.
  commit(ops: Op[], touched: Map<number, Call>, lastCall: number): Promise<void>;
}

// Call writes planned one after another, each against the state the ones before it left (this group's
// own writes first, then what is committed), then written as one LevelDB batch by commit(). A write that
// throws while being planned adds nothing, so it fails alone. Results hold only once commit() resolved.
export class CallGroup<Op = unknown> {
  private readonly ops: Op[] = []; // idempotency keys' operations; the calls' are made at commit
  private readonly touched = new Map<number, Call>(); // the newest state of each call this group wrote
  private readonly created = new Set<number>(); // the calls this group made
  private readonly keys = new Map<string, KeyEntry>(); // the idempotency keys this group wrote
  private lastCall = 0; // the newest call number this group made

  constructor(private readonly table: CallTable<Op>) {}

  // The calls the next writes name, read ahead at once where the backend can (one query for many).
  async readAhead(callNums: number[]): Promise<void> {
    const todo = callNums.filter((n) => !this.touched.has(n));
    if (todo.length > 0) await this.table.lock?.(todo);
  }

  private async read(callNum: number): Promise<Call | null> {
    const mine = this.touched.get(callNum);
    return mine ? { ...mine } : this.table.read(callNum);
  }

  // A call changed twice in one group (a start and its outcome) is written once, in its newest state.
  private stage(call: Call, created = false): void {
    if (created) this.created.add(call.callNum);
    this.touched.set(call.callNum, call);
  }

  // A new PENDING call. With an idempotency key: a key used within its window for the same request (same
  // hash) answers the call it made, flagged `replayed`; for another request it is a conflict; else the
  // key is written with the new call, in the same batch. Keys are checked against this group's own first,
  // so the same key sent many times at once makes one call.
  async createCall(c: NewCall): Promise<CreatedCall> {
    // The same request sent again to another DB service (db/resend.ts): the call it made, as first answered.
    const reqKey = c.requestId === undefined ? undefined : requestKey(c.requestId);
    const byRequest = reqKey === undefined ? null : (this.keys.get(reqKey) ?? (await this.table.readKey(reqKey)));
    if (byRequest) {
      const made = await this.read(byRequest.callNum);
      if (made) return made;
    }
    const idem = c.idempotency;
    const committedKey = idem ? await this.table.readKey(idem.key) : null; // what the key's write goes over
    if (idem) {
      const ttlS = idem.ttlS ?? IDEMPOTENCY_TTL_S;
      const had = this.keys.get(idem.key) ?? committedKey;
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
      callNum: await this.table.nextCallNum(this.lastCall),
      funcName: c.funcName,
      version: c.version,
      params: c.params ?? {},
      ...(c.request ? { request: c.request } : {}),
      ...(c.schedule ? { schedule: c.schedule } : {}),
      ...(c.callback ? { callback: { url: c.callback.url, state: 'waiting' as const, deliveries: [] } } : {}),
      ...(original ? { replayOf: original.callNum } : {}),
      ...(c.by ? { by: c.by } : {}),
      ...(c.api ? { api: c.api } : {}),
      status: 'PENDING',
      result: '',
      attempts: 0,
      createdAt: new Date().toISOString(),
    };
    this.stage(call, true);
    if (original) this.stage({ ...original, deadLetter: 'replayed', replayedAs: call.callNum });
    if (idem) {
      const entry: KeyEntry = { funcName: c.funcName, hash: idem.hash, callNum: call.callNum, at: Date.now() };
      for (const op of this.table.keyOps(idem.key, entry, committedKey)) this.ops.push(op);
      this.keys.set(idem.key, entry);
    }
    if (reqKey !== undefined) {
      const entry: KeyEntry = { funcName: c.funcName, hash: '', callNum: call.callNum, at: Date.now() };
      for (const op of this.table.keyOps(reqKey, entry, null)) this.ops.push(op);
      this.keys.set(reqKey, entry);
    }
    this.lastCall = call.callNum;
    return { ...call };
  }

  // An intent for the call, as its table (call-life.ts) says: the next record, or why there is none.
  async callIntent(callNum: number, intent: CallIntent): Promise<CallChange> {
    const call = await this.read(callNum);
    if (!call) return { call: null, changed: false, why: `call ${callNum} not found` };
    const needsSettings = intent.kind === 'nodeLost' || (intent.kind === 'outcome' && intent.ran);
    const settings = needsSettings ? await this.table.settings(call.funcName, call.version) : null;
    const v = applyIntent(call, intent, { now: new Date(), settings });
    if (!v.changed) return { call, changed: false, why: v.why };
    this.stage(v.next);
    return { call: { ...v.next }, changed: true };
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

  // Writes the group at once (a backend writes nothing when no write changed anything).
  async commit(): Promise<void> {
    const ops = [...this.ops];
    for (const [callNum, call] of this.touched) for (const op of this.table.ops(call, this.created.has(callNum))) ops.push(op);
    await this.table.commit(ops, this.touched, this.lastCall);
  }
}
