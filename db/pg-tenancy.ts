// The tenancy records (namespaces, keys, sealed secrets) in the PostgreSQL store; db/tenancy.ts holds the
// rules and the sealing.
import { DEFAULT_NAMESPACE } from '../common/namespace.js';
import type { KeyRecord, Namespace } from '../common/model.js';
import type { SealedSecret, TenancyRecords } from './store-api.js';
import type { BackupRecord } from './backup-records.js';
import type { Sql } from './pg-connect.js';

type Queryable = Sql;
type Tx = <T>(fn: (c: Queryable) => Promise<T>) => Promise<T>;

const rec = <T>(row: { rec: string } | undefined): T | null => (row ? (JSON.parse(row.rec) as T) : null);
const recs = <T>(rows: Array<{ rec: string }>): T[] => rows.map((r) => JSON.parse(r.rec) as T);

export class PgTenancy implements TenancyRecords {
  constructor(
    private readonly pool: Sql, // the store's PgPrimary: statements that follow the writable host
    private readonly tx: Tx,
  ) {}

  // The default namespace always exists (made once, whichever service starts first).
  async ensureDefault(): Promise<void> {
    const ns: Namespace = { name: DEFAULT_NAMESPACE, createdAt: new Date().toISOString(), quotas: {} };
    await this.pool.query('INSERT INTO namespaces (name, rec) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      ns.name,
      JSON.stringify(ns),
    ]);
  }

  async getNamespace(name: string): Promise<Namespace | null> {
    return rec<Namespace>((await this.pool.query('SELECT rec FROM namespaces WHERE name = $1', [name])).rows[0]);
  }
  async putNamespace(ns: Namespace): Promise<void> {
    await putNamespace(this.pool, ns);
  }
  async listNamespaces(): Promise<Namespace[]> {
    return recs<Namespace>((await this.pool.query('SELECT rec FROM namespaces ORDER BY name COLLATE "C"')).rows);
  }
  async getKey(id: string): Promise<KeyRecord | null> {
    return rec<KeyRecord>((await this.pool.query('SELECT rec FROM api_keys WHERE id = $1', [id])).rows[0]);
  }
  async putKey(k: KeyRecord): Promise<void> {
    await putKey(this.pool, k);
  }
  async listKeys(namespace: string): Promise<KeyRecord[]> {
    return recs<KeyRecord>((await this.pool.query('SELECT rec FROM api_keys WHERE namespace = $1 ORDER BY id', [namespace])).rows);
  }
  async getSecret(namespace: string, name: string): Promise<SealedSecret | null> {
    return rec<SealedSecret>(
      (await this.pool.query('SELECT rec FROM secrets WHERE namespace = $1 AND name = $2', [namespace, name])).rows[0],
    );
  }
  async putSecret(namespace: string, s: SealedSecret): Promise<void> {
    await putSecret(this.pool, namespace, s);
  }
  async listSecrets(namespace: string): Promise<SealedSecret[]> {
    return recs<SealedSecret>(
      (await this.pool.query('SELECT rec FROM secrets WHERE namespace = $1 ORDER BY name COLLATE "C"', [namespace])).rows,
    );
  }
  async deleteSecret(namespace: string, name: string): Promise<void> {
    await this.pool.query('DELETE FROM secrets WHERE namespace = $1 AND name = $2', [namespace, name]);
  }
  dropNamespace(name: string): Promise<{ keys: string[] }> {
    return this.tx(async (c) => {
      const keys = (await c.query('DELETE FROM api_keys WHERE namespace = $1 RETURNING id', [name])).rows as Array<{ id: string }>;
      await c.query('DELETE FROM secrets WHERE namespace = $1', [name]);
      await c.query('DELETE FROM namespaces WHERE name = $1', [name]);
      return { keys: keys.map((k) => k.id).sort() };
    });
  }

  // A tenancy record of a backup, written back in the restore's transaction (another kind: nothing).
  async restore(c: Queryable, r: BackupRecord): Promise<void> {
    if (r.kind === 'namespace') await putNamespace(c, r.value);
    else if (r.kind === 'key') await putKey(c, r.value);
    else if (r.kind === 'secret') await putSecret(c, r.namespace, r.value);
  }

  static async *readAll(c: Queryable): AsyncGenerator<BackupRecord> {
    for (const ns of recs<Namespace>((await c.query('SELECT rec FROM namespaces ORDER BY name COLLATE "C"')).rows))
      yield { kind: 'namespace', value: ns };
    for (const k of recs<KeyRecord>((await c.query('SELECT rec FROM api_keys ORDER BY id')).rows)) yield { kind: 'key', value: k };
    const rows = (await c.query('SELECT namespace, rec FROM secrets ORDER BY namespace, name COLLATE "C"')).rows as Array<{
      namespace: string;
      rec: string;
    }>;
    for (const r of rows) yield { kind: 'secret', namespace: r.namespace, value: JSON.parse(r.rec) as SealedSecret };
  }
}

async function putNamespace(q: Queryable, ns: Namespace): Promise<void> {
  await q.query('INSERT INTO namespaces (name, rec) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET rec = EXCLUDED.rec', [
    ns.name,
    JSON.stringify(ns),
  ]);
}
async function putKey(q: Queryable, k: KeyRecord): Promise<void> {
  await q.query(
    'INSERT INTO api_keys (id, namespace, rec) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET namespace = EXCLUDED.namespace, rec = EXCLUDED.rec',
    [k.id, k.namespace, JSON.stringify(k)],
  );
}
async function putSecret(q: Queryable, namespace: string, s: SealedSecret): Promise<void> {
  await q.query(
    'INSERT INTO secrets (namespace, name, rec) VALUES ($1, $2, $3) ON CONFLICT (namespace, name) DO UPDATE SET rec = EXCLUDED.rec',
    [namespace, s.name, JSON.stringify(s)],
  );
}
