// The PostgreSQL store across the loss of its host, with real DB services over ZMQ and real throwaway
// PostgreSQL clusters (test/helpers/postgres.ts), no replication needed: a COMMIT whose answer is lost
// (test/helpers/commit-proxy.ts cuts the connection just after or just before the server gets it) is
// written once, never twice and never not at all; and with a multi-host URL the store writes to the host
// that takes writes, and follows it to another host when that one turns read-only.
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DbUnderTest, finishCall, startCall } from '../test/helpers/db-service.js';
import { commitProxy, type CommitProxy } from '../test/helpers/commit-proxy.js';
import { FAST_PG, PgCluster } from '../test/helpers/postgres.js';
import { newPgDatabase, usePostgres } from '../test/helpers/stores.js';
import type { Call } from '../common/model.js';
import { PgStore } from './pg-store.js';
import { pino } from 'pino';

usePostgres();
const open: DbUnderTest[] = [];
const proxies: CommitProxy[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.remove();
  for (const p of proxies.splice(0)) await p.close();
});

const portOf = (url: string): number => Number(/:(\d+)\//.exec(url)![1]);
const viaPort = (url: string, port: number): string => url.replace(/:(\d+)\//, `:${port}/`);

// `answerMs`: how long a statement may go unanswered (the URL's query_timeout; the store's default is 15 s).
async function dbVia(url: string, answerMs?: number): Promise<{ db: DbUnderTest; proxy: CommitProxy }> {
  const proxy = await commitProxy(portOf(url));
  proxies.push(proxy);
  const via = viaPort(url, proxy.port);
  const store = answerMs === undefined ? via : `${via}${via.includes('?') ? '&' : '?'}query_timeout=${answerMs}`;
  const db = await DbUnderTest.open('zfaas-db-pgfail-', store);
  open.push(db);
  return { db, proxy };
}

async function rows(url: string, sql: string): Promise<Array<Record<string, unknown>>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await c.end();
  }
}

// `silent`: the host vanishes as the COMMIT leaves (no answer, no reset): given up after the URL's
// query_timeout, as the store gives up on any statement, and not waited for until TCP gives up.
describe.each([
  { when: 'after', how: 'cut just after the server gets it' },
  { when: 'before', how: 'cut just before the server gets it' },
  { when: 'silent', how: 'its host vanishes without a word' },
] as const)('a COMMIT whose answer is lost ($how)', ({ when }) => {
  it('makes the call once, and answers with it', async () => {
    const url = await newPgDatabase();
    const { db, proxy } = await dbVia(url, when === 'silent' ? 1000 : undefined);
    const lost = proxy.loseNextCommit(when);
    const c = await db.remote.request('createCall', { funcName: 'f', version: 1, params: { n: 1 } });
    await lost; // the connection that carried this write's COMMIT was cut
    expect(c).toMatchObject({ funcName: 'f', status: 'PENDING', params: { n: 1 } });
    const calls = await rows(url, 'SELECT num FROM calls ORDER BY num');
    expect(calls.map((r) => Number(r.num))).toEqual([c.callNum]);
    // The numbering goes on from it.
    expect((await db.remote.request('createCall', { funcName: 'f', version: 1, params: {} })).callNum).toBe(c.callNum + 1);
  });

  it("records a call's outcome once, and answers it as recorded", async () => {
    const url = await newPgDatabase();
    const { db, proxy } = await dbVia(url, when === 'silent' ? 1000 : undefined);
    const c = await db.remote.request('createCall', { funcName: 'f', version: 1, params: {} });
    await startCall(db.remote, { callNum: c.callNum, node: 'n1' });
    const lost = proxy.loseNextCommit(when);
    const end = await finishCall(db.remote, {
      callNum: c.callNum,
      node: 'n1',
      outcome: { status: 'DONE', result: '42', logs: '', durationMs: 1 },
    });
    await lost;
    // Changed by this write (not "already final", as a second run of it would answer).
    expect(end).toMatchObject({ changed: true, call: { status: 'DONE', result: '42' } });
    expect(((await db.remote.request('getCall', { callNum: c.callNum })) as Call).status).toBe('DONE');
  });
});

describe('a store given several hosts (target_session_attrs=read-write)', () => {
  const clusters: PgCluster[] = [];
  afterAll(async () => {
    for (const c of clusters.splice(0)) await c.stop();
  });
  const setReadOnly = async (c: PgCluster, on: boolean): Promise<void> => {
    await rows(c.url(), `ALTER SYSTEM SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
    await rows(c.url(), 'SELECT pg_reload_conf()');
    // Taken by the sessions at their next transaction.
    for (let i = 0; i < 50; i++) {
      if ((await rows(c.url(), 'SHOW default_transaction_read_only'))[0]!.default_transaction_read_only === (on ? 'on' : 'off')) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the setting did not take');
  };

  it('writes to the writable one, and follows the writes to the other when it turns read-only', async () => {
    const [a, b] = [await PgCluster.start({ settings: FAST_PG }), await PgCluster.start({ settings: FAST_PG })];
    clusters.push(a, b);
    const [dbA, dbB] = [await a.database('zfaas'), await b.database('zfaas')];
    // Both hold the schema (a replica would have it from its primary).
    await (await PgStore.open(dbA, pino({ level: 'silent' }))).close();
    await (await PgStore.open(dbB, pino({ level: 'silent' }))).close();
    await setReadOnly(a, true);
    const url = `postgres://zfaas@127.0.0.1:${a.port},127.0.0.1:${b.port}/zfaas?target_session_attrs=read-write`;
    const db = await DbUnderTest.open('zfaas-db-pgfail-', url);
    open.push(db);
    const first = await db.remote.request('createCall', { funcName: 'f', version: 1, params: { on: 'b' } });
    expect(await rows(dbB, 'SELECT count(*)::int AS n FROM calls')).toEqual([{ n: 1 }]);
    expect(await rows(dbA, 'SELECT count(*)::int AS n FROM calls')).toEqual([{ n: 0 }]);

    // b becomes a standby's like (read-only) and a takes writes: the next write lands on a.
    await setReadOnly(a, false);
    await setReadOnly(b, true);
    const second = await db.remote.request('createCall', { funcName: 'f', version: 1, params: { on: 'a' } });
    expect(second.params).toEqual({ on: 'a' });
    expect(await rows(dbA, 'SELECT rec FROM calls')).toHaveLength(1);
    expect(await rows(dbB, 'SELECT count(*)::int AS n FROM calls')).toEqual([{ n: 1 }]);
    expect(first.params).toEqual({ on: 'b' });
  });

  it('refuses a target that cannot take writes, before connecting', async () => {
    await expect(PgStore.open('postgres://u@h1:1,h2:2/db?target_session_attrs=standby', pino({ level: 'silent' }))).rejects.toThrow(
      /target_session_attrs=standby is not for a store that writes/,
    );
  });
});
