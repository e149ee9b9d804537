// The tenancy records of the store: namespaces with their quotas, keys (each only as a salt and a slow
// hash: the key itself is shown once, by the API, and never reaches the DB service) and secrets.
// Secret values are sealed with AES-256-GCM under a master key that lives outside the data folder (a
// file or an environment variable given to the DB service); each value is bound to its namespace and
// name as associated data, so a sealed value copied under another name does not open.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { NamespaceSchema, SECRET_VALUE_MAX, type KeyRecord, type Namespace, type Quotas, type SecretInfo } from '../common/model.js';
import { DEFAULT_NAMESPACE } from '../common/namespace.js';
import type { Purged } from '../protocol/db.js';
import type { SealedSecret, TenancyRecords } from './store-api.js';

export class TenancyError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'CONFLICT' | 'BAD_REQUEST' | 'UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

// The 32-byte key of the cipher, from the operator's master key material (any string of 32 or more
// characters: a random hex or base64 string is what `zfaas up` writes).
export function sealingKey(material: string): Buffer {
  const m = material.trim();
  if (m.length < 32) throw new Error('the secrets master key must be at least 32 characters');
  return Buffer.from(hkdfSync('sha256', m, 'zfaas-secrets', 'aes-256-gcm v1', 32));
}

export class Tenancy {
  constructor(
    private readonly records: TenancyRecords, // the store's (db/store-api.ts)
    private readonly sealing?: Buffer, // no master key: secrets cannot be written or read
  ) {}

  // The default namespace always exists: an installation from before namespaces gets it on first start.
  async ensureDefault(): Promise<boolean> {
    if (await this.records.getNamespace(DEFAULT_NAMESPACE)) return false;
    await this.records.putNamespace({ name: DEFAULT_NAMESPACE, createdAt: new Date().toISOString(), quotas: {} });
    return true;
  }

  // `purge` clears whatever the store still holds under the name (a namespace deleted before its data
  // went with it), so that a new namespace never sees an old one's calls or keys.
  async createNamespace(name: string, quotas: Quotas, purge?: () => Promise<Purged>): Promise<Namespace> {
    if (await this.records.getNamespace(name)) throw new TenancyError('CONFLICT', `namespace ${name} exists`);
    const ns = NamespaceSchema.parse({ name, createdAt: new Date().toISOString(), quotas });
    await purge?.();
    await this.records.putNamespace(ns);
    return ns;
  }
  getNamespace(name: string): Promise<Namespace | null> {
    return this.records.getNamespace(name);
  }
  listNamespaces(): Promise<Namespace[]> {
    return this.records.listNamespaces();
  }
  async setQuotas(name: string, quotas: Quotas): Promise<Namespace> {
    const ns = await this.records.getNamespace(name);
    if (!ns) throw new TenancyError('NOT_FOUND', `namespace ${name} not found`);
    const next = { ...ns, quotas };
    await this.records.putNamespace(next);
    return next;
  }

  // A namespace goes with its keys and secrets (its functions must be gone first: the API sees to it), and
  // with what `purge` takes of the store (its calls, idempotency keys: Store.purgeNamespace). The record
  // goes last: a purge cut short by a crash leaves the namespace in place, to be deleted again.
  async deleteNamespace(name: string, purge?: () => Promise<Purged>): Promise<{ deleted: boolean; keys: string[] } & Partial<Purged>> {
    if (name === DEFAULT_NAMESPACE) throw new TenancyError('CONFLICT', 'the default namespace cannot be deleted');
    if (!(await this.records.getNamespace(name))) return { deleted: false, keys: [] };
    const purged = await purge?.();
    const { keys } = await this.records.dropNamespace(name);
    return { deleted: true, keys, ...purged };
  }

  async putKey(k: KeyRecord): Promise<KeyRecord> {
    if (!(await this.records.getNamespace(k.namespace))) throw new TenancyError('NOT_FOUND', `namespace ${k.namespace} not found`);
    const had = await this.records.getKey(k.id);
    if (had && had.namespace !== k.namespace) throw new TenancyError('CONFLICT', `key ${k.id} belongs to another namespace`);
    if (had?.revokedAt) throw new TenancyError('CONFLICT', `key ${k.id} is revoked`);
    await this.records.putKey(k);
    return k;
  }
  getKey(id: string): Promise<KeyRecord | null> {
    return this.records.getKey(id);
  }
  listKeys(namespace: string): Promise<KeyRecord[]> {
    return this.records.listKeys(namespace);
  }

  private sealer(): Buffer {
    if (!this.sealing)
      throw new TenancyError(
        'UNAVAILABLE',
        'secrets need a master key: start the DB service with ZFAAS_SECRETS_KEY_FILE or ZFAAS_SECRETS_KEY',
      );
    return this.sealing;
  }

  async putSecret(namespace: string, name: string, value: Buffer): Promise<SecretInfo> {
    if (value.length > SECRET_VALUE_MAX) throw new TenancyError('BAD_REQUEST', `a secret holds at most ${SECRET_VALUE_MAX} bytes`);
    if (!(await this.records.getNamespace(namespace))) throw new TenancyError('NOT_FOUND', `namespace ${namespace} not found`);
    const key = this.sealer();
    const had = await this.records.getSecret(namespace, name);
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', key, iv);
    c.setAAD(Buffer.from(`${namespace}/${name}`));
    const data = Buffer.concat([c.update(value), c.final()]);
    const now = new Date().toISOString();
    const sealed: SealedSecret = {
      name,
      version: (had?.version ?? 0) + 1,
      bytes: value.length,
      createdAt: had?.createdAt ?? now,
      updatedAt: now,
      iv: iv.toString('base64'),
      tag: c.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
    await this.records.putSecret(namespace, sealed);
    return info(sealed);
  }

  async listSecrets(namespace: string): Promise<SecretInfo[]> {
    return (await this.records.listSecrets(namespace)).map(info);
  }

  async deleteSecret(namespace: string, name: string): Promise<{ deleted: boolean }> {
    if (!(await this.records.getSecret(namespace, name))) return { deleted: false };
    await this.records.deleteSecret(namespace, name);
    return { deleted: true };
  }

  // The named secrets' values, opened; names with no secret are listed as missing.
  async readSecrets(namespace: string, names: string[]): Promise<{ secrets: SecretInfo[]; missing: string[]; values: Buffer[] }> {
    const out = { secrets: [] as SecretInfo[], missing: [] as string[], values: [] as Buffer[] };
    for (const name of names) {
      const s = await this.records.getSecret(namespace, name);
      if (!s) {
        out.missing.push(name);
        continue;
      }
      const d = createDecipheriv('aes-256-gcm', this.sealer(), Buffer.from(s.iv, 'base64'));
      d.setAAD(Buffer.from(`${namespace}/${name}`));
      d.setAuthTag(Buffer.from(s.tag, 'base64'));
      try {
        out.values.push(Buffer.concat([d.update(Buffer.from(s.data, 'base64')), d.final()]));
      } catch {
        throw new TenancyError('UNAVAILABLE', `secret ${name} does not open with this master key`);
      }
      out.secrets.push(info(s));
    }
    return out;
  }
}

const info = (s: SealedSecret): SecretInfo => ({
  name: s.name,
  version: s.version,
  bytes: s.bytes,
  createdAt: s.createdAt,
  updatedAt: s.updatedAt,
});
