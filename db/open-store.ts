// Which store the DB service keeps: one setting (`--store`). None: the embedded LevelDB in the data folder
// (nothing else to run); a postgres:// URL: PostgreSQL, which several DB services may share.
import type { Logger } from '../common/log.js';
import { privateDir } from '../common/private-dir.js';
import { UsageError } from '../common/errors.js';
import type { StoreBackend } from './store-api.js';
import { migrate } from './migrate.js';

export const isPostgresUrl = (s: string): boolean => /^postgres(ql)?:\/\//i.test(s);

// The setting checked before anything starts (a typo is an error, never LevelDB by surprise).
export function checkStoreSetting(store: string | undefined): void {
  if (store && !isPostgresUrl(store))
    throw new UsageError(`--store takes a postgres:// or postgresql:// URL (or nothing, for LevelDB in the data folder), not ${store}`);
}

// The URL as logs may show it: without its password.
export function shownStore(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

export async function openStore(o: { dataDir: string; store?: string }, log: Logger): Promise<StoreBackend> {
  checkStoreSetting(o.store);
  if (o.store) {
    // Loaded only when asked for: the embedded default never loads the PostgreSQL client.
    const { PgStore } = await import('./pg-store.js');
    return PgStore.open(o.store, log);
  }
  await privateDir(o.dataDir);
  return migrate(o.dataDir, log);
}
