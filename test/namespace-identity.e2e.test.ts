// Namespaces with an identity, on a real `zfaas up` with an operator token: idempotency keys are kept per
// caller (two invokers sending the same Idempotency-Key and params get a call each; a public function's
// anonymous callers are one caller, apart from keyed ones), and a namespace deleted and made again under
// the same name sees nothing of the old one: no call, result, dead letter, batch, metric or idempotency key
// (the same key and params make a new call), while call numbers go on from where they were.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, startUp, upload, waitFor, type Platform, type Reply } from './helpers/platform.js';

const OP = `operator-${randomBytes(12).toString('hex')}`;
let p: Platform;

interface Key {
  id: string;
  key: string;
}
interface CallRecord {
  callNum: number;
  status: string;
  result: string;
  deadLetter?: string;
}

const req = <T = unknown>(method: string, path: string, auth?: string, body?: unknown, headers: Record<string, string> = {}) =>
  http<T>(method, `${p.api}${path}`, body, auth ? { ...headers, authorization: `Bearer ${auth}` } : headers);

async function makeKey(ns: string, role: string): Promise<string> {
  const r = await req<Key>('POST', `/namespaces/${ns}/keys`, OP, { role });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.key;
}

async function deploy(auth: string, name: string, source: string, fields: Record<string, string> = {}): Promise<void> {
  const r: Reply<unknown> = await upload(
    `${p.api}/registerFunction/node/${name}`,
    await packFiles({ 'index.js': source }),
    `${name}.tar.gz`,
    fields,
    {
      authorization: `Bearer ${auth}`,
    },
  );
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

// POST /invokeFunction with an idempotency key, waited for: the call and whether it was a replay.
async function keyed(auth: string, funcName: string, params: unknown, key: string): Promise<{ call: CallRecord; replayed: boolean }> {
  const r = await req<CallRecord>('POST', '/invokeFunction', auth, { funcName, params, wait: true }, { 'Idempotency-Key': key });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { call: r.body, replayed: r.headers.get('idempotent-replayed') === 'true' };
}

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: OP });
}, 180_000);
afterAll(async () => p?.stop());

describe('idempotency keys per caller', () => {
  it('gives two invokers sending the same key and params a call each, and each its own call again', async () => {
    expect((await req('POST', '/namespaces', OP, { name: 'team-a' })).status).toBe(201);
    const dev = await makeKey('team-a', 'developer');
    const [one, two] = [await makeKey('team-a', 'invoker'), await makeKey('team-a', 'invoker')];
    await deploy(dev, 'charge', 'module.exports = (p) => ({ charged: p.amount, call: process.env.ZFAAS_CALL });');
    const first = await keyed(one, 'charge', { amount: 5 }, 'order-7');
    const second = await keyed(two, 'charge', { amount: 5 }, 'order-7');
    expect([first.replayed, second.replayed]).toEqual([false, false]);
    expect(second.call.callNum).not.toBe(first.call.callNum);
    expect(JSON.parse(second.call.result)).toEqual({ charged: 5, call: String(second.call.callNum) });
    // Each sending it again gets its own call back, never the other's result.
    expect(await keyed(one, 'charge', { amount: 5 }, 'order-7')).toMatchObject({ replayed: true, call: { callNum: first.call.callNum } });
    expect(await keyed(two, 'charge', { amount: 5 }, 'order-7')).toMatchObject({ replayed: true, call: { callNum: second.call.callNum } });
    expect((await req('GET', `/call/${first.call.callNum}`, two)).status).toBe(404); // and cannot read the other's
  });

  it("keeps a public function's anonymous callers apart from keyed callers", async () => {
    const dev = await makeKey('team-a', 'developer');
    const inv = await makeKey('team-a', 'invoker');
    await deploy(dev, 'pub', 'module.exports = () => process.env.ZFAAS_CALL;', { public: 'true' });
    const web = async (auth?: string): Promise<{ call: string; replayed: boolean }> => {
      const r = await fetch(`${p.api}/ns/team-a/function/pub`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Idempotency-Key': 'w-1', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: '{}',
      });
      expect(r.status).toBe(200);
      return { call: r.headers.get('x-zfaas-call')!, replayed: r.headers.get('idempotent-replayed') === 'true' };
    };
    const anonymous = await web();
    const withKey = await web(inv);
    expect(withKey.call).not.toBe(anonymous.call);
    expect(await web()).toEqual({ call: anonymous.call, replayed: true });
    expect(await web(inv)).toEqual({ call: withKey.call, replayed: true });
  });
});

describe('a namespace deleted and made again', () => {
  it('sees none of the old calls, results, dead letters, batches, metrics or idempotency keys', async () => {
    expect((await req('POST', '/namespaces', OP, { name: 'team-b' })).status).toBe(201);
    const dev = await makeKey('team-b', 'developer');
    await deploy(dev, 'ledger', "module.exports = (p) => 'old team secret ' + p.a;");
    await deploy(dev, 'flaky', "module.exports = () => { throw new Error('always'); };", { retries: '1', retryBackoff: '100ms' });
    const old = await keyed(dev, 'ledger', { a: 1 }, 'k1');
    expect(old.call.result).toBe('old team secret 1');
    const dead = await req<CallRecord>('POST', '/invokeFunction', dev, { funcName: 'flaky', params: {}, wait: true });
    expect(dead.body).toMatchObject({ status: 'ERROR', deadLetter: 'listed' });
    const batch = await req<{ batchId: string }>('POST', '/batch/ledger', dev, [{ a: 2 }, { a: 3 }]);
    expect(batch.status).toBe(202);
    await waitFor('the batch to end', async () => {
      const b = await req<{ state: string }>('GET', `/batch/${batch.body.batchId}`, dev);
      return b.body.state === 'finished' ? true : undefined;
    });
    expect((await req<unknown[]>('GET', '/dead-letters', dev)).body).toHaveLength(1);
    expect(Object.keys((await req<Record<string, unknown>>('GET', '/metrics/functions', dev)).body)).toContain('ledger');
    const oldCalls = Object.values((await req<Record<string, CallRecord>>('GET', '/calls', dev)).body).map((c) => c.callNum);
    expect(oldCalls.length).toBeGreaterThanOrEqual(4);

    for (const fn of ['ledger', 'flaky']) expect((await req('DELETE', `/functions/${fn}`, dev)).status).toBe(200);
    const gone = await req<{ deleted: string; keys: number; calls: number; idempotencyKeys: number }>('DELETE', '/namespaces/team-b', OP);
    expect(gone.body).toEqual({ deleted: 'team-b', keys: 1, calls: oldCalls.length, idempotencyKeys: 1 });

    expect((await req('POST', '/namespaces', OP, { name: 'team-b' })).status).toBe(201);
    const admin = await makeKey('team-b', 'admin');
    expect((await req('GET', '/calls', admin)).body).toEqual({});
    expect((await req('GET', '/calls?format=list', admin)).body).toEqual([]);
    for (const n of oldCalls) expect((await req('GET', `/call/${n}`, admin)).status).toBe(404);
    expect((await req('GET', '/dead-letters', admin)).body).toEqual([]);
    expect((await req('GET', '/batches', admin)).body).toEqual([]);
    expect((await req('GET', `/batch/${batch.body.batchId}`, admin)).status).toBe(404);
    expect((await req('GET', '/metrics/functions', admin)).body).toEqual({});
    // The same key and params make a new call, of the new team's function, numbered after every old call.
    await deploy(admin, 'ledger', "module.exports = (p) => 'new team ' + p.a;");
    const fresh = await keyed(admin, 'ledger', { a: 1 }, 'k1');
    expect(fresh.replayed).toBe(false);
    expect(fresh.call.result).toBe('new team 1');
    expect(fresh.call.callNum).toBeGreaterThan(Math.max(...oldCalls));
    expect((await req('GET', '/call/' + old.call.callNum, OP, undefined, { 'X-Zfaas-Namespace': 'team-b' })).status).toBe(404);
  });
});
