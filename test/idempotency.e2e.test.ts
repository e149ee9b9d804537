// Idempotency keys on invocations, against the real services (`zfaas up`): 50 requests with one key at
// once make one call, a replay answers that call (waiting for it with `wait`) and never runs it again, the
// key reused with other params is 409, a bad key is 400, the web path replays its outcome, and the keys
// outlive a restart of the API and the DB service (the same --data folder).
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, restartUp, startUp, zfaas, type CallView, type Platform, type Proc } from './helpers/platform.js';

let p: Platform;
let proc: Proc; // the running `zfaas up` (the first is p.proc)

// Slow enough that replays meet it running; `at` tells one run from another.
const SOURCE =
  'module.exports = async (p) => { await new Promise((r) => setTimeout(r, 700)); return { n: p.n, at: Date.now() + Math.random() }; };';

beforeAll(async () => {
  p = await startUp();
  proc = p.proc;
  const form = new FormData();
  form.append('module', new Blob([new Uint8Array(await packFiles({ 'index.js': SOURCE }))]), 'idem.tar.gz');
  const r = await fetch(`${p.api}/registerFunction/node/idem`, { method: 'POST', body: form });
  expect(r.status).toBe(201);
});

afterAll(async () => {
  await proc?.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
});

interface Got {
  status: number;
  replayed: string | null;
  body: CallView & { error?: string };
}

async function invoke(body: object, key?: string, query = ''): Promise<Got> {
  const r = await fetch(`${p.api}/invokeFunction${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'Idempotency-Key': key }) },
    body: JSON.stringify(body),
  });
  return { status: r.status, replayed: r.headers.get('idempotent-replayed'), body: (await r.json()) as Got['body'] };
}

const callsOf = async (): Promise<CallView[]> => Object.values((await (await fetch(`${p.api}/calls`)).json()) as Record<string, CallView>);

let first: CallView; // the call the key "k-50" made

it('makes one call of 50 requests with one key sent at once, and a replay with wait answers its end', async () => {
  const got = await Promise.all(Array.from({ length: 50 }, () => invoke({ funcName: 'idem', params: { n: 1 } }, 'k-50')));
  expect(got.map((g) => g.status)).toEqual(Array(50).fill(202));
  expect(new Set(got.map((g) => g.body.callNum)).size).toBe(1);
  expect(got.filter((g) => g.replayed === 'true')).toHaveLength(49);
  const calls = await callsOf();
  expect(calls).toHaveLength(1);

  // While it runs, and after: the same call, run once.
  const waited = await invoke({ funcName: 'idem', params: { n: 1 }, wait: true }, 'k-50');
  expect(waited).toMatchObject({ status: 200, replayed: 'true', body: { callNum: calls[0]!.callNum, status: 'DONE' } });
  const again = await invoke({ funcName: 'idem', params: { n: 1 }, idempotencyKey: 'k-50' }, undefined, '?wait=true');
  expect(again).toMatchObject({ status: 200, replayed: 'true', body: { callNum: calls[0]!.callNum, result: waited.body.result } });
  expect(waited.body.attempts).toBe(1);
  first = waited.body;
  expect(await callsOf()).toHaveLength(1);
});

it('refuses the key for other params (409) and a bad key (400, naming it)', async () => {
  const other = await invoke({ funcName: 'idem', params: { n: 2 } }, 'k-50');
  expect(other.status).toBe(409);
  expect(other.body.error).toMatch(/idempotency key "k-50" was already used for call \d+ with other params/);
  const long = await invoke({ funcName: 'idem', params: { n: 1 } }, 'x'.repeat(256));
  expect(long.status).toBe(400);
  expect(long.body.error).toMatch(/Idempotency-Key/);
  const field = await invoke({ funcName: 'idem', params: { n: 1 }, idempotencyKey: 'clé' });
  expect(field.status).toBe(400);
  expect(field.body.error).toMatch(/idempotencyKey/);
  const empty = await invoke({ funcName: 'idem', params: { n: 1 }, idempotencyKey: '' });
  expect(empty.status).toBe(400);
  expect(await callsOf()).toHaveLength(1);
});

it("answers the web path's replays with the call's outcome", async () => {
  const web = (): Promise<Response> =>
    fetch(`${p.api}/function/idem`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'Idempotency-Key': 'web-1' },
      body: '{"n":3}',
    });
  const [a, b] = await Promise.all([web(), web()]);
  const [ta, tb] = [await a.text(), await b.text()];
  expect([a.status, b.status]).toEqual([200, 200]);
  expect(tb).toBe(ta);
  expect(a.headers.get('x-zfaas-call')).toBe(b.headers.get('x-zfaas-call'));
  const c = await web();
  expect(c.headers.get('idempotent-replayed')).toBe('true');
  expect(await c.text()).toBe(ta);
  expect(await callsOf()).toHaveLength(2);
});

it('keeps the keys across a restart of the API and the DB service', async () => {
  expect(await proc.stop()).toBe(0);
  proc = await restartUp(p);

  const replay = await invoke({ funcName: 'idem', params: { n: 1 }, wait: true }, 'k-50');
  expect(replay).toMatchObject({ status: 200, replayed: 'true', body: { callNum: first.callNum, result: first.result } });
  expect((await invoke({ funcName: 'idem', params: { n: 2 } }, 'k-50')).status).toBe(409);
  const fresh = await invoke({ funcName: 'idem', params: { n: 2 } }, 'k-new');
  expect(fresh).toMatchObject({ status: 202, replayed: null });
  expect(await callsOf()).toHaveLength(3);
});

it('refuses a ZFAAS_IDEMPOTENCY_TTL that is not a whole number of seconds', async () => {
  const [port, db, broker] = [await freePort(), await freePort(), await freePort()];
  const api = zfaas(['api', '--port', String(port), '--db', `tcp://127.0.0.1:${db}`, '--broker-bind', `tcp://127.0.0.1:${broker}`], {
    ZFAAS_IDEMPOTENCY_TTL: '1h',
  });
  const code = await new Promise<number | null>((res) => api.child.once('exit', res));
  expect(code).toBe(2);
  expect(api.output()).toMatch(/ZFAAS_IDEMPOTENCY_TTL must be a whole number of seconds/);
});
