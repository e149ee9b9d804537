// The store on PostgreSQL (`--store postgres://...`), which several DB services may share: every rule that
// LevelDB's single writer gets from the write queue holds here through the database. A call group reads
// the calls it changes FOR UPDATE in one transaction and commits them together, so two services never both
// move one call; a new idempotency key is a plain INSERT on a unique key (the loser's group fails and its
// writes are applied again alone, where the key is found); due callback deliveries are claimed with
// FOR UPDATE SKIP LOCKED; call numbers come from a counter row written in the group's transaction (a group
// rolled back uses up none). Records are JSON text beside the columns that are queried (JSON text, not
// jsonb: a call's logs may hold characters jsonb refuses). The URL may list several hosts (a replicated
// PostgreSQL with automatic failover): db/pg-connect.ts writes to the writable one and follows it.
import type pg from 'pg';
import { createHash } from 'node:crypto';
import { isFinal, type Call, type FunctionMeta, type FunctionSettings, type Runtime } from '../common/model.js';
import { DEFAULT_NAMESPACE, namespaceOf, NS_SEP } from '../common/namespace.js';
import { errText, type Logger } from '../common/log.js';
import { idempotencyPrefix, type DbContent, type DbResults, type Purged, type Schedule, type Trigger } from '../protocol/db.js';
import { endBuild } from '../common/build.js';
import { keptOnPut, leased, type LeaseRequest } from './trigger-lease.js';
import { adoption, live, renewed, STALE_MS, type ApiLease, type LeaseAsk } from './api-lease.js';
import { CallGroup, REQUEST_KEEP_MS, REQUEST_KEY_PREFIX, requestKeysBefore, type KeyEntry } from './call-group.js';
import {
  ConflictError,
  NotFoundError,
  RetryableError,
  type CallQuery,
  type DeadLetterQuery,
  type StoreBackend,
  type StoreSnapshot,
  heldArchives,
  versionMeta,
} from './store-api.js';
import { PgTenancy } from './pg-tenancy.js';
import type { BackupRecord } from './backup-records.js';
import { PG_SCHEMA, pgSchema } from './pg-schema.js';
import { shownStore } from './open-store.js';
import { PgNotCommitted, PgPrimary, parsePgUrl, isFailover, type Sql } from './pg-connect.js';

type Queryable = Sql;
// How long a statement waits for a writable host after losing one (a failover takes seconds to tens of them).
const FAILOVER_MS = 60_000;
interface PgOp {
  text: string;
  values: unknown[];
}

const rec = <T>(row: { rec: string } | undefined): T | null => (row ? (JSON.parse(row.rec) as T) : null);
const recs = <T>(rows: Array<{ rec: string }>): T[] => rows.map((r) => JSON.parse(r.rec) as T);
const CALL_COLUMNS = 10;

// One call's row: the record and the columns queries and indexes use.
function callRow(c: Call): unknown[] {
  const cb = c.callback;
  return [
    c.callNum,
    c.funcName,
    namespaceOf(c.funcName),
    c.by ?? null,
    c.status,
    !isFinal(c.status),
    c.deadLetter === 'listed',
    cb?.state === 'pending' ? Date.parse(cb.nextAt ?? '') || 0 : null,
    JSON.stringify(c),
    c.api ?? null,
  ];
}

// Writes these states of calls (new or not) in one statement.
function upsertCalls(calls: Call[]): PgOp {
  const values: unknown[] = [];
  const rows = calls.map((c, i) => {
    values.push(...callRow(c));
    return `(${Array.from({ length: CALL_COLUMNS }, (_, k) => `$${i * CALL_COLUMNS + k + 1}`).join(',')})`;
  });
  return {
    text: `INSERT INTO calls (num, func_name, namespace, by_key, status, open, dead_letter, outbox_at, rec, api) VALUES ${rows.join(',')}
      ON CONFLICT (num) DO UPDATE SET status = EXCLUDED.status, open = EXCLUDED.open, dead_letter = EXCLUDED.dead_letter,
      outbox_at = EXCLUDED.outbox_at, rec = EXCLUDED.rec, api = EXCLUDED.api`,
    values,
  };
}

export class PgStore implements StoreBackend {
  readonly engine = 'postgres';
  readonly tenancy: PgTenancy;

  private requestsSweptAt = 0; // when request ids past any resend were last dropped (adoptCalls)

  private constructor(private readonly db: PgPrimary) {
    this.tenancy = new PgTenancy(db, (fn) => this.tx(fn));
  }

  // Connects (to the writable one of the URL's hosts, db/pg-connect.ts), makes or updates the schema,
  // and ensures the default namespace. A server that does not answer is an error within connectMs, never
  // a wait without end; once open, a lost host is waited for up to failoverMs.
  static async open(url: string, log: Logger, connectMs = 10_000, failoverMs = FAILOVER_MS): Promise<PgStore> {
    const db = new PgPrimary(parsePgUrl(url), { log, connectMs, failoverMs });
    const store = new PgStore(db);
    try {
      const from = await db.tx((c) => pgSchema(c), { writeId: false });
      if (from < PG_SCHEMA) log.info({ from, to: PG_SCHEMA }, 'PostgreSQL schema made');
      await store.tenancy.ensureDefault();
    } catch (e) {
      await db.end().catch(() => undefined);
      throw new Error(`PostgreSQL at ${shownStore(url)} cannot be used: ${errText(e)}`);
    }
    db.opened();
    return store;
  }

  close(): Promise<void> {
    return this.db.end();
  }

  // fn in one transaction (committed when it resolves, rolled back when it throws), run again on the
  // next writable host when its host is lost before it committed (PgPrimary.tx).
  private tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.db.tx(fn);
  }

  // Runtimes
  async putRuntime(rt: Runtime): Promise<Runtime> {
    await this.db.query('INSERT INTO runtimes (name, rec) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec', [
      rt.name,
      JSON.stringify(rt),
    ]);
    return rt;
  }
  async getRuntime(name: string): Promise<Runtime | null> {
    return rec<Runtime>((await this.db.query('SELECT rec FROM runtimes WHERE name = $1', [name])).rows[0]);
  }
  async listRuntimes(): Promise<Runtime[]> {
    return recs<Runtime>((await this.db.query('SELECT rec FROM runtimes ORDER BY name COLLATE "C"')).rows);
  }
  deleteRuntime(name: string): Promise<{ deleted: boolean }> {
    return this.tx(async (c) => {
      if ((await c.query('SELECT 1 FROM runtimes WHERE name = $1 FOR UPDATE', [name])).rowCount === 0) return { deleted: false };
      const used = await c.query(
        'SELECT v.name FROM function_versions v JOIN function_heads h ON h.name = v.name AND h.current = v.version WHERE v.runtime = $1 LIMIT 1',
        [name],
      );
      const fn = used.rows[0] as { name: string } | undefined;
      if (fn) throw new ConflictError(`runtime ${name} is used by function ${fn.name}`);
      await c.query('DELETE FROM runtimes WHERE name = $1', [name]);
      return { deleted: true };
    });
  }

  // Archives, stored once by content digest.
  async putArchive(digest: string, data: Buffer): Promise<{ digest: string; size: number }> {
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== digest) throw new ConflictError(`archive digest mismatch: got ${actual}`);
    await this.db.query('INSERT INTO archives (digest, data) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [digest, data]);
    return { digest, size: data.length };
  }
  async getArchive(digest: string): Promise<Buffer | null> {
    const row = (await this.db.query('SELECT data FROM archives WHERE digest = $1', [digest])).rows[0] as { data: Buffer } | undefined;
    return row?.data ?? null;
  }

  // Functions: every deploy is a new version; `current` is what an unversioned call runs.
  addFunction(c: DbContent<'addFunction'> & { settings: FunctionMeta['settings'] }): Promise<FunctionMeta> {
    return this.tx(async (q) => {
      if ((await q.query('SELECT 1 FROM runtimes WHERE name = $1', [c.runtimeName])).rowCount === 0)
        throw new NotFoundError(`runtime ${c.runtimeName} not found`);
      if ((await q.query('SELECT 1 FROM archives WHERE digest = $1', [c.digest])).rowCount === 0)
        throw new NotFoundError(`archive ${c.digest} not stored`);
      // The head row, locked: two services deploying the same function at once get versions one after another.
      await q.query('INSERT INTO function_heads (name, current, latest) VALUES ($1, 0, 0) ON CONFLICT (name) DO NOTHING', [c.functionName]);
      const head = (await q.query('SELECT latest FROM function_heads WHERE name = $1 FOR UPDATE', [c.functionName])).rows[0] as {
        latest: number;
      };
      const version = head.latest + 1;
      const meta = versionMeta(c, version);
      await insertVersion(q, meta);
      await q.query('UPDATE function_heads SET current = $2, latest = $2 WHERE name = $1', [c.functionName, version]);
      return meta;
    });
  }
  async getFunction(name: string, version?: number): Promise<FunctionMeta | null> {
    const r = await this.db.query(
      version === undefined
        ? 'SELECT v.rec FROM function_heads h JOIN function_versions v ON v.name = h.name AND v.version = h.current WHERE h.name = $1'
        : 'SELECT v.rec FROM function_heads h JOIN function_versions v ON v.name = h.name AND v.version = $2 WHERE h.name = $1',
      version === undefined ? [name] : [name, version],
    );
    return rec<FunctionMeta>(r.rows[0]);
  }
  async listFunctions(): Promise<FunctionMeta[]> {
    const r = await this.db.query(
      'SELECT v.rec FROM function_heads h JOIN function_versions v ON v.name = h.name AND v.version = h.current ORDER BY h.name COLLATE "C"',
    );
    return recs<FunctionMeta>(r.rows);
  }
  async listVersions(name: string): Promise<FunctionMeta[]> {
    return recs<FunctionMeta>((await this.db.query('SELECT rec FROM function_versions WHERE name = $1 ORDER BY version', [name])).rows);
  }
  setCurrentVersion(name: string, version: number): Promise<FunctionMeta | null> {
    return this.tx(async (c) => {
      const meta = rec<FunctionMeta>(
        (await c.query('SELECT rec FROM function_versions WHERE name = $1 AND version = $2', [name, version])).rows[0],
      );
      if (!meta) return null;
      const r = await c.query('UPDATE function_heads SET current = $2 WHERE name = $1', [name, version]);
      return r.rowCount === 0 ? null : meta;
    });
  }
  deleteFunction(name: string): Promise<{ deleted: boolean }> {
    return this.tx(async (c) => {
      if ((await c.query('DELETE FROM function_heads WHERE name = $1', [name])).rowCount === 0) return { deleted: false };
      const gone = await c.query('DELETE FROM function_versions WHERE name = $1 RETURNING rec', [name]);
      await c.query('DELETE FROM schedules WHERE func_name = $1', [name]); // they go with it
      await c.query('DELETE FROM triggers WHERE func_name = $1', [name]);
      await dropArchives(c, recs<FunctionMeta>(gone.rows).flatMap(heldArchives));
      return { deleted: true };
    });
  }
  // An old version goes; the current one stays (`current`: refused for that).
  deleteVersion(name: string, version: number): Promise<{ deleted: boolean; current?: true }> {
    return this.tx(async (c) => {
      const head = (await c.query('SELECT current FROM function_heads WHERE name = $1 FOR UPDATE', [name])).rows[0] as
        { current: number } | undefined;
      if (!head) return { deleted: false };
      if (head.current === version) {
        const exists = await c.query('SELECT 1 FROM function_versions WHERE name = $1 AND version = $2', [name, version]);
        return exists.rowCount === 0 ? { deleted: false } : { deleted: false, current: true as const };
      }
      const gone = await c.query('DELETE FROM function_versions WHERE name = $1 AND version = $2 RETURNING rec', [name, version]);
      if (gone.rowCount === 0) return { deleted: false };
      await dropArchives(c, recs<FunctionMeta>(gone.rows).flatMap(heldArchives));
      return { deleted: true };
    });
  }

  // The version's row is locked while its build's end is decided: of two ends written at once, the first wins.
  endBuild(e: DbContent<'endBuild'>): Promise<DbResults['endBuild']> {
    return this.tx(async (c) => {
      const meta = rec<FunctionMeta>(
        (await c.query('SELECT rec FROM function_versions WHERE name = $1 AND version = $2 FOR UPDATE', [e.name, e.version])).rows[0],
      );
      if (!meta || meta.createdAt !== e.createdAt) return { fn: null, changed: false, why: `version ${e.version} of ${e.name} is gone` };
      const v = endBuild(meta.build, e.end);
      if (!v.changed) return { fn: meta, changed: false, why: v.why };
      const next: FunctionMeta = { ...meta, build: v.next };
      await insertVersion(c, next);
      return { fn: next, changed: true };
    });
  }

  // Calls: writes go through a group (db/call-group.ts) over one transaction, begun by its first read.
  // A query of the group that fails (a deadlock with another service's group, a lost connection) breaks
  // its transaction: that write and those after it are applied again alone (RetryableError), and the
  // group's commit rolls back what it planned, to be applied again alone too.
  group(): CallGroup {
    let conn: pg.PoolClient | null = null;
    let broken: unknown = null;
    const open = async (): Promise<pg.PoolClient> => {
      if (broken) throw new RetryableError(`the group's transaction failed: ${errText(broken)}`);
      if (conn) return conn;
      conn = await this.db.begin(); // waits through a failover for the writable host
      return conn;
    };
    const query = async (text: string, values: unknown[]): Promise<pg.QueryResult> => {
      const c = await open();
      try {
        return await c.query(text, values);
      } catch (e) {
        broken = e;
        this.db.failed(c, e);
        throw new RetryableError(errText(e));
      }
    };
    // The counter row, read (and locked) at the group's first new call; the numbers it hands out are
    // written back at commit, so that a group rolled back uses up none.
    let counter: number | null = null;
    // Calls read ahead for the group's writes (lock()): one query for many, locked in order of number.
    const ahead = new Map<number, string | null>();
    // A version's settings, once per group.
    const settings = new Map<string, FunctionSettings | null>();
    return new CallGroup<PgOp>({
      nextCallNum: async () => {
        counter ??= Number(((await query('SELECT n FROM call_counter FOR UPDATE', [])).rows[0] as { n: string }).n);
        counter += 1;
        return counter;
      },
      lock: async (callNums) => {
        const todo = [...new Set(callNums)].filter((n) => !ahead.has(n)).sort((a, b) => a - b);
        if (todo.length === 0) return;
        const r = await query('SELECT num, rec FROM calls WHERE num = ANY($1) ORDER BY num FOR UPDATE', [todo]);
        for (const n of todo) ahead.set(n, null);
        for (const row of r.rows as Array<{ num: string; rec: string }>) ahead.set(Number(row.num), row.rec);
      },
      read: async (callNum) => {
        const had = ahead.get(callNum);
        if (had !== undefined) return had === null ? null : (JSON.parse(had) as Call);
        return rec<Call>((await query('SELECT rec FROM calls WHERE num = $1 FOR UPDATE', [callNum])).rows[0]);
      },
      readKey: async (key) => rec<KeyEntry>((await query('SELECT rec FROM idempotency_keys WHERE key = $1 FOR UPDATE', [key])).rows[0]),
      // A key new to the table is inserted: of two services making the same key at once, one fails here.
      keyOps: (key, entry, had) => [
        had
          ? { text: 'UPDATE idempotency_keys SET rec = $2 WHERE key = $1', values: [key, JSON.stringify(entry)] }
          : { text: 'INSERT INTO idempotency_keys (key, rec) VALUES ($1, $2)', values: [key, JSON.stringify(entry)] },
      ],
      settings: async (funcName, version) => {
        if (version === undefined) return null;
        const key = `${funcName}@${version}`;
        if (!settings.has(key)) {
          const r = await this.db.query('SELECT rec FROM function_versions WHERE name = $1 AND version = $2', [funcName, version]);
          settings.set(key, rec<FunctionMeta>(r.rows[0])?.settings ?? null);
        }
        return settings.get(key) ?? null;
      },
      // Locked for this group, passing over those another service's group holds.
      due: async (now, limit) => {
        const r = await query('SELECT num FROM calls WHERE outbox_at <= $1 ORDER BY num LIMIT $2 FOR UPDATE SKIP LOCKED', [now, limit]);
        return (r.rows as Array<{ num: string }>).map((row) => Number(row.num));
      },
      ops: () => [], // the calls are written from `touched` at commit, once each
      commit: async (ops, touched, lastCall) => {
        const c = conn;
        conn = null;
        if (broken) {
          await c?.query('ROLLBACK').catch(() => undefined);
          c?.release(true);
          throw new RetryableError(`the group's transaction failed: ${errText(broken)}`);
        }
        if (!c && touched.size === 0 && ops.length === 0) return;
        const tx = c ?? (await open());
        conn = null;
        try {
          if (touched.size > 0) await tx.query(upsertCalls([...touched.values()]));
          if (counter !== null && lastCall > 0) await tx.query('UPDATE call_counter SET n = $1', [lastCall]);
          for (const op of ops) await tx.query(op);
        } catch (e) {
          await tx.query('ROLLBACK').catch(() => undefined);
          tx.release(true);
          this.db.failed(tx, e);
          // Another service wrote the same key first, or the two groups waited on each other, or the host
          // was lost before COMMIT (nothing written): applied again alone, the write sees what is there.
          const code = (e as { code?: unknown }).code;
          if (code === '23505' || code === '40P01' || code === '40001' || isFailover(e)) throw new RetryableError(errText(e));
          throw e;
        }
        // With a write id: a COMMIT whose answer was lost is looked up, so that the group's writes are
        // applied again only when they did not commit (a call made twice would run twice).
        try {
          await this.db.commit(tx);
        } catch (e) {
          if (e instanceof PgNotCommitted) throw new RetryableError(e.message);
          const code = (e as { code?: unknown }).code;
          if (code === '40001') throw new RetryableError(errText(e));
          throw e;
        }
      },
    });
  }
  async getCall(callNum: number): Promise<Call | null> {
    return rec<Call>((await this.db.query('SELECT rec FROM calls WHERE num = $1', [callNum])).rows[0]);
  }
  async listCalls(q: CallQuery): Promise<Call[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      values.push(v);
      where.push(sql.replace('?', `$${values.length}`));
    };
    if (q.funcName) add('func_name = ?', q.funcName);
    if (q.namespace) add('namespace = ?', q.namespace);
    if (q.by) add('by_key = ?', q.by);
    if (q.status) add('status = ?', q.status);
    if (q.before) add('num < ?', q.before);
    const sql = `SELECT rec FROM calls ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY num ${q.order === 'desc' ? 'DESC' : 'ASC'}${
      q.limit ? ` LIMIT ${Number(q.limit)}` : ''
    }`;
    return recs<Call>((await this.db.query(sql, values)).rows);
  }
  async listUnfinished(): Promise<Call[]> {
    return recs<Call>((await this.db.query('SELECT rec FROM calls WHERE open ORDER BY num')).rows);
  }
  async listDeadLetters(q: DeadLetterQuery): Promise<Call[]> {
    const r = await this.db.query(
      `SELECT rec FROM calls WHERE dead_letter AND ($1::text IS NULL OR func_name = $1) AND ($2::text IS NULL OR namespace = $2)
       ORDER BY num DESC LIMIT $3`,
      [q.funcName ?? null, q.namespace ?? null, q.limit ?? 1000],
    );
    return recs<Call>(r.rows);
  }

  // Schedules
  putSchedule(sc: Omit<Schedule, 'lastRun'>): Promise<Schedule> {
    return this.tx(async (c) => {
      const had = rec<Schedule>(
        (await c.query('SELECT rec FROM schedules WHERE func_name = $1 AND id = $2 FOR UPDATE', [sc.funcName, sc.id])).rows[0],
      );
      const stored: Schedule = { ...sc, ...(had?.lastRun ? { lastRun: had.lastRun } : {}) };
      await putSchedule(c, stored);
      return stored;
    });
  }
  async listSchedules(funcName?: string, namespace?: string): Promise<Schedule[]> {
    const r = await this.db.query(
      'SELECT rec FROM schedules WHERE ($1::text IS NULL OR func_name = $1) ORDER BY func_name COLLATE "C", id COLLATE "C"',
      [funcName ?? null],
    );
    const all = recs<Schedule>(r.rows);
    return namespace ? all.filter((sc) => namespaceOf(sc.funcName) === namespace) : all;
  }
  // In a transaction with a write id, so that `deleted` is that of the run that deleted, across a failover.
  deleteSchedule(funcName: string, id: string): Promise<{ deleted: boolean }> {
    return this.tx(async (c) => {
      const r = await c.query('DELETE FROM schedules WHERE func_name = $1 AND id = $2', [funcName, id]);
      return { deleted: (r.rowCount ?? 0) > 0 };
    });
  }
  recordScheduleRun(r: { funcName: string; id: string; tick: string; callNum: number }): Promise<Schedule | null> {
    return this.tx(async (c) => {
      const sc = rec<Schedule>(
        (await c.query('SELECT rec FROM schedules WHERE func_name = $1 AND id = $2 FOR UPDATE', [r.funcName, r.id])).rows[0],
      );
      if (!sc) return null;
      if (sc.lastRun && Date.parse(sc.lastRun.tick) >= Date.parse(r.tick)) return sc;
      const next: Schedule = { ...sc, lastRun: { tick: r.tick, callNum: r.callNum, at: new Date().toISOString() } };
      await putSchedule(c, next);
      return next;
    });
  }

  // Triggers: a record per trigger; a lease is read FOR UPDATE, so two DB services never both grant one.
  putTrigger(t: Omit<Trigger, 'lease' | 'stats'>): Promise<Trigger> {
    return this.tx(async (c) => {
      const stored = keptOnPut(t, await triggerFor(c, t.funcName, t.id));
      await putTrigger(c, stored);
      return stored;
    });
  }
  async listTriggers(funcName?: string, namespace?: string): Promise<Trigger[]> {
    const r = await this.db.query(
      'SELECT rec FROM triggers WHERE ($1::text IS NULL OR func_name = $1) ORDER BY func_name COLLATE "C", id COLLATE "C"',
      [funcName ?? null],
    );
    const all = recs<Trigger>(r.rows);
    return namespace ? all.filter((t) => namespaceOf(t.funcName) === namespace) : all;
  }
  deleteTrigger(funcName: string, id: string): Promise<{ deleted: boolean }> {
    return this.tx(async (c) => {
      const r = await c.query('DELETE FROM triggers WHERE func_name = $1 AND id = $2', [funcName, id]);
      return { deleted: (r.rowCount ?? 0) > 0 };
    });
  }
  pauseTrigger(funcName: string, id: string, paused: boolean): Promise<Trigger | null> {
    return this.tx(async (c) => {
      const t = await triggerFor(c, funcName, id);
      if (!t) return null;
      const next: Trigger = { ...t, paused };
      await putTrigger(c, next);
      return next;
    });
  }
  leaseTrigger(r: LeaseRequest): Promise<{ trigger: Trigger | null; held: boolean }> {
    return this.tx(async (c) => {
      const t = await triggerFor(c, r.funcName, r.id);
      if (!t) return { trigger: null, held: false };
      const { next, held } = leased(t, r, Date.now());
      if (!next) return { trigger: t, held };
      await putTrigger(c, next);
      return { trigger: next, held };
    });
  }

  // API leases, timed by the database's clock (DB services on several hosts agree on it). A renewal locks
  // its row; an adoption is one transaction under an advisory lock, with the calls it takes locked.
  leaseApi(r: LeaseAsk): Promise<{ held: boolean; lost: boolean }> {
    return this.tx(async (c) => {
      const now = await dbNow(c);
      const row = (await c.query('SELECT id, token, until, adopted_by FROM api_leases WHERE id = $1 FOR UPDATE', [r.id])).rows[0] as
        LeaseRow | undefined;
      const { next, keep, held, lost } = renewed(row ? leaseOf(row) : null, r, now);
      if (next)
        await c.query(
          `INSERT INTO api_leases (id, token, until, adopted_by) VALUES ($1, $2, $3, NULL)
           ON CONFLICT (id) DO UPDATE SET token = $2, until = $3, adopted_by = NULL`,
          [r.id, next.token ?? null, next.until],
        );
      else if (!keep) await c.query('DELETE FROM api_leases WHERE id = $1', [r.id]);
      return { held, lost };
    });
  }
  adoptCalls(adopter: string): Promise<{ calls: Call[]; from: string[] }> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [ADOPT_LOCK]);
      const now = await dbNow(c);
      const leases = ((await c.query('SELECT id, token, until, adopted_by FROM api_leases')).rows as LeaseRow[]).map(leaseOf);
      const running = leases.filter((l) => live(l, now)).map((l) => l.id);
      if (!running.includes(adopter)) return { calls: [], from: [] };
      const open = recs<Call>(
        (await c.query('SELECT rec FROM calls WHERE open AND (api IS NULL OR NOT (api = ANY($1))) ORDER BY num FOR UPDATE', [running]))
          .rows,
      );
      const { calls, leases: taken } = adoption(leases, open, adopter, now);
      for (let i = 0; i < calls.length; i += 1000) await c.query(upsertCalls(calls.slice(i, i + 1000)));
      for (const l of taken) await c.query('UPDATE api_leases SET adopted_by = $2 WHERE id = $1', [l.id, adopter]);
      await c.query('DELETE FROM api_leases WHERE adopted_by IS NOT NULL AND until < $1', [now - STALE_MS]);
      if (now - this.requestsSweptAt > 60_000) {
        this.requestsSweptAt = now;
        // Request ids of createCall past any resend (db/resend.ts): their keys sort by the time they were made.
        await c.query('DELETE FROM idempotency_keys WHERE left(key, $1) = $2 AND key COLLATE "C" < $3', [
          REQUEST_KEY_PREFIX.length,
          REQUEST_KEY_PREFIX,
          requestKeysBefore(now - REQUEST_KEEP_MS),
        ]);
      }
      return { calls, from: taken.map((l) => l.id) };
    });
  }

  // Everything kept under a namespace's name (see the LevelDB store's purgeNamespace), in one transaction.
  purgeNamespace(namespace: string): Promise<Purged> {
    if (namespace === DEFAULT_NAMESPACE) return Promise.reject(new ConflictError('the default namespace is never purged'));
    return this.tx(async (c) => {
      const calls = await c.query('DELETE FROM calls WHERE namespace = $1', [namespace]);
      const p = idempotencyPrefix(namespace);
      const keys = await c.query('DELETE FROM idempotency_keys WHERE left(key, $2) = $1', [p, p.length]);
      const named = `${namespace}${NS_SEP}`;
      for (const [table, column] of [
        ['schedules', 'func_name'],
        ['triggers', 'func_name'],
        ['function_versions', 'name'],
        ['function_heads', 'name'],
        ['runtimes', 'name'],
      ] as const)
        await c.query(`DELETE FROM ${table} WHERE left(${column}, $2) = $1`, [named, named.length]);
      return { calls: calls.rowCount ?? 0, idempotencyKeys: keys.rowCount ?? 0 };
    });
  }

  // Backups: one transaction of repeatable read sees every table as of its first query, however long
  // the backup reads; records are read a page at a time (archives a few at once).
  async snapshot(): Promise<StoreSnapshot> {
    // Pages are bounded by rows (archives: ARCHIVE_PAGE at once), not by bytes.
    const c = await this.db.connect();
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await c.query('SELECT 1 FROM calls LIMIT 1'); // the snapshot is taken now, not at the first page
    } catch (e) {
      c.release(true);
      throw e;
    }
    const gen = readAll(c);
    let ended = false;
    const end = async (): Promise<void> => {
      if (ended) return;
      ended = true;
      await c.query('ROLLBACK').catch(() => undefined);
      c.release();
    };
    return {
      next: async (max) => {
        const out: BackupRecord[] = [];
        while (out.length < max) {
          const r = await gen.next();
          if (r.done) break;
          out.push(r.value);
        }
        return out;
      },
      close: end,
    };
  }
  // Every record goes (a restore replacing the store, or one that failed): the store is as new.
  async wipe(): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        'TRUNCATE runtimes, archives, function_heads, function_versions, calls, idempotency_keys, schedules, triggers, namespaces, api_keys, secrets, api_leases',
      );
      await c.query('UPDATE call_counter SET n = 0');
    });
    await this.tenancy.ensureDefault();
  }
  async isEmpty(): Promise<boolean> {
    const r = await this.db.query(
      `SELECT (SELECT count(*) FROM calls) + (SELECT count(*) FROM function_heads) + (SELECT count(*) FROM runtimes)
        + (SELECT count(*) FROM archives) + (SELECT count(*) FROM api_keys) + (SELECT count(*) FROM secrets)
        + (SELECT count(*) FROM schedules) + (SELECT count(*) FROM triggers) + (SELECT count(*) FROM idempotency_keys)
        + (SELECT count(*) FROM namespaces WHERE name <> $1) AS n`,
      [DEFAULT_NAMESPACE],
    );
    return Number((r.rows[0] as { n: string }).n) === 0;
  }
  restore(records: BackupRecord[]): Promise<void> {
    return this.tx(async (c) => {
      const calls: Call[] = [];
      for (const r of records) {
        switch (r.kind) {
          case 'runtime':
            await c.query('INSERT INTO runtimes (name, rec) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec', [
              r.value.name,
              JSON.stringify(r.value),
            ]);
            break;
          case 'archive':
            await c.query('INSERT INTO archives (digest, data) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [r.digest, r.data]);
            break;
          case 'function':
            await c.query(
              'INSERT INTO function_heads (name, current, latest) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET current = $2, latest = $3',
              [r.name, r.current, r.latest],
            );
            break;
          case 'version':
            await insertVersion(c, r.value);
            break;
          case 'call':
            calls.push(r.value);
            if (calls.length >= 1000) await c.query(upsertCalls(calls.splice(0)));
            break;
          case 'idempotency':
            await c.query('INSERT INTO idempotency_keys (key, rec) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET rec = EXCLUDED.rec', [
              r.key,
              JSON.stringify(r.value),
            ]);
            break;
          case 'schedule':
            await putSchedule(c, r.value);
            break;
          case 'trigger':
            await putTrigger(c, r.value);
            break;
          default:
            await this.tenancy.restore(c, r);
        }
      }
      if (calls.length > 0) await c.query(upsertCalls(calls));
    });
  }
  async restored(): Promise<void> {
    // The next call number follows the newest restored call (never an old number again).
    await this.db.query('UPDATE call_counter SET n = GREATEST(n, (SELECT coalesce(max(num), 0) FROM calls))');
  }
}

const ADOPT_LOCK = 7_268_511_723; // adoptions of calls, one at a time (any constant of our own)

interface LeaseRow {
  id: string;
  token: string | null;
  until: string;
  adopted_by: string | null;
}
const leaseOf = (r: LeaseRow): ApiLease => ({
  id: r.id,
  ...(r.token ? { token: r.token } : {}),
  until: Number(r.until),
  ...(r.adopted_by ? { adoptedBy: r.adopted_by } : {}),
});

// The database's clock, in ms since the epoch.
async function dbNow(q: Queryable): Promise<number> {
  return Number(((await q.query('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now')).rows[0] as { now: string }).now);
}

async function insertVersion(q: Queryable, meta: FunctionMeta): Promise<void> {
  await q.query(
    `INSERT INTO function_versions (name, version, digest, runtime, rec) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name, version) DO UPDATE SET digest = EXCLUDED.digest, runtime = EXCLUDED.runtime, rec = EXCLUDED.rec`,
    [meta.functionName, meta.version, meta.digest, meta.runtimeName, JSON.stringify(meta)],
  );
}

async function triggerFor(q: Queryable, funcName: string, id: string): Promise<Trigger | null> {
  return rec<Trigger>((await q.query('SELECT rec FROM triggers WHERE func_name = $1 AND id = $2 FOR UPDATE', [funcName, id])).rows[0]);
}

async function putTrigger(q: Queryable, t: Trigger): Promise<void> {
  await q.query(
    'INSERT INTO triggers (func_name, id, rec) VALUES ($1, $2, $3) ON CONFLICT (func_name, id) DO UPDATE SET rec = EXCLUDED.rec',
    [t.funcName, t.id, JSON.stringify(t)],
  );
}

async function putSchedule(q: Queryable, sc: Schedule): Promise<void> {
  await q.query(
    'INSERT INTO schedules (func_name, id, rec) VALUES ($1, $2, $3) ON CONFLICT (func_name, id) DO UPDATE SET rec = EXCLUDED.rec',
    [sc.funcName, sc.id, JSON.stringify(sc)],
  );
}

// Archives no version of any function holds any more: stored once by digest, they go with the last one.
async function dropArchives(q: Queryable, digests: string[]): Promise<void> {
  if (digests.length === 0) return;
  await q.query(
    `DELETE FROM archives a WHERE a.digest = ANY($1) AND NOT EXISTS (SELECT 1 FROM function_versions v WHERE v.digest = a.digest)
       AND NOT EXISTS (SELECT 1 FROM function_versions v WHERE v.rec::jsonb #>> '{build,digest}' = a.digest)`,
    [digests],
  );
}

const PAGE = 1000;
const ARCHIVE_PAGE = 4;

// Every record, table by table, a page at a time (keyset pages in byte order).
async function* readAll(c: Queryable): AsyncGenerator<BackupRecord> {
  for (const rt of recs<Runtime>((await c.query('SELECT rec FROM runtimes ORDER BY name COLLATE "C"')).rows))
    yield { kind: 'runtime', value: rt };
  for (let after = ''; ;) {
    const rows = (
      await c.query('SELECT digest, data FROM archives WHERE digest > $1 ORDER BY digest COLLATE "C" LIMIT $2', [after, ARCHIVE_PAGE])
    ).rows as Array<{ digest: string; data: Buffer }>;
    for (const r of rows) yield { kind: 'archive', digest: r.digest, data: r.data };
    if (rows.length < ARCHIVE_PAGE) break;
    after = rows[rows.length - 1]!.digest;
  }
  const heads = (await c.query('SELECT name, current, latest FROM function_heads ORDER BY name COLLATE "C"')).rows as Array<{
    name: string;
    current: number;
    latest: number;
  }>;
  for (const h of heads) yield { kind: 'function', name: h.name, current: h.current, latest: h.latest };
  for (const v of recs<FunctionMeta>((await c.query('SELECT rec FROM function_versions ORDER BY name COLLATE "C", version')).rows))
    yield { kind: 'version', value: v };
  for (let after = 0; ;) {
    const rows = (await c.query('SELECT num, rec FROM calls WHERE num > $1 ORDER BY num LIMIT $2', [after, PAGE])).rows as Array<{
      num: string;
      rec: string;
    }>;
    for (const r of rows) yield { kind: 'call', value: JSON.parse(r.rec) as Call };
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1]!.num);
  }
  for (let after = ''; ;) {
    const rows = (
      await c.query('SELECT key, rec FROM idempotency_keys WHERE key COLLATE "C" > $1 ORDER BY key COLLATE "C" LIMIT $2', [after, PAGE])
    ).rows as Array<{ key: string; rec: string }>;
    for (const r of rows) yield { kind: 'idempotency', key: r.key, value: JSON.parse(r.rec) as KeyEntry };
    if (rows.length < PAGE) break;
    after = rows[rows.length - 1]!.key;
  }
  for (const sc of recs<Schedule>((await c.query('SELECT rec FROM schedules ORDER BY func_name COLLATE "C", id COLLATE "C"')).rows))
    yield { kind: 'schedule', value: sc };
  for (const t of recs<Trigger>((await c.query('SELECT rec FROM triggers ORDER BY func_name COLLATE "C", id COLLATE "C"')).rows))
    yield { kind: 'trigger', value: t };
  yield* PgTenancy.readAll(c);
}
