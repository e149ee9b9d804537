// Old versions go one by one, the current one never; an archive goes with the last version that holds it,
// and stays while another version (of any function) still does. Through the DB service, on each store (LevelDB, PostgreSQL).
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DbUnderTest } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { FunctionSettings } from '../common/model.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-versions-', await kind.store());
});
afterEach(async () => {
  await t.remove();
});

const settings = {
  timeout: 30,
  memory: 128,
  cpus: 1,
  pids: 128,
  network: false,
  retry: true,
  retries: 0,
  retryBackoff: 1000,
  env: {},
  public: false,
  secrets: [],
} as FunctionSettings;

async function deploy(name: string, content: string): Promise<string> {
  const blob = Buffer.from(content);
  const digest = createHash('sha256').update(blob).digest('hex');
  await t.remote.request('putArchive', { digest }, [blob]);
  await t.remote.request('addFunction', { functionName: name, runtimeName: 'node', digest, size: blob.length, format: 'tar.gz', settings });
  return digest;
}

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('versions and their archives', () => {
    it('removes an old version and its archive, never the current version, and keeps an archive another version holds', async () => {
      await t.remote.request('putRuntime', { name: 'node', image: 'zfaas/node', path: '/ws', dependencies: '', run: 'true' });
      const one = await deploy('f', 'version one');
      const shared = await deploy('f', 'shared code');
      await deploy('g', 'shared code'); // g's current version holds the same archive as f's second
      await deploy('f', 'version three');
      expect(await t.remote.request('deleteVersion', { name: 'f', version: 3 })).toEqual({ deleted: false, current: true });
      expect(await t.remote.request('deleteVersion', { name: 'f', version: 1 })).toEqual({ deleted: true });
      expect(await t.remote.request('getArchive', { digest: one })).toBeNull();
      expect(await t.remote.request('deleteVersion', { name: 'f', version: 1 })).toEqual({ deleted: false });
      expect(await t.remote.request('deleteVersion', { name: 'f', version: 2 })).toEqual({ deleted: true });
      expect(await t.remote.request('getArchive', { digest: shared })).not.toBeNull(); // g still holds it
      expect((await t.remote.request('listVersions', { name: 'f' })).map((v) => v.version)).toEqual([3]);
      // A function's deletion takes the archives only it held.
      expect(await t.remote.request('deleteFunction', { name: 'g' })).toEqual({ deleted: true });
      expect(await t.remote.request('getArchive', { digest: shared })).toBeNull();
    });
  });
});
