// Migration of a store written before namespaces (schema 0): its data stays where it is and reads as the
// default namespace's, a copy of the folder is taken first, and a second start changes nothing.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { BACKUP_PREFIX, migrate, SCHEMA } from './migrate.js';
import { Store } from './store.js';
import { Tenancy } from './tenancy.js';

const log = pino({ level: 'silent' });
let dir: string;
afterEach(async () => rm(dir, { recursive: true, force: true }));

describe('migrate', () => {
  it('keeps an old store in place as the default namespace, after copying it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'zfaas-migrate-'));
    const old = new Store(dir);
    await old.open(); // as a store from before schemas: no schema mark, no namespace
    await old.putRuntime({ name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
    await old.close();

    const s = await migrate(dir, log);
    expect(await s.schema()).toBe(SCHEMA);
    expect(await s.getRuntime('py')).toMatchObject({ image: 'img' });
    expect(await new Tenancy(s.tenancy).getNamespace('default')).toMatchObject({ name: 'default', quotas: {} });
    const backups = (await readdir(dir)).filter((e) => e.startsWith(BACKUP_PREFIX));
    expect(backups).toHaveLength(1);
    // The copy opens as the store it was, before the migration.
    const copy = new Store(join(dir, backups[0]!));
    await copy.open();
    expect(await copy.getRuntime('py')).toMatchObject({ image: 'img' });
    expect(await copy.schema()).toBe(0);
    await copy.close();
    await s.close();

    const again = await migrate(dir, log);
    expect((await readdir(dir)).filter((e) => e.startsWith(BACKUP_PREFIX))).toHaveLength(1);
    await again.close();
  });

  it('takes no copy of a new, empty store', async () => {
    dir = await mkdtemp(join(tmpdir(), 'zfaas-migrate-'));
    const s = await migrate(dir, log);
    expect(await s.schema()).toBe(SCHEMA);
    expect((await readdir(dir)).filter((e) => e.startsWith(BACKUP_PREFIX))).toEqual([]);
    await s.close();
  });
});
