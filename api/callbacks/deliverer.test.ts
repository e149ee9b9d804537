// The callback deliverer against a fake DB service (an outbox in memory with the claim and record rules of
// db/store.ts) and a real HTTP receiver on loopback: what is POSTed and with which headers, retries with
// backoff until a 2xx or the end of the schedule, the try's time limit, no redirect followed, the answer
// read only so far, the bound on deliveries at once, the allow-list checked at each delivery (and the
// checked address the one connected to), an immediate claim when a call ends here, and a clean stop.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Call, Delivery } from '../../common/model.js';
import type { DbContent, DbMsgType, DbResults } from '../../protocol/db.js';
import type { CallEvents } from '../calls.js';
import { AllowList, type Lookup } from '../../common/allow-list.js';
import { BACKOFF, Deliverer, nextTry, type DelivererOptions } from './deliverer.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

// The DB service's outbox as db/store.ts keeps it: a claim takes the due pending callbacks (up to
// `limit`) and moves each one's next try out by the lease; a record appends the try and sets the next one.
class FakeDb {
  readonly calls = new Map<number, Call>();
  readonly claims: { leaseMs: number; limit: number; got: number }[] = [];
  down = false;

  add(call: Call): void {
    this.calls.set(call.callNum, structuredClone(call));
  }

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]> {
    await sleep(1);
    if (this.down) throw new Error('database unavailable');
    if (msgType === 'claimDeliveries') {
      const { leaseMs, limit = 50 } = content as DbContent<'claimDeliveries'>;
      const now = Date.now();
      const out: Call[] = [];
      for (const call of this.calls.values()) {
        const cb = call.callback;
        if (out.length >= limit || cb?.state !== 'pending' || Date.parse(cb.nextAt ?? '') > now) continue;
        cb.nextAt = new Date(now + leaseMs).toISOString();
        out.push(structuredClone(call));
      }
      this.claims.push({ leaseMs, limit, got: out.length });
      return out as DbResults[K];
    }
    if (msgType === 'recordDelivery') {
      const { callNum, delivery, state, nextAt } = content as DbContent<'recordDelivery'>;
      const call = this.calls.get(callNum);
      const cb = call?.callback;
      if (!call || !cb || cb.state !== 'pending') return { call: call ?? null, changed: false } as DbResults[K];
      call.callback = { ...cb, state, deliveries: [...cb.deliveries, delivery], ...(state === 'pending' ? { nextAt } : {}) };
      if (state !== 'pending') delete call.callback.nextAt;
      return { call, changed: true } as DbResults[K];
    }
    throw new Error(`the fake DB has no ${msgType}`);
  }
}

function finishedCall(callNum: number, url: string, over: Partial<Call> = {}): Call {
  return {
    callNum,
    funcName: 'hello',
    version: 1,
    params: { n: callNum },
    status: 'DONE',
    result: '{"ok":true}',
    attempts: 1,
    createdAt: new Date(Date.now() - 1000).toISOString(),
    startedAt: new Date(Date.now() - 900).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: 1234.5,
    node: 'node-a',
    callback: { url, state: 'pending', deliveries: [], nextAt: new Date().toISOString() },
    ...over,
  };
}

interface Got {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

// A receiver on loopback; `answer` decides each request's response (default 200).
async function receiver(answer: (got: Got, res: ServerResponse, n: number) => void = (_g, res) => res.end('ok')) {
  const got: Got[] = [];
  let open = 0;
  let maxOpen = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    open++;
    maxOpen = Math.max(maxOpen, open);
    res.on('close', () => open--);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const g = { path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), at: Date.now() };
      got.push(g);
      answer(g, res, got.length);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    got,
    port,
    url: `http://127.0.0.1:${port}`,
    maxOpen: () => maxOpen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setUp(db: FakeDb, o: Partial<DelivererOptions> = {}): Promise<Deliverer> {
  const d = new Deliverer({ db, allow: AllowList.parse(undefined), log, pollMs: 20, backoff: { firstMs: 20 }, ...o });
  d.start();
  cleanups.push(() => d.stop());
  return d;
}

async function server(answer?: Parameters<typeof receiver>[0]): Promise<Awaited<ReturnType<typeof receiver>>> {
  const r = await receiver(answer);
  cleanups.push(r.close);
  return r;
}

const state = (db: FakeDb, callNum: number): Call['callback'] => db.calls.get(callNum)!.callback;
const ended = (db: FakeDb, callNum: number): Call['callback'] | undefined => {
  const cb = state(db, callNum);
  return cb?.state === 'delivered' || cb?.state === 'failed' ? cb : undefined;
};

describe('a delivery', () => {
  it("POSTs the call's record as JSON with headers naming the call, its status and the try", async () => {
    const r = await server();
    const db = new FakeDb();
    db.add(finishedCall(7, `${r.url}/hook/a?token=s3cret`));
    db.add(finishedCall(8, `${r.url}/hook/b`, { status: 'TIMEOUT', error: 'ran past 1 s', result: '' }));
    db.add(finishedCall(9, `${r.url}/hook/c`, { status: 'ERROR', error: 'boom', durationMs: undefined }));
    await setUp(db);
    for (const n of [7, 8, 9]) expect((await until('delivered', () => ended(db, n)))?.state).toBe('delivered');

    const byPath = new Map(r.got.map((g) => [g.path, g]));
    const a = byPath.get('/hook/a?token=s3cret')!;
    // the body is the call as the DB holds it when claimed, as GET /call/N would answer it then
    const sent = JSON.parse(a.body) as Call;
    expect(sent).toMatchObject({ callNum: 7, funcName: 'hello', status: 'DONE', result: '{"ok":true}', params: { n: 7 } });
    expect(sent.callback).toMatchObject({ url: `${r.url}/hook/a?token=s3cret`, state: 'pending', deliveries: [] });
    expect(a.headers).toMatchObject({
      'content-type': 'application/json',
      host: `127.0.0.1:${r.port}`,
      'x-zfaas-call': '7',
      'x-zfaas-status': 'DONE',
      'x-zfaas-function': 'hello',
      'x-zfaas-delivery': '1',
      'x-call-id': '7',
      'x-function-name': 'hello',
      'x-function-status': '200',
      'x-duration-seconds': '1.234500',
    });
    expect(byPath.get('/hook/b')!.headers).toMatchObject({ 'x-zfaas-status': 'TIMEOUT', 'x-function-status': '504' });
    const c = byPath.get('/hook/c')!.headers;
    expect(c).toMatchObject({ 'x-zfaas-status': 'ERROR', 'x-function-status': '500', 'x-zfaas-call': '9' });
    expect(Number(c['x-duration-seconds'])).toBeCloseTo(0.9, 1); // from its start and end when no durationMs
    expect(state(db, 7)!.deliveries).toEqual([{ at: expect.any(String), status: 200 }]);
    expect(r.got).toHaveLength(3);
  });

  it('tries again with exponential backoff until a 2xx, keeping each try', async () => {
    const r = await server((_g, res, n) => {
      res.statusCode = n <= 2 ? 500 : 204;
      res.end();
    });
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/x`));
    await setUp(db, { pollMs: 60_000, backoff: { firstMs: 100 } }); // the backoff alone times the tries
    const cb = await until('delivered', () => ended(db, 1));
    expect(cb).toMatchObject({ state: 'delivered', deliveries: [{ status: 500 }, { status: 500 }, { status: 204 }] });
    expect(cb!.nextAt).toBeUndefined();
    expect(r.got.map((g) => g.headers['x-zfaas-delivery'])).toEqual(['1', '2', '3']);
    const gaps = [r.got[1]!.at - r.got[0]!.at, r.got[2]!.at - r.got[1]!.at];
    expect(gaps[0]).toBeGreaterThanOrEqual(95);
    expect(gaps[0]).toBeLessThan(195); // not the doubled step
    expect(gaps[1]).toBeGreaterThanOrEqual(195);
    expect(gaps[1]).toBeLessThan(450);
  });

  it('gives up after its tries and records the call failed, saying why each try failed', async () => {
    const r = await server((_g, res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/x`));
    db.add(finishedCall(2, `http://127.0.0.1:1/refused`)); // nothing listens there
    await setUp(db, { backoff: { firstMs: 10, maxTries: 3 } });
    expect(await until('failed', () => ended(db, 1))).toMatchObject({
      state: 'failed',
      deliveries: [{ status: 503 }, { status: 503 }, { status: 503 }],
    });
    const refused = await until('failed', () => ended(db, 2));
    expect(refused!.state).toBe('failed');
    expect(refused!.deliveries).toHaveLength(3);
    expect(refused!.deliveries[0]).toEqual({ at: expect.any(String), error: expect.stringMatching(/ECONNREFUSED/) });
    await sleep(100);
    expect(r.got).toHaveLength(3);
  });

  it('counts a receiver that does not answer in time as a failed try', async () => {
    const r = await server(() => {}); // never answers
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/slow`));
    await setUp(db, { timeoutMs: 150, backoff: { firstMs: 10, maxTries: 1 } });
    const t0 = Date.now();
    const cb = await until('failed', () => ended(db, 1));
    expect(cb!.deliveries).toEqual([{ at: expect.any(String), error: 'no answer within 0.15 s' }]);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('follows no redirect: a 3xx is a failed try', async () => {
    const r = await server((g, res) => {
      if (g.path === '/moved') {
        res.writeHead(307, { location: '/elsewhere' });
        res.end();
      } else res.end('ok');
    });
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/moved`));
    await setUp(db, { backoff: { firstMs: 10, maxTries: 2 } });
    expect(await until('failed', () => ended(db, 1))).toMatchObject({ state: 'failed', deliveries: [{ status: 307 }, { status: 307 }] });
    expect(r.got.map((g) => g.path)).toEqual(['/moved', '/moved']);
  });

  it('reads only the start of an answer: an endless body does not hold the try', async () => {
    const r = await server((_g, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write(Buffer.alloc(64 * 1024, 97)); // and never ends
    });
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/big`));
    await setUp(db, { timeoutMs: 5000 });
    const t0 = Date.now();
    expect(await until('delivered', () => ended(db, 1))).toMatchObject({ state: 'delivered', deliveries: [{ status: 200 }] });
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('makes at most `concurrency` deliveries at once, and delivers them all', async () => {
    const r = await server((_g, res) => setTimeout(() => res.end(), 60));
    const db = new FakeDb();
    for (let n = 1; n <= 12; n++) db.add(finishedCall(n, `${r.url}/n${n}`));
    await setUp(db, { concurrency: 3 });
    for (let n = 1; n <= 12; n++) await until(`call ${n}`, () => ended(db, n));
    expect(r.got).toHaveLength(12);
    expect(r.maxOpen()).toBe(3);
    expect(Math.max(...db.claims.map((c) => c.limit))).toBeLessThanOrEqual(3);
  });
});

describe('the allow-list at delivery', () => {
  it('refuses a target the list does not hold now, without connecting to it', async () => {
    const r = await server();
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/x`));
    await setUp(db, { allow: AllowList.parse('10.0.0.0/8'), backoff: { firstMs: 10, maxTries: 2 } });
    const cb = await until('failed', () => ended(db, 1));
    expect(cb!.deliveries.map((d: Delivery) => d.error)).toEqual([
      expect.stringMatching(/"127\.0\.0\.1" \(port \d+\) is not in this API's callback allow-list/),
      expect.stringMatching(/allow-list/),
    ]);
    expect(r.got).toHaveLength(0);
  });

  it('connects to the address it checked, not to one a second look-up would give', async () => {
    const r = await server();
    const asked: string[] = [];
    // hooks.test exists only in this DNS: the request can reach the receiver only through the checked address
    const lookup: Lookup = async (host) => {
      asked.push(host);
      return host === 'hooks.test' ? [{ address: '127.0.0.1', family: 4 }] : [];
    };
    const db = new FakeDb();
    db.add(finishedCall(1, `http://hooks.test:${r.port}/in`));
    db.add(finishedCall(2, `http://elsewhere.test:${r.port}/out`)); // resolves to nothing: refused
    await setUp(db, { allow: AllowList.parse('127.0.0.0/8', { lookup }), backoff: { firstMs: 10, maxTries: 1 } });
    expect(await until('delivered', () => ended(db, 1))).toMatchObject({ state: 'delivered', deliveries: [{ status: 200 }] });
    expect(await until('failed', () => ended(db, 2))).toMatchObject({ state: 'failed' });
    expect(r.got.map((g) => [g.path, g.headers.host])).toEqual([['/in', `hooks.test:${r.port}`]]);
    expect(asked.filter((h) => h === 'hooks.test')).toHaveLength(1);
  });
});

describe('the deliverer', () => {
  it('claims at once when a call accepted here with a callback ends, without waiting for the poll', async () => {
    const r = await server();
    const db = new FakeDb();
    const events = new EventEmitter<CallEvents>();
    await setUp(db, { events, pollMs: 60_000 });
    await until('the first claim', () => (db.claims.length ? true : undefined));
    const call = finishedCall(5, `${r.url}/now`);
    events.emit('accepted', { ...call, status: 'PENDING', callback: { url: call.callback!.url, state: 'waiting', deliveries: [] } });
    db.add(call);
    const t0 = Date.now();
    events.emit('finished', { callNum: 5, outcome: { status: 'DONE', result: '' } });
    await until('delivered', () => ended(db, 5));
    expect(Date.now() - t0).toBeLessThan(500);
    // a call without a callback does not make a claim (past the second claim that follows an end)
    await sleep(300);
    const claims = db.claims.length;
    events.emit('accepted', { ...finishedCall(6, ''), callback: undefined });
    events.emit('finished', { callNum: 6, outcome: { status: 'DONE', result: '' } });
    await sleep(400);
    expect(db.claims.length).toBe(claims);
  });

  it('keeps polling while the DB service is down and delivers once it answers', async () => {
    const r = await server();
    const db = new FakeDb();
    db.down = true;
    db.add(finishedCall(1, `${r.url}/later`));
    await setUp(db);
    await sleep(100);
    expect(r.got).toHaveLength(0);
    db.down = false;
    expect(await until('delivered', () => ended(db, 1))).toMatchObject({ state: 'delivered' });
  });

  it('stops cleanly: the try under way is cut short and not recorded, and no timer is left', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    const r = await server(() => {}); // holds every request
    const before = timers();
    const db = new FakeDb();
    db.add(finishedCall(1, `${r.url}/held`));
    const events = new EventEmitter<CallEvents>();
    const d = new Deliverer({ db, allow: AllowList.parse(undefined), log, events, pollMs: 20 });
    d.start();
    await until('the try', () => (r.got.length ? true : undefined));
    expect(timers()).toBeGreaterThan(before);
    const t0 = Date.now();
    await d.stop();
    expect(Date.now() - t0).toBeLessThan(500);
    expect(state(db, 1)).toMatchObject({ state: 'pending', deliveries: [] }); // its lease runs out: tried again later
    expect(events.listenerCount('finished') + events.listenerCount('accepted')).toBe(0);
    await sleep(50);
    expect(timers()).toBe(before);
    const claims = db.claims.length;
    d.kick();
    await sleep(60);
    expect(db.claims.length).toBe(claims);
  });
});

describe('the schedule of tries', () => {
  it('doubles from the first step, at most 5 min a step, 10 tries and an hour in all', () => {
    const end = 0;
    const steps: number[] = [];
    let now = end;
    for (let tries = 1; ; tries++) {
      const next = nextTry(BACKOFF, tries, end, now);
      if (next === undefined) break;
      steps.push(next - now);
      now = next;
    }
    expect(steps).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256].map((s) => s * 1000)); // then the 10th try is the last
    expect(nextTry({ ...BACKOFF, maxTries: 20 }, 12, end, 0)).toBe(300_000); // a step is at most 5 min
    expect(nextTry({ ...BACKOFF, maxTries: 20 }, 12, end, 3_400_000)).toBeUndefined(); // past an hour after the call ended
  });
});
