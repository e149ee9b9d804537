// The PostgreSQL store's connection: one host, or several in libpq's own multi-host form
// (`postgres://u@h1:p1,h2:p2/db?target_session_attrs=read-write`), of which it uses the one that takes
// writes. node-postgres connects to one host and does not pick a writable one itself, so this module
// finds it (as libpq does: hosts in the order given, each asked whether it is in recovery or read-only)
// and keeps a pool on it. When that host goes away (its connections refused or reset, an admin shutdown,
// a read-only answer from a host demoted to standby), statements wait for the next writable host, up to
// a limit, and run again there.
//
// A transaction whose COMMIT got no answer may or may not have committed. Each one therefore inserts a
// unique write id in the same round trip as its COMMIT; after a lost answer the id is claimed on the
// (new) primary: already there, the transaction committed and its answer stands; claimed, it did not
// (and now never can), and running it again writes it once.
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { errText, type Logger } from '../common/log.js';
import { UsageError } from '../common/errors.js';

// What the store's statements need of a connection (a pool, a transaction's client, or PgPrimary).
export interface Sql {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

// libpq's target_session_attrs values a store can use: it writes, so never a standby's.
const ATTRS = ['any', 'read-write', 'primary'] as const;
export type SessionAttrs = (typeof ATTRS)[number];

export interface PgTarget {
  urls: string[]; // one single-host URL per host, in the order given (what node-postgres takes)
  hosts: string[]; // host:port as given, for messages
  attrs: SessionAttrs;
}

// Splits a (multi-host) postgres:// URL into single-host URLs; the rest of the URL (user, password,
// database, parameters) is each host's. target_session_attrs is read here and not passed on.
export function parsePgUrl(url: string): PgTarget {
  const m = /^(postgres(?:ql)?:\/\/)(?:([^@/?#]*)@)?([^/?#]*)(.*)$/i.exec(url);
  if (!m) throw new UsageError(`--store takes a postgres:// URL, not ${url}`);
  const [, scheme, userinfo, hostList, rest] = m as unknown as [string, string, string | undefined, string, string];
  const hosts = hostList.split(',');
  if (hosts.length > 1 && hosts.some((h) => h === ''))
    throw new UsageError(`--store lists an empty host in ${hostList}: write host:port,host:port`);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1).replace(/#.*$/, ''));
  const attrs = params.get('target_session_attrs') ?? 'any';
  if (!(ATTRS as readonly string[]).includes(attrs))
    throw new UsageError(
      `target_session_attrs=${attrs} is not for a store that writes: use read-write (or primary, or any), as libpq understands them`,
    );
  params.delete('target_session_attrs');
  const query = params.size > 0 ? `?${params.toString()}` : '';
  const user = userinfo === undefined ? '' : `${userinfo}@`;
  return { urls: hosts.map((h) => `${scheme}${user}${h}${path}${query}`), hosts, attrs: attrs as SessionAttrs };
}

// Errors after which the host in use is no longer the one to write to (or the answer never came):
// the connection broke or was refused, the server is shutting down or starting, or it is a standby now.
export function isFailover(e: unknown): boolean {
  const x = e as { code?: unknown; message?: unknown };
  const code = typeof x?.code === 'string' ? x.code : '';
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN'].includes(code)) return true;
  if (/^(08|57P0)/.test(code)) return true; // connection exceptions; admin or crash shutdown, cannot connect now
  if (code === '25006') return true; // read-only SQL transaction: the host is a standby now
  const msg = typeof x?.message === 'string' ? x.message : '';
  return /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed|Query read timeout/i.test(
    msg,
  );
}

// A statement that went unanswered for ANSWER_MS (node-postgres's query_timeout): its connection is not
// asked anything more (it is still busy with that statement), only let go.
const unanswered = (e: unknown): boolean => e instanceof Error && e.message === 'Query read timeout';

// How long a statement may go unanswered before its host counts as lost. Without it, a host that
// vanishes without a word (its machine lost mid-statement: no reset comes) holds the statement, and with
// it the DB service's one lane of writes, until TCP gives up, a quarter of an hour later. A COMMIT that
// waits for a synchronous standby may take a failover's time; the URL's own query_timeout=MS wins.
export const ANSWER_MS = 15_000;

// The write ids are kept this long (a lost answer is looked up within seconds), then pruned.
const WRITE_ID_KEEP = '1 hour';
const PRUNE_EVERY_MS = 60_000;
const RETRY_PAUSE_MS = 250;

export interface PgPrimaryOptions {
  log: Logger;
  connectMs: number; // a connection attempt's limit; also how long open() waits for a host
  failoverMs: number; // after open(): how long a statement waits for a writable host again
}

// A pool on the writable host of the target, found again after it is lost.
export class PgPrimary implements Sql {
  private pool: pg.Pool | null = null;
  private host = ''; // host:port of `pool`
  private locating: Promise<pg.Pool> | null = null;
  private waitMs: number;
  private pruner: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly poolOf = new WeakMap<pg.PoolClient, pg.Pool>(); // the pool of each client begin() gave
  private readonly guarded = new WeakSet<pg.PoolClient>(); // clients with an error listener of ours

  constructor(
    private readonly target: PgTarget,
    private readonly o: PgPrimaryOptions,
  ) {
    this.waitMs = o.connectMs;
  }

  // One host taken as it is (libpq's `any` with one host): no probe, as before there were several.
  private get single(): boolean {
    return this.target.urls.length === 1 && this.target.attrs === 'any';
  }

  // After the store is open: losses wait failoverMs for a host (opening waits connectMs only), and old
  // write ids are pruned now and then.
  opened(): void {
    this.waitMs = this.o.failoverMs;
    this.pruner = setInterval(() => {
      this.query(`DELETE FROM zfaas_writes WHERE at < now() - interval '${WRITE_ID_KEEP}'`).catch((e: unknown) =>
        this.o.log.debug({ err: errText(e) }, 'old write ids not pruned'),
      );
    }, PRUNE_EVERY_MS);
    this.pruner.unref();
  }

  async end(): Promise<void> {
    this.ended = true;
    clearInterval(this.pruner);
    const p = this.pool;
    this.pool = null;
    await p?.end();
  }

  private makePool(url: string): pg.Pool {
    // TCP keepalive after 10 s idle: a connection to a host that vanished without a word (its machine lost)
    // breaks within a minute instead of the system's two hours.
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: this.o.connectMs,
      query_timeout: ANSWER_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    });
    // An idle connection that breaks (the server restarted or went away) is dropped by the pool.
    pool.on('error', (e) => this.o.log.warn({ err: errText(e) }, 'a PostgreSQL connection broke'));
    return pool;
  }

  // The pool on the writable host: the one in use, or the next one found.
  private current(): Promise<pg.Pool> {
    if (this.ended) return Promise.reject(new Error('the PostgreSQL store is closed'));
    if (this.pool) return Promise.resolve(this.pool);
    if (this.single) {
      this.pool = this.makePool(this.target.urls[0]!);
      this.host = this.target.hosts[0]!;
      return Promise.resolve(this.pool);
    }
    this.locating ??= this.locate().finally(() => {
      this.locating = null;
    });
    return this.locating;
  }

  // Each host in turn, as libpq does, until one fits target_session_attrs (within waitMs).
  private async locate(): Promise<pg.Pool> {
    const deadline = Date.now() + this.waitMs;
    const why: string[] = [];
    for (;;) {
      why.length = 0;
      for (const [i, url] of this.target.urls.entries()) {
        const host = this.target.hosts[i]!;
        const fits = await this.fits(url).catch((e: unknown) => errText(e));
        if (fits === true) {
          this.pool = this.makePool(url);
          this.host = host;
          this.o.log.info({ host, hosts: this.target.hosts }, 'PostgreSQL: writing to this host');
          return this.pool;
        }
        why.push(`${host}: ${fits}`);
      }
      if (Date.now() > deadline || this.ended)
        throw new Error(`no PostgreSQL host took writes within ${Math.round(this.waitMs / 1000)} s (${why.join('; ')})`);
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }

  // Whether a host fits: true, or why not.
  private async fits(url: string): Promise<true | string> {
    const limit = Math.min(this.o.connectMs, 3000);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: limit, query_timeout: limit });
    c.on('error', () => undefined); // a probe's connection breaking is its answer, not a crash
    try {
      await c.connect();
      if (this.target.attrs === 'any') return true;
      const r = await c.query("SELECT pg_is_in_recovery() AS standby, current_setting('transaction_read_only') = 'on' AS ro");
      const row = r.rows[0] as { standby: boolean; ro: boolean };
      if (row.standby) return 'a standby';
      if (this.target.attrs === 'read-write' && row.ro) return 'read-only';
      return true;
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  // After an error that means the host is lost: the pool on it goes (the next statement finds the next
  // host), or, with one host, a pause before trying it again. Throws `e` once the wait is over.
  private async lost(pool: pg.Pool, e: unknown, deadline: number): Promise<void> {
    if (Date.now() > deadline || this.ended) throw e;
    this.drop(pool, e);
    await new Promise((r) => setTimeout(r, this.single ? RETRY_PAUSE_MS : 0));
  }

  // The pool on a lost host goes (if it is still the one in use): the next statement looks for the host.
  private drop(pool: pg.Pool | undefined, e: unknown): void {
    if (this.single || !pool || this.pool !== pool) return;
    this.o.log.warn({ host: this.host, err: errText(e) }, 'PostgreSQL host lost: looking for the writable one');
    this.pool = null;
    void pool.end().catch(() => undefined);
  }

  // A statement on a client of begin() failed with e: when e means the host is lost (a standby now, or
  // gone), the next transaction looks for the writable host instead of beginning on this one again.
  failed(c: pg.PoolClient, e: unknown): void {
    if (isFailover(e)) this.drop(this.poolOf.get(c), e);
  }

  // A statement on the writable host, run again on the next one when the host is lost. For reads and
  // for writes whose second run changes nothing more (upserts, deletes by key).
  async query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const pool = await this.current();
      try {
        return await pool.query(text, values);
      } catch (e) {
        if (!isFailover(e)) throw e;
        await this.lost(pool, e, deadline);
      }
    }
  }

  // A client taken from a pool: the pool listens for its connection breaking only while it is idle, and a
  // break while it is taken surfaces as its query's error, so the event itself is only logged.
  private async take(pool: pg.Pool): Promise<pg.PoolClient> {
    const c = await pool.connect();
    if (!this.guarded.has(c)) {
      this.guarded.add(c);
      c.on('error', (e) => this.o.log.debug({ err: errText(e) }, 'a PostgreSQL connection in use broke'));
    }
    return c;
  }

  // A connection to the writable host (for a read that spans statements: a backup's snapshot).
  async connect(): Promise<pg.PoolClient> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const pool = await this.current();
      try {
        return await this.take(pool);
      } catch (e) {
        if (!isFailover(e)) throw e;
        await this.lost(pool, e, deadline);
      }
    }
  }

  // A connection with a transaction begun on it, on the writable host.
  async begin(): Promise<pg.PoolClient> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const pool = await this.current();
      let c: pg.PoolClient | undefined;
      try {
        c = await this.take(pool);
        await c.query('BEGIN');
        this.poolOf.set(c, pool);
        return c;
      } catch (e) {
        c?.release(true);
        if (!isFailover(e)) throw e;
        await this.lost(pool, e, deadline);
      }
    }
  }

  // Commits the transaction on c with a new write id, in one round trip. Resolves when it committed
  // (also when the answer was lost but the id is found on the writable host); throws `PgNotCommitted`
  // when it did not commit for a reason that passes (the host was lost: running it again is safe), or
  // the server's own error. c is released either way.
  async commit(c: pg.PoolClient): Promise<void> {
    const id = randomUUID(); // hex and dashes only: safe inside the statement text
    try {
      await c.query(`INSERT INTO zfaas_writes (id) VALUES ('${id}'); COMMIT`);
      c.release();
      return;
    } catch (e) {
      if (!unanswered(e)) await c.query('ROLLBACK').catch(() => undefined);
      c.release(true);
      if (!isFailover(e)) throw e;
      this.failed(c, e); // the id is looked up on the writable host, never on one that just failed
      if (await this.committed(id)) {
        this.o.log.info({ writeId: id }, 'PostgreSQL: a COMMIT whose answer was lost had committed');
        return;
      }
      throw new PgNotCommitted(errText(e));
    }
  }

  // Whether the transaction of this write id committed, decided for good on the writable host: the id is
  // claimed there. Already present, it committed. Else the claim commits it, and a transaction still
  // on its way can never commit with it (its INSERT of the id would conflict); one still running holds
  // the id's key, and the claim waits for it to end either way.
  private async committed(id: string): Promise<boolean> {
    const r = await this.query('INSERT INTO zfaas_writes (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [id]);
    return r.rowCount === 0;
  }

  // fn in one transaction on the writable host, committed with a write id (commit()); run again from
  // the start when the host is lost before it committed. `writeId: false` for the transaction that
  // makes the schema (the id table may not exist yet).
  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>, o: { writeId?: boolean } = {}): Promise<T> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      const c = await this.begin();
      let out: T;
      try {
        out = await fn(c);
      } catch (e) {
        if (!unanswered(e)) await c.query('ROLLBACK').catch(() => undefined);
        c.release(true); // a connection in an unknown state is not reused
        this.failed(c, e);
        if (!isFailover(e) || Date.now() > deadline) throw e;
        continue; // begin() waits for the next host
      }
      try {
        if (o.writeId === false) {
          await c.query('COMMIT');
          c.release();
        } else await this.commit(c);
        return out;
      } catch (e) {
        if (o.writeId === false) c.release(true);
        if (!(e instanceof PgNotCommitted) || Date.now() > deadline) throw e;
      }
    }
  }
}

// A transaction that did not commit because its host was lost: running it again is safe.
export class PgNotCommitted extends Error {}
