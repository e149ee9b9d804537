// Quotas with a fake DB: calls per minute refused past the bucket (429, with how long to wait), deploys
// refused past functions, bytes or memory, and a change of quota read again after a few seconds.
import { describe, expect, it } from 'vitest';
import type { FunctionMeta, Namespace } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { QuotaExceeded, Quotas } from './quotas.js';

function fakeDb(quotas: Namespace['quotas']): { db: DbClient; set(q: Namespace['quotas']): void; reads: () => number } {
  let q = quotas;
  let reads = 0;
  const db = {
    request: async (msgType: string) => {
      expect(msgType).toBe('getNamespace');
      reads++;
      return { name: 'team', createdAt: '', quotas: q };
    },
  } as unknown as DbClient;
  return { db, set: (n) => (q = n), reads: () => reads };
}

const fn = (functionName: string, size: number) => ({ functionName, size }) as FunctionMeta;

describe('Quotas', () => {
  it('refuses calls past the minute with a Retry-After, and refills', async () => {
    const q = new Quotas(fakeDb({ perMinute: 2 }).db);
    const t = Date.now();
    await q.admit('team', t);
    await q.admit('team', t);
    const e = await q.admit('team', t).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(QuotaExceeded);
    expect((e as QuotaExceeded).status).toBe(429);
    expect((e as QuotaExceeded).retryAfterS).toBe(30);
    await q.admit('team', t + 30_000); // half a minute: one more
  });

  it('refuses deploys past memory, functions and bytes, counting a redeploy once', async () => {
    const q = new Quotas(fakeDb({ memory: 128, functions: 2, archiveBytes: 100 }).db);
    const have = [fn('team~a', 40), fn('team~b', 40)];
    await expect(q.deployRoom('team', { functionName: 'team~a', size: 50, memory: 128 }, async () => have)).resolves.toBeUndefined();
    await expect(q.deployRoom('team', { functionName: 'team~a', size: 10, memory: 256 }, async () => have)).rejects.toMatchObject({
      status: 400,
    });
    await expect(q.deployRoom('team', { functionName: 'team~c', size: 1, memory: 64 }, async () => have)).rejects.toMatchObject({
      status: 403,
    });
    await expect(q.deployRoom('team', { functionName: 'team~a', size: 61, memory: 64 }, async () => have)).rejects.toMatchObject({
      status: 413,
    });
  });

  it('gives the scheduler the running limit it read, and reads again when stale', async () => {
    const f = fakeDb({ running: 3 });
    const q = new Quotas(f.db);
    expect(q.runningLimit('team~x')).toBeUndefined(); // not read yet: no limit assumed
    await q.of('team');
    expect(q.runningLimit('team~x')).toBe(3);
    f.set({ running: 1 });
    await q.of('team');
    expect(f.reads()).toBe(1); // fresh for a few seconds
  });
});
