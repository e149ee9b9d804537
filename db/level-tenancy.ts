// The tenancy records (namespaces, keys, sealed secrets) in the embedded LevelDB store, each kind in its
// own sublevel; db/tenancy.ts holds the rules and the sealing.
import type { AbstractBatchOperation, AbstractSublevel } from 'abstract-level';
import type { Level } from 'level';
import type { KeyRecord, Namespace } from '../common/model.js';
import type { SealedSecret, TenancyRecords } from './store-api.js';
import type { BackupRecord } from './backup-records.js';

type Sub<V> = AbstractSublevel<Level<string, unknown>, string | Buffer | Uint8Array, string, V>;
type BatchOp = AbstractBatchOperation<Level<string, unknown>, string, unknown>;

export class LevelTenancy implements TenancyRecords {
  private readonly namespaces: Sub<Namespace>;
  private readonly keys: Sub<KeyRecord>;
  private readonly secrets: Sub<SealedSecret>; // "NAMESPACE!NAME"

  constructor(private readonly db: Level<string, unknown>) {
    this.namespaces = db.sublevel<string, Namespace>('ns', { valueEncoding: 'json' });
    this.keys = db.sublevel<string, KeyRecord>('key', { valueEncoding: 'json' });
    this.secrets = db.sublevel<string, SealedSecret>('secret', { valueEncoding: 'json' });
  }

  async getNamespace(name: string): Promise<Namespace | null> {
    return (await this.namespaces.get(name)) ?? null;
  }
  putNamespace(ns: Namespace): Promise<void> {
    return this.namespaces.put(ns.name, ns);
  }
  listNamespaces(): Promise<Namespace[]> {
    return this.namespaces.values().all();
  }
  async getKey(id: string): Promise<KeyRecord | null> {
    return (await this.keys.get(id)) ?? null;
  }
  putKey(k: KeyRecord): Promise<void> {
    return this.keys.put(k.id, k);
  }
  async listKeys(namespace: string): Promise<KeyRecord[]> {
    return (await this.keys.values().all()).filter((k) => k.namespace === namespace);
  }
  async getSecret(namespace: string, name: string): Promise<SealedSecret | null> {
    return (await this.secrets.get(`${namespace}!${name}`)) ?? null;
  }
  putSecret(namespace: string, s: SealedSecret): Promise<void> {
    return this.secrets.put(`${namespace}!${s.name}`, s);
  }
  listSecrets(namespace: string): Promise<SealedSecret[]> {
    return this.secrets.values({ gt: `${namespace}!`, lt: `${namespace}!~` }).all();
  }
  deleteSecret(namespace: string, name: string): Promise<void> {
    return this.secrets.del(`${namespace}!${name}`);
  }
  async dropNamespace(name: string): Promise<{ keys: string[] }> {
    const keys = (await this.listKeys(name)).map((k) => k.id);
    const secrets = await this.secrets.keys({ gt: `${name}!`, lt: `${name}!~` }).all();
    await this.db.batch([
      ...keys.map((key) => ({ type: 'del' as const, sublevel: this.keys, key })),
      ...secrets.map((key) => ({ type: 'del' as const, sublevel: this.secrets, key })),
      { type: 'del' as const, sublevel: this.namespaces, key: name },
    ]);
    return { keys };
  }

  // The batch operations restoring a tenancy record of a backup (none for another kind).
  restoreOps(r: BackupRecord): BatchOp[] {
    switch (r.kind) {
      case 'namespace':
        return [{ type: 'put', sublevel: this.namespaces, key: r.value.name, value: r.value }];
      case 'key':
        return [{ type: 'put', sublevel: this.keys, key: r.value.id, value: r.value }];
      case 'secret':
        return [{ type: 'put', sublevel: this.secrets, key: `${r.namespace}!${r.value.name}`, value: r.value }];
      default:
        return [];
    }
  }

  // The record of a raw entry of one of these sublevels (null for any other).
  static fromRaw(sub: string, id: string, value: () => unknown): BackupRecord | null {
    switch (sub) {
      case 'ns':
        return { kind: 'namespace', value: value() as Namespace };
      case 'key':
        return { kind: 'key', value: value() as KeyRecord };
      case 'secret':
        return { kind: 'secret', namespace: id.slice(0, id.indexOf('!')), value: value() as SealedSecret };
      default:
        return null;
    }
  }
}
