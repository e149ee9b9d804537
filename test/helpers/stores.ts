// The stores a conformance test runs on: the embedded LevelDB (a temp folder) and PostgreSQL (a fresh
// database per test on one throwaway cluster per test file, test/helpers/postgres.ts). A test file runs its
// tests once per store with describe.each(stores()), so every guarantee it checks holds on both.
import { randomBytes } from 'node:crypto';
import { afterAll } from 'vitest';
import { FAST_PG, PgCluster } from './postgres.js';

export interface StoreKind {
  name: 'leveldb' | 'postgres';
  store(): Promise<string | undefined>; // a new, empty store: its URL (undefined: LevelDB in the test's folder)
}

let cluster: Promise<PgCluster> | undefined;

// The PostgreSQL cluster of this test file, started on first use and stopped after its last test.
export function testCluster(): Promise<PgCluster> {
  cluster ??= PgCluster.start({ settings: FAST_PG });
  return cluster;
}

export async function newPgDatabase(): Promise<string> {
  return (await testCluster()).database(`t_${randomBytes(6).toString('hex')}`);
}

// For a test file that makes PostgreSQL databases (newPgDatabase): its cluster is stopped after its last test.
export function usePostgres(): () => Promise<string> {
  afterAll(async () => {
    const c = cluster;
    cluster = undefined;
    if (c) await (await c).stop();
  });
  return newPgDatabase;
}

export function stores(): StoreKind[] {
  usePostgres();
  return [
    { name: 'leveldb', store: () => Promise.resolve(undefined) },
    { name: 'postgres', store: newPgDatabase },
  ];
}
