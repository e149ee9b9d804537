// Function and runtime definitions, cached in the API so a warm call does not ask the DB service for them
// every time. Every change goes through this API's own handlers, which clear the cache (see server.ts);
// a short TTL bounds staleness should anything else ever write the DB.
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';

const TTL_MS = 5_000;

interface Entry {
  fn: FunctionMeta;
  runtime: Runtime | null;
  at: number;
}

export class MetaCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly db: DbClient) {}

  async get(name: string, version?: number): Promise<{ fn: FunctionMeta; runtime: Runtime | null } | null> {
    const key = version === undefined ? name : `${name}@${version}`;
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) return hit;
    const fn = await this.db.request('getFunction', { name, version });
    if (!fn) return null;
    const runtime = await this.db.request('getRuntime', { name: fn.runtimeName });
    const entry = { fn, runtime, at: Date.now() };
    this.entries.set(key, entry);
    return entry;
  }

  clear(): void {
    this.entries.clear();
  }
}
