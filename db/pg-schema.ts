// The tables of the PostgreSQL store, made (or brought up to date) when a DB service starts, under an
// advisory lock so that services starting together do it once. `zfaas_schema` holds the layout version.
// Records are JSON text; the columns beside them are what queries filter and sort on.
import type pg from 'pg';

export const PG_SCHEMA = 4;
const LOCK = 7_268_511_722; // this schema's advisory lock (any constant of our own)

// Layout version n is made by STEPS[n - 1]: a later version adds a step, never edits one.
const STEPS: string[][] = [
  [
    'CREATE TABLE zfaas_schema (version int NOT NULL)',
    'INSERT INTO zfaas_schema (version) VALUES (0)',
    'CREATE TABLE runtimes (name text PRIMARY KEY, rec text NOT NULL)',
    'CREATE TABLE archives (digest text PRIMARY KEY, data bytea NOT NULL)',
    'CREATE TABLE function_heads (name text PRIMARY KEY, current int NOT NULL, latest int NOT NULL)',
    `CREATE TABLE function_versions (name text NOT NULL, version int NOT NULL, digest text NOT NULL, runtime text NOT NULL,
       rec text NOT NULL, PRIMARY KEY (name, version))`,
    'CREATE INDEX function_versions_digest ON function_versions (digest)',
    // The newest call number: a row, not a sequence, so that a group that fails (rolled back) uses up no
    // number; its lock is held from a group's first new call to its commit.
    'CREATE TABLE call_counter (one boolean PRIMARY KEY DEFAULT true CHECK (one), n bigint NOT NULL)',
    'INSERT INTO call_counter (n) VALUES (0)',
    `CREATE TABLE calls (num bigint PRIMARY KEY, func_name text NOT NULL, namespace text NOT NULL, by_key text, status text NOT NULL,
       open boolean NOT NULL, dead_letter boolean NOT NULL, outbox_at bigint, rec text NOT NULL)`,
    'CREATE INDEX calls_open ON calls (num) WHERE open',
    'CREATE INDEX calls_dead ON calls (num) WHERE dead_letter',
    'CREATE INDEX calls_outbox ON calls (outbox_at) WHERE outbox_at IS NOT NULL',
    'CREATE INDEX calls_namespace ON calls (namespace, num)',
    'CREATE INDEX calls_func ON calls (func_name, num)',
    'CREATE TABLE idempotency_keys (key text PRIMARY KEY, rec text NOT NULL)',
    'CREATE TABLE schedules (func_name text NOT NULL, id text NOT NULL, rec text NOT NULL, PRIMARY KEY (func_name, id))',
    'CREATE TABLE namespaces (name text PRIMARY KEY, rec text NOT NULL)',
    'CREATE TABLE api_keys (id text PRIMARY KEY, namespace text NOT NULL, rec text NOT NULL)',
    'CREATE INDEX api_keys_namespace ON api_keys (namespace)',
    'CREATE TABLE secrets (namespace text NOT NULL, name text NOT NULL, rec text NOT NULL, PRIMARY KEY (namespace, name))',
  ],
  ['CREATE TABLE triggers (func_name text NOT NULL, id text NOT NULL, rec text NOT NULL, PRIMARY KEY (func_name, id))'],
  // The id of each transaction, written with its COMMIT: after a COMMIT whose answer was lost (the host
  // went away), finding the id says it committed (db/pg-connect.ts). Pruned after an hour.
  ['CREATE TABLE zfaas_writes (id uuid PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())'],
  // Several APIs on one store (db/api-lease.ts): which API dispatches each call, and their leases.
  [
    'ALTER TABLE calls ADD COLUMN api text',
    'CREATE TABLE api_leases (id text PRIMARY KEY, token text, until bigint NOT NULL, adopted_by text)',
  ],
];

// Brings the schema to PG_SCHEMA inside the caller's transaction; answers the version it found.
export async function pgSchema(c: Pick<pg.PoolClient, 'query'>): Promise<number> {
  await c.query('SELECT pg_advisory_xact_lock($1)', [LOCK]);
  const exists = (await c.query("SELECT to_regclass('zfaas_schema') IS NOT NULL AS e")).rows[0] as { e: boolean };
  const from = exists.e ? ((await c.query('SELECT version FROM zfaas_schema')).rows[0] as { version: number }).version : 0;
  if (from > PG_SCHEMA)
    throw new Error(`the PostgreSQL store has schema ${from}, newer than this zfaas knows (${PG_SCHEMA}): upgrade zfaas`);
  for (let v = from + 1; v <= PG_SCHEMA; v++) {
    for (const sql of STEPS[v - 1]!) await c.query(sql);
    await c.query('UPDATE zfaas_schema SET version = $1', [v]);
  }
  return from;
}
