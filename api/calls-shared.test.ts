// The API's side of a call on a store shared with other APIs (api/leases.ts), against fakes: an in-memory
// DB service with the real call table, a scheduler that records what it is given. Each call names the API
// that accepted it; only that API dispatches it, rescues it or waits for its retry; adopted calls are
// recovered as on a start (waiting ones dispatched, running ones given the grace to be reported); and a
// waiter here wakes when another API finished its call.
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { FunctionSettingsSchema, type Call, type FunctionMeta, type Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { CallIntent, DbContent, DbMsgType, DbResults } from '../protocol/db.js';
import { applyIntent } from '../db/call-life.js';
import { Emitter, type BrokerEvents, type QueuedCall } from './broker.js';
import { Calls } from './calls.js';
import { MetaCache } from './meta-cache.js';

const runtime = { name: 'node', image: 'zfaas/node:latest', path: '/ws', dependencies: '', run: 'node index.js' } as Runtime;
const fn: FunctionMeta = {
  functionName: 'f',
  runtimeName: 'node',
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-11-23T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse({}),
};

class FakeDb implements Pick<DbClient, 'request'> {
  readonly calls = new Map<number, Call>();
  private next = 1;

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]> {
    const c = content as Record<string, unknown>;
    const call = this.calls.get(c.callNum as number);
    const out = ((): unknown => {
      switch (msgType) {
        case 'getFunction':
          return fn;
        case 'getRuntime':
          return runtime;
        case 'createCall': {
          const made: Call = { ...this.make(c.api as string | undefined), params: c.params };
          return { ...made };
        }
        case 'getCall':
          return call ? { ...call } : null;
        case 'getCalls':
          return (c.callNums as number[]).flatMap((n) => (this.calls.has(n) ? [{ ...this.calls.get(n)! }] : []));
        case 'callIntent': {
          if (!call) return { call: null, changed: false, why: 'not found' };
          const v = applyIntent(call, c.intent as CallIntent, { now: new Date(), settings: fn.settings });
          if (!v.changed) return { call: { ...call }, changed: false, why: v.why };
          this.calls.set(call.callNum, v.next);
          return { call: { ...v.next }, changed: true };
        }
        case 'listUnfinished':
          return [...this.calls.values()].filter((x) => x.status === 'PENDING' || x.status === 'RUNNING').map((x) => ({ ...x }));
        default:
          throw new Error(`unexpected ${msgType}`);
      }
    })();
    return out as DbResults[K];
  }

  // A call as another API (or this one) made it a minute ago.
  make(api: string | undefined, status: Call['status'] = 'PENDING'): Call {
    const call: Call = {
      callNum: this.next++,
      funcName: 'f',
      version: 1,
      params: {},
      status,
      result: '',
      attempts: status === 'RUNNING' ? 1 : 0,
      createdAt: new Date(Date.now() - 60_000).toISOString(),
      ...(api ? { api } : {}),
      ...(status === 'RUNNING' ? { node: 'n1', life: 'L1' } : {}),
    };
    this.calls.set(call.callNum, call);
    return call;
  }
}

class FakeScheduler {
  readonly queued: QueuedCall[] = [];
  enqueue(call: QueuedCall): void {
    this.queued.push(call);
  }
  knows(callNum: number): boolean {
    return this.queued.some((q) => q.callNum === callNum);
  }
  clear(): number {
    return this.queued.splice(0).length;
  }
  drop(callNum: number): boolean {
    const i = this.queued.findIndex((q) => q.callNum === callNum);
    if (i >= 0) this.queued.splice(i, 1);
    return i >= 0;
  }
}

let db: FakeDb;
let scheduler: FakeScheduler;
let links: Emitter<BrokerEvents>;
let calls: Calls;
const owner = { current: 'api-1' as string | undefined };
const reported = new Set<number>();
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

beforeEach(() => {
  db = new FakeDb();
  scheduler = new FakeScheduler();
  links = new Emitter<BrokerEvents>();
  owner.current = 'api-1';
  reported.clear();
  calls = new Calls({
    db,
    log: pino({ level: 'silent' }),
    meta: new MetaCache(db),
    scheduler,
    links,
    nodes: { ack: () => undefined },
    recoveryGraceMs: 0,
    owner,
    reported: (n) => reported.has(n),
    watchMs: 20,
  });
});

describe('Calls on a store shared with other APIs', () => {
  it('marks a call it accepts as its own', async () => {
    const { call } = await calls.invoke('f', { x: 1 });
    expect(db.calls.get(call.callNum)!.api).toBe('api-1');
    owner.current = undefined; // alone (LevelDB): no mark
    const { call: alone } = await calls.invoke('f', {});
    expect(db.calls.get(alone.callNum)!.api).toBeUndefined();
  });

  it("recovers its own unfinished calls and leaves another API's alone", async () => {
    const mine = db.make('api-1');
    const theirs = db.make('api-2');
    const theirsRunning = db.make('api-2', 'RUNNING');
    await calls.recover();
    expect(scheduler.queued.map((q) => q.callNum)).toEqual([mine.callNum]);
    expect(db.calls.get(theirs.callNum)!.status).toBe('PENDING');
    expect(db.calls.get(theirsRunning.callNum)!.status).toBe('RUNNING'); // not declared lost here
  });

  it("does not dispatch again another API's call whose node was lost here", async () => {
    const theirs = db.make('api-2', 'RUNNING');
    links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [theirs.callNum], why: 'fell silent' });
    await settle();
    expect(db.calls.get(theirs.callNum)!.status).toBe('PENDING'); // the table's word, once
    expect(scheduler.queued).toEqual([]); // its own API dispatches it
  });

  it('dispatches adopted waiting calls at once, and gives adopted running ones the grace to be reported', async () => {
    calls = new Calls({
      db,
      log: pino({ level: 'silent' }),
      meta: new MetaCache(db),
      scheduler,
      links,
      nodes: { ack: () => undefined },
      recoveryGraceMs: 300,
      owner,
      reported: (n) => reported.has(n),
    });
    const waiting = db.make('api-1');
    const running = db.make('api-1', 'RUNNING');
    const held = db.make('api-1', 'RUNNING');
    reported.add(held.callNum); // a node says it holds it
    await calls.adopt([waiting, running, held].map((c) => db.calls.get(c.callNum)!));
    expect(scheduler.queued.map((q) => q.callNum)).toEqual([waiting.callNum]);
    (calls as unknown as { startedAt: number }).startedAt = 0; // past the start's grace
    await calls.recover();
    expect(db.calls.get(running.callNum)!.status).toBe('RUNNING'); // within its grace
    await new Promise((r) => setTimeout(r, 350));
    await calls.recover();
    expect(db.calls.get(running.callNum)!.status).toBe('PENDING'); // no node reported it: the node-lost rule
    expect(scheduler.queued.map((q) => q.callNum)).toEqual([waiting.callNum, running.callNum]);
    expect(db.calls.get(held.callNum)!.status).toBe('RUNNING'); // its node holds it
  });

  it('wakes a waiter here when another API recorded the end of its call', async () => {
    const { call } = await calls.invoke('f', {});
    const ended = calls.waiters.wait(call.callNum, 5_000);
    calls.startWatch();
    db.calls.set(call.callNum, { ...db.calls.get(call.callNum)!, status: 'DONE', result: '42', finishedAt: new Date().toISOString() });
    const got = await ended;
    calls.stop();
    expect(got?.call).toMatchObject({ callNum: call.callNum, status: 'DONE', result: '42' });
  });

  it('tells its observers (the event stream) of a call it accepted that ended through another API, and leaves it unqueued', async () => {
    const { call } = await calls.invoke('f', {});
    const finished: number[] = [];
    calls.events.on('finished', (f) => finished.push(f.callNum));
    (calls as unknown as { open: Map<number, { at: number }> }).open.get(call.callNum)!.at = Date.now() - 5_000; // accepted a while ago
    db.calls.set(call.callNum, { ...db.calls.get(call.callNum)!, status: 'ERROR', cancelled: true, result: '' }); // cancelled elsewhere
    calls.startWatch();
    await new Promise((r) => setTimeout(r, 100));
    calls.stop();
    expect(finished).toEqual([call.callNum]);
    expect(scheduler.queued).toEqual([]);
  });

  it('leaves what it queued when its calls went to another API', async () => {
    await calls.invoke('f', {});
    await calls.invoke('f', {});
    expect(scheduler.queued).toHaveLength(2);
    calls.leaseLost();
    expect(scheduler.queued).toHaveLength(0);
  });
});
