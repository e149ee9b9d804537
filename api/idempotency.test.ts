// Idempotency keys on the API side without Docker: the request hash, reading the key, what a replay
// answers from the record; and POST /invokeFunction and the web path through express, against the real DB
// service in this process (LevelDB in a temp dir) with a scheduler that only records what it is given and
// results sent by hand as a node's would be.
import express from 'express';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Request } from 'express';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Call, CallOutcome } from '../common/model.js';
import { DbClient } from '../db/client.js';
import { DbServer } from '../db/server.js';
import { freePort, tempDir } from '../test/helpers/platform.js';
import { Emitter, type BrokerEvents, type QueuedCall } from './broker.js';
import { Calls } from './calls.js';
import { errorResponder } from './http.js';
import { shownIdempotencyKey } from '../protocol/db.js';
import { callerOf, canonicalJson, idempotencyKey, idempotencyOf, idempotencyTtl } from './idempotency.js';
import { recordedOutcome } from './ended.js';
import { OPERATOR_DEFAULT, Scope } from './tenancy/scope.js';
import type { Refusal } from './tenancy/identity.js';
import { invokeRouter } from './handlers/invoke.js';
import { StreamHub } from './streams.js';
import { webRouter } from './handlers/web.js';
import { MetaCache } from './meta-cache.js';

const log = pino({ level: 'silent' });
// As node has them: repeated headers joined in `headers`, kept apart in `headersDistinct`.
const withHeaders = (h: Record<string, string[]>): Request =>
  ({ headers: Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v.join(', ')])), headersDistinct: h }) as unknown as Request;

describe('the request a key stands for', () => {
  it('is the function by name and the params as canonical JSON, and for a web call what was asked', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe('{"a":[{"c":null,"d":2}],"b":1}');
    const h = (name: string, params: unknown): string => idempotencyOf('k', 86400, 'operator', name, params).hash;
    expect(h('f', { a: 1, b: { c: 2, d: 3 } })).toBe(h('f', { b: { d: 3, c: 2 }, a: 1 }));
    expect(h('f', undefined)).toBe(h('f', {}));
    expect(h('f', { a: 1 })).not.toBe(h('f', { a: 2 }));
    expect(h('f', { a: 1 })).not.toBe(h('g', { a: 1 }));
    const web = { method: 'POST', path: '/', query: '', body: Buffer.from([1, 2]) };
    const w = (over: Partial<typeof web>): string => idempotencyOf('k', 86400, 'operator', 'f', {}, { ...web, ...over }).hash;
    expect(w({})).toBe(w({ body: Buffer.from([1, 2]) }));
    for (const other of [w({ body: Buffer.from([1, 3]) }), w({ method: 'PUT' }), w({ path: '/x' }), w({ query: 'a=1' }), h('f', {})])
      expect(other).not.toBe(w({}));
    expect(idempotencyOf('k', 60, 'operator', 'f', {}).ttlS).toBe(60);
    expect(idempotencyTtl(undefined)).toBe(24 * 3600);
    expect(idempotencyTtl('90')).toBe(90);
    expect(() => idempotencyTtl('soon')).toThrow(/ZFAAS_IDEMPOTENCY_TTL/);
  });

  it('keeps a key under the namespace of the function and the caller who sent it', () => {
    const team = new Scope('team-a', 'invoker', '0123456789abcdef');
    const keyOf = (scope: Scope, anonymous: boolean, fn: string): string =>
      idempotencyOf('order-1', 60, callerOf(scope, anonymous, fn), fn, {}).key;
    expect(keyOf(team, false, 'team-a~f')).toBe('team-a~key:0123456789abcdef~order-1');
    expect(keyOf(OPERATOR_DEFAULT, false, 'f')).toBe('default~operator~order-1');
    // The anonymous callers of a public function are one caller, apart from every keyed one.
    expect(keyOf(OPERATOR_DEFAULT, true, 'team-a~f')).toBe('team-a~web:f~order-1');
    expect(keyOf(OPERATOR_DEFAULT, true, 'g')).toBe('default~web:g~order-1');
    // Messages show the key as it was sent.
    expect(shownIdempotencyKey('team-a~key:0123456789abcdef~a~b')).toBe('a~b');
    expect(shownIdempotencyKey('plain')).toBe('plain');
  });

  it('reads the key from the header or the body field, and refuses a bad or repeated header', () => {
    expect(idempotencyKey(withHeaders({}))).toBeUndefined();
    expect(idempotencyKey(withHeaders({}), 'b')).toBe('b');
    expect(idempotencyKey(withHeaders({ 'idempotency-key': ['h'] }))).toBe('h');
    expect(idempotencyKey(withHeaders({ 'idempotency-key': ['h'] }), 'h')).toBe('h');
    const refused = (h: string[], body?: string): unknown => {
      try {
        idempotencyKey(withHeaders({ 'idempotency-key': h }), body);
      } catch (e) {
        return { status: (e as { status?: number }).status, message: (e as Error).message };
      }
      return 'accepted';
    };
    expect(refused(['h'], 'b')).toEqual({ status: 400, message: expect.stringMatching(/header and the idempotencyKey field differ/) });
    expect(refused([''])).toEqual({ status: 400, message: expect.stringMatching(/^invalid Idempotency-Key header: must be 1 to 255/) });
    expect(refused(['x'.repeat(256)])).toMatchObject({ status: 400 });
    expect(refused(['ü'])).toMatchObject({ status: 400 });
    expect(refused(['a', 'b'])).toEqual({ status: 400, message: expect.stringMatching(/sent more than once/) });
  });

  it('gives back a web answer from the record when the record holds its whole body', () => {
    const call = (result: string, bytes: number): Call => ({
      callNum: 1,
      funcName: 'f',
      params: {},
      status: 'DONE',
      result,
      attempts: 1,
      createdAt: '',
      response: { status: 201, headers: { 'content-type': 'text/plain' }, bytes },
    });
    expect(recordedOutcome(call('hi', 2)).response).toEqual({
      status: 201,
      headers: { 'content-type': 'text/plain' },
      bytes: 2,
      body: 'aGk=',
    });
    expect(recordedOutcome(call('hi', 5000)).response?.body).toBeUndefined();
    expect(recordedOutcome({ ...call('6', 0), response: undefined })).toEqual({ status: 'DONE', result: '6' });
    // A failure keeps its kind: a waiting web caller's status is chosen by it.
    const failed: Call = { ...call('', 0), status: 'ERROR', error: 'malformed response: x', fault: 'response', response: undefined };
    expect(recordedOutcome(failed)).toEqual({ status: 'ERROR', result: '', error: 'malformed response: x', fault: 'response' });
  });
});

// The API's invocation routes in front of a real DB service; calls go nowhere (`queued`) until finish().
describe('invocations with a key', () => {
  let dir: string;
  let dbServer: DbServer;
  let db: DbClient;
  let calls: Calls;
  let links: Emitter<BrokerEvents>;
  let queued: QueuedCall[];
  let http: Server;
  let base: string;
  let acked: Map<number, () => void>; // calls whose outcome the API told the node it recorded

  beforeEach(async () => {
    dir = await tempDir('zfaas-api-idem-');
    dbServer = new DbServer({ bind: `tcp://127.0.0.1:${await freePort()}`, dataDir: dir, log });
    await dbServer.start();
    db = new DbClient(dbServer);
    await db.request('putRuntime', { name: 'node', image: 'img', path: '/ws', dependencies: '', run: 'true' });
    const blob = Buffer.from('archive');
    const digest = createHash('sha256').update(blob).digest('hex');
    await db.request('putArchive', { digest }, [blob]);
    await db.request('createNamespace', { name: 'team-a' });
    for (const functionName of ['f', 'g', 'team-a~f'])
      await db.request('addFunction', { functionName, runtimeName: 'node', digest, size: blob.length, format: 'tar.gz', settings: {} });
    for (const functionName of ['pub', 'team-a~pub'])
      await db.request('addFunction', {
        functionName,
        runtimeName: 'node',
        digest,
        size: blob.length,
        format: 'tar.gz',
        settings: { public: true },
      });
    queued = [];
    links = new Emitter<BrokerEvents>();
    const scheduler = { enqueue: (c: QueuedCall) => void queued.push(c), knows: () => true };
    acked = new Map();
    const nodes = { ack: (_node: string, callNum: number) => acked.get(callNum)?.() };
    calls = new Calls({ db, log, meta: new MetaCache(db), scheduler, links, nodes });
    const app = express();
    // Who a request acts as, as the identity middleware would set it: `x-as: KEYID` a key of default,
    // `x-as: team-a/KEYID` one of team-a, `x-as: anonymous` no credentials; none: the operator.
    app.use((req, res, next) => {
      const as = req.headers['x-as'];
      if (as === 'anonymous') res.locals.refusal = { status: 401, why: 'missing', message: 'no credentials' } satisfies Refusal;
      else if (typeof as === 'string') {
        const [ns, id] = as.includes('/') ? as.split('/') : ['default', as];
        res.locals.scope = new Scope(ns!, 'invoker', id);
      }
      next();
    });
    app.use(webRouter({ calls, log, idempotencyTtlS: 86400, streams: new StreamHub(), cancel: () => Promise.resolve() }));
    app.use(express.json());
    app.use(invokeRouter(db, calls, 86400));
    app.use(errorResponder(log));
    http = app.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    calls.stop();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
    db.close();
    await dbServer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // What a node does when a call ends: it tells the API, which records the outcome through the call's table
  // and then tells the node (`ack`) it was recorded.
  async function finish(callNum: number, outcome: CallOutcome): Promise<void> {
    const recorded = new Promise<void>((res) => acked.set(callNum, res));
    links.emit('outcome', { callNum, node: 'n1', life: 'L1', outcome, ran: true, holder: true });
    await recorded;
  }

  const invoke = (body: object, headers: Record<string, string> = {}, query = ''): Promise<Response> =>
    fetch(`${base}/invokeFunction${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('makes one call of 50 requests with one key, dispatched once; other params are 409; a bad key is 400', async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        invoke({ funcName: 'f', params: { a: 1, b: 2 } }, i % 2 ? { 'Idempotency-Key': 'order-1' } : {}, '').then(async (r) => ({
          status: r.status,
          replayed: r.headers.get('idempotent-replayed'),
          call: (await r.json()) as Call,
        })),
      ),
    );
    // Half sent no key: 25 calls of their own; the 25 with the key share one.
    const keyed = answers.filter((_, i) => i % 2);
    expect(new Set(keyed.map((a) => a.call.callNum)).size).toBe(1);
    expect(keyed.filter((a) => a.replayed === null)).toHaveLength(1);
    expect(keyed.filter((a) => a.replayed === 'true')).toHaveLength(24);
    expect(answers.every((a) => a.status === 202 && !('replayed' in a.call))).toBe(true);
    expect(queued).toHaveLength(26);
    expect(await db.request('listCalls', {})).toHaveLength(26);

    // The body field works as the header does, whatever the key order of the params and the version named.
    const callNum = keyed[0]!.call.callNum;
    const again = await invoke({ funcName: 'f@1', params: { b: 2, a: 1 }, idempotencyKey: 'order-1' });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as Call).callNum).toBe(callNum);

    const other = await invoke({ funcName: 'f', params: { a: 2 } }, { 'Idempotency-Key': 'order-1' });
    expect(other.status).toBe(409);
    expect(((await other.json()) as { error: string }).error).toMatch(
      /idempotency key "order-1" was already used for call \d+ with other params/,
    );
    expect((await invoke({ funcName: 'g', params: { a: 1, b: 2 } }, { 'Idempotency-Key': 'order-1' })).status).toBe(409);

    const bad = await invoke({ funcName: 'f', params: {}, idempotencyKey: '' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/idempotencyKey/);
    const badHeader = await invoke({ funcName: 'f', params: {} }, { 'Idempotency-Key': 'x'.repeat(256) });
    expect(badHeader.status).toBe(400);
    expect(((await badHeader.json()) as { error: string }).error).toMatch(/Idempotency-Key/);
    expect(queued).toHaveLength(26);
  });

  it('with wait, answers a replay with the finished call, waiting for it while it runs', async () => {
    const first = invoke({ funcName: 'f', params: {}, wait: true }, { 'Idempotency-Key': 'w' });
    while (queued.length === 0) await new Promise((r) => setTimeout(r, 5));
    const callNum = queued[0]!.callNum;
    const second = invoke({ funcName: 'f', params: {}, wait: true }, { 'Idempotency-Key': 'w' });
    await new Promise((r) => setTimeout(r, 100)); // the replay is waiting
    await finish(callNum, { status: 'DONE', result: '42' });
    for (const r of [await first, await second]) {
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ callNum, status: 'DONE', result: '42' });
    }
    const third = await invoke({ funcName: 'f', params: {} }, { 'Idempotency-Key': 'w' }, '?wait=true');
    expect(third.status).toBe(200);
    expect(third.headers.get('idempotent-replayed')).toBe('true');
    expect(await third.json()).toMatchObject({ callNum, status: 'DONE', result: '42' });
    expect(queued).toHaveLength(1);
  });

  it("answers a replay on the web path with the call's outcome, or waits for it", async () => {
    const web = (body: string, key = 'web-1'): Promise<Response> =>
      fetch(`${base}/function/f/orders?x=1`, { method: 'POST', headers: { 'content-type': 'text/plain', 'Idempotency-Key': key }, body });
    const first = web('hello');
    while (queued.length === 0) await new Promise((r) => setTimeout(r, 5));
    const callNum = queued[0]!.callNum;
    const waiting = web('hello');
    await new Promise((r) => setTimeout(r, 100));
    const body = Buffer.from('created').toString('base64');
    await finish(callNum, { status: 'DONE', result: 'created', response: { status: 201, headers: { 'x-order': '7' }, body, bytes: 7 } });
    for (const r of [await first, await waiting, await web('hello')]) {
      expect(r.status).toBe(201);
      expect(r.headers.get('x-order')).toBe('7');
      expect(r.headers.get('x-zfaas-call')).toBe(String(callNum));
      expect(await r.text()).toBe('created');
    }
    expect((await web('hello')).headers.get('idempotent-replayed')).toBe('true');
    expect((await web('other body')).status).toBe(409);
    expect((await web('hello', '')).status).toBe(400);
    // The same key on POST /invokeFunction is another request.
    expect((await invoke({ funcName: 'f', params: {} }, { 'Idempotency-Key': 'web-1' })).status).toBe(409);
    expect(queued).toHaveLength(1);
  });

  it('gives each caller its own call for the same key and params: keys, the operator, namespaces, anonymous callers', async () => {
    const A = '000000000000000a';
    const B = '000000000000000b';
    const callNum = async (r: Promise<Response>): Promise<{ callNum: number; replayed: boolean }> => {
      const answer = await r;
      expect(answer.status, await answer.clone().text()).toBeLessThan(300);
      const n = answer.headers.get('x-zfaas-call') ?? String(((await answer.json()) as Call).callNum);
      return { callNum: Number(n), replayed: answer.headers.get('idempotent-replayed') === 'true' };
    };
    const api = (as?: string) =>
      callNum(invoke({ funcName: 'f', params: { n: 1 } }, { 'Idempotency-Key': 'same', ...(as ? { 'x-as': as } : {}) }));
    const a = await api(A);
    const b = await api(B);
    const op = await api();
    const team = await api(`team-a/${A}`);
    expect(new Set([a.callNum, b.callNum, op.callNum, team.callNum]).size).toBe(4);
    expect([a, b, op, team].some((x) => x.replayed)).toBe(false);
    // Each caller sending its key again gets its own call back.
    expect(await api(A)).toEqual({ callNum: a.callNum, replayed: true });
    expect(await api(B)).toEqual({ callNum: b.callNum, replayed: true });
    expect(await api(`team-a/${A}`)).toEqual({ callNum: team.callNum, replayed: true });

    // The web path of a public function: the anonymous callers are one caller (per function), apart from keys.
    const web = (path: string, as: string): Promise<Response> =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Idempotency-Key': 'same', 'x-as': as },
        body: '{}',
      });
    const C = '000000000000000c';
    const pending = [web('/function/pub', 'anonymous'), web('/function/pub', C), web('/ns/team-a/function/pub', 'anonymous')];
    for (let i = 0; i < 1000 && queued.length < 4 + 3; i++) await new Promise((r) => setTimeout(r, 5));
    const byCall = new Map(queued.slice(4).map((q) => [q.callNum, q.funcName]));
    expect([...byCall.values()].sort()).toEqual(['pub', 'pub', 'team-a~pub']);
    for (const n of byCall.keys()) await finish(n, { status: 'DONE', result: '{}' });
    const [anon1, keyed, anonTeam] = await Promise.all(pending.map(callNum));
    expect(new Set([anon1!.callNum, keyed!.callNum, anonTeam!.callNum]).size).toBe(3);
    const anon2 = await callNum(web('/function/pub', 'anonymous'));
    expect(anon2).toEqual({ callNum: anon1!.callNum, replayed: true });
    expect(queued).toHaveLength(7);
  });
});
