// Opens the store in `dir` and brings an older layout up to date, in place. Schema 2 added namespaces: the data of
// a store from before them is the default namespace's as it is (bare names are default's names, see
// common/namespace.ts), so the migration records that namespace and the schema. A copy of the LevelDB
// folder is taken first, inside it (LevelDB ignores a folder it did not make), while the store is closed.
import { cp, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errText, type Logger } from '../common/log.js';
import { Store } from './store.js';
import { Tenancy } from './tenancy.js';

export const SCHEMA = 2;
export const BACKUP_PREFIX = 'backup-before-schema-';

export async function migrate(dir: string, log: Logger): Promise<Store> {
  let store = new Store(dir);
  await store.open();
  const from = await store.schema();
  if (from >= SCHEMA) return store;
  if (!(await store.isEmpty())) {
    await store.close();
    const to = join(dir, `${BACKUP_PREFIX}${SCHEMA}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    const entries = (await readdir(dir)).filter((e) => !e.startsWith(BACKUP_PREFIX));
    try {
      for (const e of entries) await cp(join(dir, e), join(to, e), { recursive: true, errorOnExist: true });
    } catch (e) {
      throw new Error(`could not copy ${dir} to ${to} before migrating it: ${errText(e)}`);
    }
    log.info({ from, to: SCHEMA, backup: to }, 'store copied before migration');
    store = new Store(dir); // a closed LevelDB's sublevels do not reopen with it
    await store.open();
  }
  await new Tenancy(store.tenancy).ensureDefault();
  await store.setSchema(SCHEMA);
  log.info({ from, to: SCHEMA }, 'store migrated');
  return store;
}
