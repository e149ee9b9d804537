// The secrets a call's function names, as the node hands them to its container: read from the DB service
// (`readSecrets`, decrypted there) and kept in this process's memory for at most TTL_MS, so that a burst of
// calls makes one request while a changed or deleted secret reaches the next call within about a second.
// Nothing here is written to disk or logged.
import { z } from 'zod';
import { SecretInfoSchema, type SecretInfo } from '../common/model.js';
import type { SecretFile } from '../protocol/worker.js';

export const TTL_MS = 1000;
const MAX_ENTRIES = 1000;

export interface SecretSet {
  files: SecretFile[]; // in the order the function names them
  missing: string[]; // names with no secret in the namespace
}

// What readSecrets answers: its data, and the values as blob frames in the order of `secrets`.
export type ReadSecrets = (namespace: string, names: string[]) => Promise<{ data: unknown; blobs: Buffer[] }>;

const AnswerSchema = z.object({ secrets: z.array(SecretInfoSchema), missing: z.array(z.string()) });

// Which version of a secret a container holds: a deleted and re-created secret starts at version 1
// again, so its time tells it apart.
export const stampOf = (s: SecretInfo): string => `${s.version}@${s.updatedAt}`;

export class SecretCache {
  private readonly entries = new Map<string, { at: number; set: Promise<SecretSet> }>();

  constructor(
    private readonly read: ReadSecrets,
    private readonly ttlMs = TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  get(namespace: string, names: readonly string[]): Promise<SecretSet> {
    if (names.length === 0) return Promise.resolve({ files: [], missing: [] });
    const key = `${namespace}\0${names.join('\0')}`;
    const t = this.now();
    const hit = this.entries.get(key);
    if (hit && t - hit.at < this.ttlMs) return hit.set;
    if (this.entries.size >= MAX_ENTRIES) this.prune(t);
    const set = this.fetch(namespace, [...names]);
    const entry = { at: t, set };
    this.entries.set(key, entry);
    // A failure is not kept: the next call asks again.
    set.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return set;
  }

  private prune(t: number): void {
    for (const [k, e] of this.entries) if (t - e.at >= this.ttlMs) this.entries.delete(k);
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
  }

  private async fetch(namespace: string, names: string[]): Promise<SecretSet> {
    const { data, blobs } = await this.read(namespace, names);
    const answer = AnswerSchema.parse(data);
    if (blobs.length !== answer.secrets.length) throw new Error('the DB service answered readSecrets without every value');
    const byName = new Map(answer.secrets.map((s, i) => [s.name, { s, value: blobs[i]! }]));
    const files: SecretFile[] = [];
    const missing = names.filter((n) => !byName.has(n));
    for (const name of names) {
      const got = byName.get(name);
      if (got) files.push({ name, stamp: stampOf(got.s), value: got.value.toString('base64') });
    }
    return { files, missing };
  }
}
