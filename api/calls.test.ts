// A call's life on the API side against fakes: an in-memory DB service (with the real call table,
// db/call-life.ts), a scheduler that only records what it is given, and broker events sent by hand. Covers
// acceptance, a node's word recorded before anyone wakes (and the node told), the retry rule and recovery.
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { FunctionSettingsSchema, type Call, type CallOutcome, type FunctionMeta, type Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { CallIntent, DbContent, DbMsgType, DbResults } from '../protocol/db.js';
import { applyIntent } from '../db/call-life.js';
import { Emitter, type BrokerEvents, type NodeOutcome, type QueuedCall } from './broker.js';
import { Calls, MAX_ATTEMPTS, type CallEvents } from './calls.js';
import { NotFoundError } from '../common/errors.js';
import { MetaCache } from './meta-cache.js';

const runtime = { name: 'node', image: 'zfaas/node:latest', path: '/ws', dependencies: '', run: 'node index.js' } as Runtime;
const fnMeta = (name: string, retry = true, runtimeName = 'node'): FunctionMeta => ({
  functionName: name,
  runtimeName,
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-11-23T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse({ retry }),
});

// The DB service's call and function records, with its rule that the first final state wins.
class FakeDb implements Pick<DbClient, 'request'> {
  readonly calls = new Map<number, Call>();
  readonly functions = new Map<string, FunctionMeta>();
  readonly runtimes = new Map<string, Runtime>([['node', runtime]]);
  readonly log: string[] = [];
  private next = 1;

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]> {
    this.log.push(msgType);
    return this.answer(msgType, content as Record<string, unknown>) as DbResults[K];
  }

  private answer(msgType: DbMsgType, c: Record<string, unknown>): unknown {
    const num = c.callNum as number;
    const call = this.calls.get(num);
    switch (msgType) {
      case 'getFunction':
        return this.functions.get(c.name as string) ?? null;
      case 'getRuntime':
        return this.runtimes.get(c.name as string) ?? null;
      case 'createCall': {
        const created: Call = {
          callNum: this.next++,
          funcName: c.funcName as string,
          version: c.version as number,
          params: c.params,
          status: 'PENDING',
          result: '',
          attempts: 0,
          createdAt: new Date().toISOString(),
        };
        this.calls.set(created.callNum, created);
        return { ...created };
      }
      case 'getCall':
        return call ? { ...call } : null;
      case 'callIntent': {
        if (!call) return { call: null, changed: false, why: 'not found' };
        const fn = this.functions.get(call.funcName);
        const v = applyIntent(call, c.intent as CallIntent, { now: new Date(), settings: fn?.settings ?? null });
        if (!v.changed) return { call: { ...call }, changed: false, why: v.why };
        this.calls.set(num, v.next);
        return { call: { ...v.next }, changed: true };
      }
      case 'listUnfinished':
        return [...this.calls.values()].filter((x) => x.status === 'PENDING' || x.status === 'RUNNING').map((x) => ({ ...x }));
      default:
        throw new Error(`unexpected ${msgType}`);
    }
  }

  // A run of the call begins on node n1 (life L1), as the API records it.
  start(callNum: number): void {
    const call = this.calls.get(callNum)!;
    this.calls.set(callNum, { ...call, status: 'RUNNING', attempts: call.attempts + 1, node: 'n1', life: 'L1' });
  }

  old(callNum: number): void {
    this.calls.get(callNum)!.createdAt = new Date(Date.now() - 60_000).toISOString();
  }
}

class FakeScheduler {
  readonly queued: QueuedCall[] = [];
  readonly known = new Set<number>();
  readonly dropped: number[] = [];
  enqueue(call: QueuedCall): void {
    this.queued.push(call);
  }
  drop(callNum: number): boolean {
    this.dropped.push(callNum);
    return true;
  }
  knows(callNum: number): boolean {
    return this.known.has(callNum);
  }
}

const log = pino({ level: 'silent' });
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

let db: FakeDb;
let scheduler: FakeScheduler;
let links: Emitter<BrokerEvents>;
let meta: MetaCache;
let calls: Calls;
let acks: string[]; // node:callNum the nodes were told is recorded

beforeEach(() => {
  db = new FakeDb();
  db.functions.set('f', fnMeta('f'));
  db.functions.set('once', fnMeta('once', false));
  scheduler = new FakeScheduler();
  links = new Emitter<BrokerEvents>();
  meta = new MetaCache(db);
  acks = [];
  calls = new Calls({ db, log, meta, scheduler, links, nodes: { ack: (n, c) => void acks.push(`${n}:${c}`) }, recoveryGraceMs: 0 });
});

const done: CallOutcome = { status: 'DONE', result: '6' };
// What a node says when a call it holds ends.
const said = (callNum: number, outcome: CallOutcome, o: Partial<NodeOutcome> = {}): NodeOutcome => ({
  callNum,
  node: 'n1',
  life: 'L1',
  outcome,
  ran: true,
  attempt: 1,
  holder: true,
  ...o,
});

describe('Calls', () => {
  it('stores a call PENDING, then hands it to the scheduler with its cached definition and the redundant flag', async () => {
    const accepted: Call[] = [];
    calls.events.on('accepted', (c) => accepted.push(c));
    const { call, fn } = await calls.invoke('f', { roll: '1d6' }, undefined, { redundant: true });
    expect(call.status).toBe('PENDING');
    expect(fn.functionName).toBe('f');
    expect(db.log.indexOf('createCall')).toBeGreaterThan(-1);
    expect(accepted.map((c) => c.callNum)).toEqual([call.callNum]);
    expect(scheduler.queued).toHaveLength(1);
    const q = scheduler.queued[0]!;
    expect(q).toMatchObject({ callNum: call.callNum, funcName: 'f', params: { roll: '1d6' }, redundant: true });
    expect(q.def).toBe(await meta.get('f')); // the cache's own object: the broker sends it once per node
    // A warm call asks the DB for nothing but the new call.
    db.log.length = 0;
    await calls.invoke('f', {});
    expect(db.log).toEqual(['createCall']);
  });

  it('refuses an unknown function, and ends a call whose runtime is gone in ERROR without dispatching it', async () => {
    await expect(calls.invoke('nope', {})).rejects.toBeInstanceOf(NotFoundError);
    db.functions.set('orphan', fnMeta('orphan', true, 'gone'));
    const { call } = await calls.invoke('orphan', {});
    expect(db.calls.get(call.callNum)).toMatchObject({ status: 'ERROR', error: 'runtime gone no longer exists' });
    expect(scheduler.queued).toHaveLength(0);
  });

  it("records a node's outcome through the call's table, tells the node, then wakes waiters with the record", async () => {
    const finished: CallEvents['finished'][0][] = [];
    calls.events.on('finished', (f) => finished.push(f));
    const { call } = await calls.invoke('f', {});
    db.start(call.callNum);
    const waiting = calls.waiters.wait(call.callNum, 10_000);
    links.emit('outcome', said(call.callNum, done));
    const ended = await waiting;
    // what the waiter gets is the record, as GET /call/N reads it: status, result and attempts agree
    expect(ended?.call).toEqual(db.calls.get(call.callNum));
    expect(ended?.call).toMatchObject({ status: 'DONE', result: '6', attempts: 1, node: 'n1' });
    expect(acks).toEqual([`n1:${call.callNum}`]);
    expect(finished).toMatchObject([{ callNum: call.callNum, funcName: 'f', version: 1, node: 'n1', outcome: done }]);
    expect(finished[0]!.latencyMs).toBeGreaterThanOrEqual(0);
    // the same word again (the node did not hear the ack): taken once, the node told again, no second finish
    links.emit('outcome', said(call.callNum, { ...done, result: '7' }));
    await settle();
    expect(db.calls.get(call.callNum)).toMatchObject({ result: '6' });
    expect(acks).toEqual([`n1:${call.callNum}`, `n1:${call.callNum}`]);
    expect(finished).toHaveLength(1);
  });

  it("records a run's start, and counts a run whose start was not heard from its outcome", async () => {
    const { call } = await calls.invoke('f', {});
    links.emit('started', { callNum: call.callNum, node: 'n1', life: 'L1', attempt: 1 });
    await settle();
    expect(db.calls.get(call.callNum)).toMatchObject({ status: 'RUNNING', node: 'n1', life: 'L1', attempts: 1 });
    const { call: other } = await calls.invoke('f', {});
    const waiting = calls.waiters.wait(other.callNum, 10_000);
    links.emit('outcome', said(other.callNum, done));
    expect((await waiting)?.call).toMatchObject({ status: 'DONE', attempts: 1 });
  });

  it('does not record, nor tell the node, while the DB service is away: the node says it again', async () => {
    const { call } = await calls.invoke('f', {});
    db.start(call.callNum);
    const real = db.request.bind(db);
    let away = true;
    db.request = (async (msgType: DbMsgType, content: never) => {
      if (away && msgType === 'callIntent') throw new Error('db service unreachable');
      return real(msgType, content);
    }) as typeof db.request;
    links.emit('outcome', said(call.callNum, done));
    await settle();
    expect(acks).toEqual([]);
    expect(db.calls.get(call.callNum)!.status).toBe('RUNNING');
    // Its outcome is on its way again: recovery leaves it alone (it would run it a second time)...
    expect(calls.knows(call.callNum)).toBe(true);
    db.old(call.callNum);
    scheduler.queued.length = 0;
    expect(await calls.recover()).toBe(0);
    expect(scheduler.queued).toHaveLength(0);
    away = false;
    links.emit('outcome', said(call.callNum, done));
    await settle();
    expect(acks).toEqual([`n1:${call.callNum}`]);
    expect(db.calls.get(call.callNum)!.status).toBe('DONE');
  });

  it('recovers a call whose outcome could not be recorded once its node has not said it again for a while', async () => {
    const forgetful = new Calls({ db, log, meta, scheduler, links, nodes: { ack: () => undefined }, recoveryGraceMs: 0, unrecordedMs: 50 });
    const { call } = await forgetful.invoke('f', {});
    db.start(call.callNum);
    const real = db.request.bind(db);
    db.request = (async (msgType: DbMsgType, content: never) => {
      if (msgType === 'callIntent') throw new Error('db service unreachable');
      return real(msgType, content);
    }) as typeof db.request;
    links.emit('outcome', said(call.callNum, done));
    await settle();
    expect(forgetful.knows(call.callNum)).toBe(true);
    await new Promise((r) => setTimeout(r, 80)); // its node died before saying it again
    expect(forgetful.knows(call.callNum)).toBe(false);
    forgetful.stop();
  });

  it('refuses the word of a node that does not hold a call it does not run, and tells it to forget it', async () => {
    const { call } = await calls.invoke('f', {});
    db.start(call.callNum);
    links.emit('outcome', said(call.callNum, { ...done, result: 'forged' }, { node: 'n9', holder: false }));
    await settle();
    expect(db.calls.get(call.callNum)).toMatchObject({ status: 'RUNNING' });
    expect(acks).toEqual([`n9:${call.callNum}`]);
  });

  describe('node lost: the retry rule', () => {
    it('dispatches again a call that had not started, even for retry=false, keeping the redundant flag', async () => {
      const { call } = await calls.invoke('once', {}, undefined, { redundant: true });
      scheduler.queued.length = 0;
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'fell silent' });
      await settle();
      expect(scheduler.queued).toMatchObject([{ callNum: call.callNum, redundant: true }]);
      expect(db.calls.get(call.callNum)!.status).toBe('PENDING');
    });

    it('dispatches again a running call of a function that allows it, put back to PENDING', async () => {
      const { call } = await calls.invoke('f', {});
      db.start(call.callNum);
      scheduler.queued.length = 0;
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'fell silent' });
      await settle();
      expect(db.log).toContain('callIntent');
      expect(db.calls.get(call.callNum)!.status).toBe('PENDING');
      expect(scheduler.queued.map((q) => q.callNum)).toEqual([call.callNum]);
    });

    it('never runs a retry=false call twice: it ends in ERROR and its waiters hear it', async () => {
      const { call } = await calls.invoke('once', {});
      db.start(call.callNum);
      scheduler.queued.length = 0;
      const waiting = calls.waiters.wait(call.callNum, 10_000);
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'left' });
      const ended = await waiting;
      expect(ended?.call.status).toBe('ERROR');
      expect(ended?.call.error).toMatch(/node n1 lost \(left\) while running the call; not retried/);
      expect(db.calls.get(call.callNum)!.status).toBe('ERROR');
      expect(scheduler.queued).toHaveLength(0);
    });

    it(`gives up after ${MAX_ATTEMPTS} attempts`, async () => {
      const { call } = await calls.invoke('f', {});
      for (let i = 0; i < MAX_ATTEMPTS; i++) db.start(call.callNum);
      scheduler.queued.length = 0;
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'fell silent' });
      await settle();
      expect(db.calls.get(call.callNum)).toMatchObject({ status: 'ERROR', error: expect.stringMatching(/gave up after 3 attempts/) });
      expect(scheduler.queued).toHaveLength(0);
    });

    it('leaves alone a call the DB already holds finished', async () => {
      const { call } = await calls.invoke('f', {});
      db.start(call.callNum);
      Object.assign(db.calls.get(call.callNum)!, { status: 'DONE', result: '3' });
      scheduler.queued.length = 0;
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'fell silent' });
      await settle();
      expect(db.calls.get(call.callNum)).toMatchObject({ status: 'DONE', result: '3' });
      expect(scheduler.queued).toHaveLength(0);
    });
  });

  describe('retries after a failed run', () => {
    const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom' };
    // What the DB does when a node records a failed run of a function with `retries`.
    const putBack = (callNum: number, inMs: number): string => {
      const retryAt = new Date(Date.now() + inMs).toISOString();
      Object.assign(db.calls.get(callNum)!, { status: 'PENDING', retryAt });
      return retryAt;
    };

    it('does not wake waiters, and dispatches the call again at retryAt as its next attempt', async () => {
      db.functions.set('r', { ...fnMeta('r'), settings: FunctionSettingsSchema.parse({ retries: 2, retryBackoff: 150 }) });
      const { call } = await calls.invoke('r', {});
      db.start(call.callNum);
      scheduler.queued.length = 0;
      const heard: CallEvents['retrying'][0][] = [];
      calls.events.on('retrying', (r) => heard.push(r));
      const waiting = calls.waiters.wait(call.callNum, 600);
      links.emit('outcome', said(call.callNum, failed));
      await settle();
      const retryAt = db.calls.get(call.callNum)!.retryAt;
      expect(heard).toMatchObject([{ callNum: call.callNum, funcName: 'r', retryAt }]);
      expect(acks).toEqual([`n1:${call.callNum}`]);
      await new Promise((r) => setTimeout(r, 50));
      expect(scheduler.queued).toHaveLength(0); // not before its time
      await new Promise((r) => setTimeout(r, 250));
      expect(scheduler.queued).toMatchObject([{ callNum: call.callNum, attempt: 2 }]);
      expect(await waiting).toBeNull(); // the failed run woke nobody
    });

    it('does not dispatch a call that ended meanwhile (cancelled while it waited)', async () => {
      db.functions.set('r', { ...fnMeta('r'), settings: FunctionSettingsSchema.parse({ retries: 2, retryBackoff: 100 }) });
      const { call } = await calls.invoke('r', {});
      db.start(call.callNum);
      scheduler.queued.length = 0;
      links.emit('outcome', said(call.callNum, failed));
      await settle();
      Object.assign(db.calls.get(call.callNum)!, { status: 'ERROR', cancelled: true });
      await new Promise((r) => setTimeout(r, 250));
      expect(scheduler.queued).toHaveLength(0);
    });

    it('recovery leaves a call waiting for its retry until retryAt (after an API restart)', async () => {
      const { call } = await calls.invoke('f', {});
      db.start(call.callNum);
      db.old(call.callNum);
      scheduler.queued.length = 0;
      putBack(call.callNum, 200);
      expect(await calls.recover()).toBe(0);
      expect(scheduler.queued).toHaveLength(0);
      await new Promise((r) => setTimeout(r, 350));
      expect(scheduler.queued.map((q) => q.callNum)).toEqual([call.callNum]);
    });

    it("does not count runs retried by the function's own `retries` against the node-loss limit", async () => {
      const { call } = await calls.invoke('f', {});
      for (let i = 0; i < MAX_ATTEMPTS; i++) db.start(call.callNum);
      db.calls.get(call.callNum)!.history = [1, 2].map((attempt) => ({ attempt, status: 'ERROR' as const, finishedAt: '' }));
      scheduler.queued.length = 0;
      links.emit('nodeLost', { node: 'n1', life: 'L1', calls: [call.callNum], why: 'fell silent' });
      await settle();
      expect(scheduler.queued).toMatchObject([{ callNum: call.callNum, attempt: MAX_ATTEMPTS + 1 }]);
    });
  });

  it('dispatches again a call a draining node gave back, even for retry=false, its unstarted run not counted', async () => {
    const { call } = await calls.invoke('once', {});
    db.start(call.callNum);
    scheduler.queued.length = 0;
    links.emit('givenBack', { node: 'n1', calls: [call.callNum] });
    await settle();
    expect(db.calls.get(call.callNum)).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(scheduler.queued.map((q) => q.callNum)).toEqual([call.callNum]);
  });

  describe('recover()', () => {
    it('rescues unfinished calls that no node and no queue knows of, and only those', async () => {
      const made = [];
      for (let i = 0; i < 4; i++) made.push((await calls.invoke('f', {})).call.callNum);
      const [known, fresh, queuedWhenStopped, lostRunning] = made as [number, number, number, number];
      scheduler.queued.length = 0;
      for (const n of [known, queuedWhenStopped, lostRunning]) db.old(n);
      scheduler.known.add(known);
      db.start(lostRunning);
      expect(await calls.recover()).toBe(2);
      expect(scheduler.queued.map((q) => q.callNum).sort()).toEqual([queuedWhenStopped, lostRunning].sort());
      expect(db.calls.get(lostRunning)!.status).toBe('PENDING');
      expect(db.calls.get(fresh)!.status).toBe('PENDING'); // being accepted right now: not touched
    });

    it('waits after the API starts, for nodes to report what they hold', async () => {
      const patient = new Calls({ db, log, meta, scheduler, links: new Emitter<BrokerEvents>(), nodes: { ack: () => undefined } });
      const { call } = await patient.invoke('f', {});
      db.old(call.callNum);
      scheduler.queued.length = 0;
      expect(await patient.recover()).toBe(0);
      expect(scheduler.queued).toHaveLength(0);
    });
  });

  // With the DB service in this process, a call write's result is told before LevelDB wrote it
  // (DbClient.requestPlanned): here each such write waits until the test lets it be written, or fails.
  describe('told a record before it is written', () => {
    class EarlyDb extends FakeDb {
      hold = new Set<DbMsgType>();
      private readonly gates: Array<{ msgType: DbMsgType; write(ok: boolean): void }> = [];
      async requestPlanned<K extends DbMsgType>(
        msgType: K,
        content: DbContent<K>,
        planned: (d: DbResults[K]) => void,
      ): Promise<DbResults[K]> {
        const data = await this.request(msgType, content);
        planned(data);
        if (!this.hold.has(msgType)) return data;
        await new Promise<void>((resolve, reject) =>
          this.gates.push({ msgType, write: (ok) => (ok ? resolve() : reject(new Error('disk full'))) }),
        );
        return data;
      }
      // Lets the oldest held write of this type be written, or fail.
      write(msgType: DbMsgType, ok = true): void {
        const i = this.gates.findIndex((g) => g.msgType === msgType);
        this.gates.splice(i, 1)[0]!.write(ok);
      }
    }
    let early: EarlyDb;
    let told: string[]; // what nodes were told to stop
    beforeEach(() => {
      early = new EarlyDb();
      early.functions.set('f', fnMeta('f'));
      told = [];
      links = new Emitter<BrokerEvents>(); // the outer Calls listens to the other one
      calls = new Calls({
        db: early,
        log,
        meta: new MetaCache(early),
        scheduler,
        links,
        nodes: {
          ack: (n, c) => void acks.push(`${n}:${c}`),
          holder: () => 'n1',
          tell: (n, m) => void told.push(`${n}:${JSON.stringify(m)}`),
        },
        recoveryGraceMs: 0,
      });
    });

    it('queues a call once its record is decided, before it is written, and only once', async () => {
      early.hold.add('createCall');
      const accepted: number[] = [];
      calls.events.on('accepted', (c) => accepted.push(c.callNum));
      // A streamed answer's listener is set before the call is queued: its pieces may come from then on.
      const listened: string[] = [];
      const def = await calls.resolveFunction('f');
      const invoking = calls.invokeResolved(def, { n: 1 }, { listen: (n) => listened.push(`${n} queued ${scheduler.queued.length}`) });
      await settle();
      expect(listened).toEqual(['1 queued 0']);
      expect(scheduler.queued.map((q) => q.callNum)).toEqual([1]);
      expect(accepted).toEqual([]); // its caller and observers hear of it once it is written
      early.write('createCall');
      expect((await invoking).call).toMatchObject({ callNum: 1, status: 'PENDING' });
      expect(accepted).toEqual([1]);
      expect(scheduler.queued).toHaveLength(1);
    });

    it('takes a call out of the queue, and stops its run, when its record could not be written', async () => {
      early.hold.add('createCall');
      const invoking = calls.invoke('f', {});
      await settle();
      expect(scheduler.queued.map((q) => q.callNum)).toEqual([1]);
      early.write('createCall', false);
      await expect(invoking).rejects.toThrow('disk full');
      expect(scheduler.dropped).toEqual([1]);
      expect(told).toEqual(['n1:{"type":"cancel","callNum":1}']);
      // the cancelled run's outcome finds no call: the node is told to forget it
      early.calls.delete(1);
      links.emit('outcome', said(1, { status: 'ERROR', result: '', cancelled: true }));
      await settle();
      expect(acks).toEqual(['n1:1']);
    });

    it("wakes a call's waiters once its final record is decided; the node and observers hear it once written", async () => {
      const finished: number[] = [];
      calls.events.on('finished', (f) => finished.push(f.callNum));
      const { call } = await calls.invoke('f', {});
      early.start(call.callNum);
      early.hold.add('callIntent');
      const waiting = calls.waiters.wait(call.callNum, 10_000);
      links.emit('outcome', said(call.callNum, done));
      expect((await waiting)?.call).toMatchObject({ status: 'DONE', result: '6' });
      expect(acks).toEqual([]);
      expect(finished).toEqual([]);
      early.write('callIntent');
      await settle();
      expect(acks).toEqual([`n1:${call.callNum}`]);
      expect(finished).toEqual([call.callNum]);
    });

    it('does not tell the node an outcome whose record could not be written: it says it again', async () => {
      const { call } = await calls.invoke('f', {});
      early.start(call.callNum);
      early.hold.add('callIntent');
      links.emit('outcome', said(call.callNum, done));
      await settle();
      early.write('callIntent', false);
      await settle();
      expect(acks).toEqual([]);
      expect(calls.knows(call.callNum)).toBe(true); // not recovered while the node says it again
    });
  });
});
