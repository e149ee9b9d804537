// Function and runtime definitions, cached in the API so a warm call does not ask the DB service for them
// every time. Every change goes through this API's own handlers, which clear the cache (see server.ts);
// a short TTL bounds staleness should anything else ever write the DB.
//
// An entry's object identity stands for "this definition": the broker sends each node a definition object
// once. Clearing makes new objects (so a changed runtime is sent again); a TTL refresh that finds the same
// definition keeps the old object, so nodes are not sent what they already have.
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { Definition } from './broker.js';

const TTL_MS = 5_000;

export interface MetaEntry {
  readonly fn: FunctionMeta;
  readonly runtime: Runtime | null; // null: the function's runtime was deleted
}

interface Entry extends MetaEntry {
  at: number;
  json: string; // to tell a refreshed definition from a changed one
}

export const hasRuntime = (e: MetaEntry): e is Definition => e.runtime !== null;

export class MetaCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly db: Pick<DbClient, 'request'>) {}

  async get(name: string, version?: number): Promise<MetaEntry | null> {
    const key = version === undefined ? name : `${name}@${version}`;
    const hit = this.entries.get(key);
    if (hit && Date.now() - hit.at < TTL_MS) return hit;
    const fn = await this.db.request('getFunction', { name, version });
    if (!fn) return null;
    const runtime = await this.db.request('getRuntime', { name: fn.runtimeName });
    const json = JSON.stringify([fn, runtime]);
    if (hit && hit.json === json && this.entries.get(key) === hit) {
      hit.at = Date.now();
      return hit;
    }
    const entry: Entry = { fn, runtime, at: Date.now(), json };
    this.entries.set(key, entry);
    return entry;
  }

  clear(): void {
    this.entries.clear();
  }
}
