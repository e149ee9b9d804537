// Fan-out batches: one function over many params, "as fast as the cluster allows" (seed 003). Each item
// becomes an ordinary call through Calls.invoke, so it is stored, scheduled, retried and recorded like any
// other. Items are created in a sliding window sized to the cluster's capacity: the cluster always has a
// backlog to work on, yet a batch of 100,000 never floods the DB, the scheduler's queue or memory with
// PENDING calls at once. Batches live in this API process's memory (the calls themselves are in the DB).
import { randomBytes } from 'node:crypto';
import { errText } from '../common/log.js';
import type { Call, CallStatus } from '../common/model.js';
import { namespaceOf } from '../common/namespace.js';
import type { DbClient } from '../db/client.js';
import type { NodeRegistry } from './broker.js';
import type { Calls, CallEvents } from './calls.js';
import { quantile, round } from './quantiles.js';

export const MAX_BATCH_ITEMS = 100_000;
const MAX_KEPT = 100; // batches remembered; the oldest finished ones are forgotten first
const CREATE_PARALLEL = 16; // createCall requests in flight per batch
const EARLY_KEPT = 1000;

// Item states, one byte each.
const WAITING = 0; // not created yet, or created and not finished
const DONE = 1;
const FAILED = 2;

export class TooManyBatches extends Error {}

export interface BatchProgress {
  batchId: string;
  funcName: string;
  version: number;
  state: 'running' | 'finished';
  size: number;
  created: number;
  done: number;
  failed: number;
  pending: number;
  p50: number | null; // ms from acceptance to final state, over the finished items
  p95: number | null;
  callsPerSecond: number;
  elapsedMs: number;
  createdAt: string;
  finishedAt: string | null;
}

export interface BatchItem {
  index: number;
  callNum: number | null;
  status: CallStatus;
  result?: string;
  error?: string;
  durationMs?: number;
}

export class Batch {
  readonly createdAt = Date.now();
  finishedAt?: number;
  next = 0; // index of the next item to create
  creating = 0;
  running = 0; // created and not finished
  created = 0;
  done = 0;
  failed = 0;
  readonly callNums: Float64Array; // 0: not created (yet)
  readonly state: Uint8Array;
  readonly latency: Float64Array; // NaN until finished
  readonly refused = new Map<number, string>(); // items that could not become calls, with why
  private cached?: { at: number; p50: number | null; p95: number | null };

  constructor(
    readonly id: string,
    readonly funcName: string,
    readonly version: number,
    public params: (unknown | undefined)[], // each dropped once its call exists
    readonly by?: string, // the key that sent it: its calls are that key's
  ) {
    this.callNums = new Float64Array(params.length);
    this.state = new Uint8Array(params.length);
    this.latency = new Float64Array(params.length).fill(NaN);
  }

  get size(): number {
    return this.state.length;
  }

  get finished(): boolean {
    return this.done + this.failed === this.size;
  }

  settle(index: number, ok: boolean, latencyMs: number): void {
    if (this.state[index] !== WAITING) return;
    this.state[index] = ok ? DONE : FAILED;
    this.latency[index] = latencyMs;
    if (ok) this.done++;
    else this.failed++;
    if (this.finished) {
      this.finishedAt = Date.now();
      this.params = [];
    }
  }

  progress(): BatchProgress {
    const n = this.done + this.failed;
    if (this.cached?.at !== n) {
      const lat = this.latency.filter((v) => !Number.isNaN(v));
      this.cached = { at: n, p50: quantile(lat, 0.5), p95: quantile(lat, 0.95) };
    }
    const elapsedMs = (this.finishedAt ?? Date.now()) - this.createdAt;
    return {
      batchId: this.id,
      funcName: this.funcName,
      version: this.version,
      state: this.finished ? 'finished' : 'running',
      size: this.size,
      created: this.created,
      done: this.done,
      failed: this.failed,
      pending: this.size - n,
      p50: this.cached.p50,
      p95: this.cached.p95,
      callsPerSecond: elapsedMs > 0 ? round((n * 1000) / elapsedMs) : 0,
      elapsedMs,
      createdAt: new Date(this.createdAt).toISOString(),
      finishedAt: this.finishedAt ? new Date(this.finishedAt).toISOString() : null,
    };
  }
}

export class Batches {
  private readonly batches = new Map<string, Batch>(); // insertion order = age
  private readonly byCall = new Map<number, { batch: Batch; index: number }>();
  // Calls that finished before invoke() returned their number to us (e.g. their runtime was gone).
  private readonly early = new Map<number, { ok: boolean; latencyMs: number }>();

  constructor(
    private readonly calls: Calls,
    private readonly nodes: NodeRegistry,
    private readonly db: Pick<DbClient, 'request'>,
  ) {
    calls.events.on('finished', (f) => this.onFinished(f));
  }

  /** Starts a batch (the function is resolved first: an unknown one is refused before anything runs). */
  async start(funcName: string, version: number | undefined, params: unknown[], by?: string): Promise<Batch> {
    const { fn } = await this.calls.resolveFunction(funcName, version);
    this.makeRoom();
    const b = new Batch(randomBytes(6).toString('hex'), funcName, fn.version, params, by);
    this.batches.set(b.id, b);
    this.pump(b);
    return b;
  }

  get(id: string): Batch | undefined {
    return this.batches.get(id);
  }

  /** Forgets a deleted namespace's batches: one made again under its name never sees them. */
  forgetNamespace(namespace: string): void {
    for (const [id, b] of this.batches) if (namespaceOf(b.funcName) === namespace) this.batches.delete(id);
  }

  // Newest first; `sees`: the batches the caller may see.
  list(sees: (b: Batch) => boolean = () => true): BatchProgress[] {
    return [...this.batches.values()]
      .reverse()
      .filter(sees)
      .map((b) => b.progress());
  }

  callNums(b: Batch): (number | null)[] {
    return Array.from(b.callNums, (n) => n || null);
  }

  /** Items [offset, offset+limit) in input order, each with its call's current status and result. */
  async results(b: Batch, offset: number, limit: number): Promise<BatchItem[]> {
    const end = Math.min(b.size, offset + limit);
    const indexes = Array.from({ length: Math.max(0, end - offset) }, (_, k) => offset + k);
    return mapLimit(indexes, 32, async (index): Promise<BatchItem> => {
      const callNum = b.callNums[index] || null;
      const refused = b.refused.get(index);
      if (refused !== undefined) return { index, callNum: null, status: 'ERROR', error: refused };
      if (callNum === null) return { index, callNum: null, status: 'PENDING' };
      const call: Call | null = await this.db.request('getCall', { callNum });
      if (!call) return { index, callNum, status: 'PENDING' };
      return { index, callNum, status: call.status, result: call.result, error: call.error, durationMs: call.durationMs };
    });
  }

  // How many calls of one batch may be accepted and unfinished at once: enough to keep every slot of
  // every node busy with a backlog behind it, never the whole batch.
  private window(): number {
    return Math.min(1000, Math.max(32, this.nodes.capacity() * 4));
  }

  private pump(b: Batch): void {
    const window = this.window();
    while (b.next < b.size && b.creating < CREATE_PARALLEL && b.creating + b.running < window) {
      const index = b.next++;
      b.creating++;
      void this.create(b, index).finally(() => {
        b.creating--;
        this.pump(b);
      });
    }
  }

  private async create(b: Batch, index: number): Promise<void> {
    const params = b.params[index];
    b.params[index] = undefined;
    let call: Call;
    try {
      ({ call } = await this.calls.invoke(b.funcName, params, b.version, b.by ? { by: b.by } : {}));
    } catch (e) {
      b.refused.set(index, `not started: ${errText(e)}`);
      b.settle(index, false, 0);
      return;
    }
    b.callNums[index] = call.callNum;
    b.created++;
    const early = this.early.get(call.callNum);
    if (early) {
      this.early.delete(call.callNum);
      b.settle(index, early.ok, early.latencyMs);
      return;
    }
    b.running++;
    this.byCall.set(call.callNum, { batch: b, index });
  }

  private onFinished(f: CallEvents['finished'][0]): void {
    const ok = f.outcome.status === 'DONE';
    const latencyMs = f.latencyMs ?? 0;
    const hit = this.byCall.get(f.callNum);
    if (!hit) {
      // Only while some batch is creating calls can a finish outrun its invoke(); keep a few, bounded.
      if (![...this.batches.values()].some((b) => b.creating > 0)) return;
      this.early.set(f.callNum, { ok, latencyMs });
      if (this.early.size > EARLY_KEPT) this.early.delete(this.early.keys().next().value!);
      return;
    }
    this.byCall.delete(f.callNum);
    hit.batch.running--;
    hit.batch.settle(hit.index, ok, latencyMs);
    this.pump(hit.batch);
  }

  private makeRoom(): void {
    for (const [id, b] of this.batches) {
      if (this.batches.size < MAX_KEPT) return;
      if (b.finished) this.batches.delete(id);
    }
    if (this.batches.size >= MAX_KEPT) throw new TooManyBatches(`${MAX_KEPT} batches are still running; wait for one to finish`);
  }
}

/** Maps with at most `limit` promises in flight, keeping the order of `items`. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
