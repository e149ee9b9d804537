// Quotas with a fake DB: calls per minute refused past the bucket (429, with how long to wait), deploys
// refused past functions, bytes (every stored version counted), memory, CPUs or processes, runtimes and
// isolation held to the namespace's lists, schedules to their count and spacing, and a change of quota
// read again after a few seconds.
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

  it('refuses deploys past functions and bytes, counting every stored version', async () => {
    const q = new Quotas(fakeDb({ functions: 2, archiveBytes: 100 }).db);
    const stored = [fn('team~a', 30), fn('team~a', 10), fn('team~b', 40)]; // a has two versions
    const have = async () => stored;
    await expect(q.deployRoom('team', { functionName: 'team~a', size: 20 }, have)).resolves.toBeUndefined();
    await expect(q.deployRoom('team', { functionName: 'team~c', size: 1 }, have)).rejects.toMatchObject({ status: 403 });
    const bytes = await q.deployRoom('team', { functionName: 'team~a', size: 21 }, have).catch((e: unknown) => e);
    expect(bytes).toMatchObject({ status: 413 });
    expect((bytes as Error).message).toMatch(/every stored version counted \(with this one: 101\)/);
  });

  it("holds a function's memory, CPUs and processes to the namespace's limits", async () => {
    const q = new Quotas(fakeDb({ memory: 128, cpus: 0.5, pids: 64 }).db);
    await expect(q.fits('team', { memory: 128, cpus: 0.5, pids: 64 })).resolves.toBeUndefined();
    for (const [s, what] of [
      [{ memory: 256, cpus: 0.5, pids: 64 }, /at most 128 MiB of memory \(asked: 256 MiB\)/],
      [{ memory: 64, cpus: 1, pids: 64 }, /at most 0.5 CPUs \(asked: 1\)/],
      [{ memory: 64, cpus: 0.5, pids: 128 }, /at most 64 processes \(pids\) \(asked: 128\)/],
    ] as const) {
      const e = await q.fits('team', s).catch((x: unknown) => x);
      expect(e).toMatchObject({ status: 400 });
      expect((e as Error).message).toMatch(what);
    }
  });

  it('keeps a namespace to its runtimes and its isolation', async () => {
    const q = new Quotas(fakeDb({ runtimes: ['node', 'safe'], isolation: ['runsc', 'kata-runtime'] }).db);
    await expect(q.runtimeAllowed('team', { name: 'safe', isolation: 'runsc' }, 'deploy')).resolves.toBeUndefined();
    await expect(q.runtimeAllowed('team', { name: 'python', isolation: 'runsc' }, 'deploy')).rejects.toMatchObject({
      status: 403,
      message: expect.stringMatching(/may use only the runtimes node, safe, not python/),
    });
    await expect(q.runtimeAllowed('team', { name: 'node' }, 'deploy')).rejects.toMatchObject({
      status: 403,
      message: expect.stringMatching(/only under runsc or kata-runtime: runtime node runs under runc/),
    });
    await expect(q.runtimeAllowed('team', { name: 'safe' }, 'register')).rejects.toMatchObject({
      message: expect.stringMatching(/set its "isolation"/),
    });
    const open = new Quotas(fakeDb({}).db);
    await expect(open.runtimeAllowed('team', { name: 'anything' }, 'register')).resolves.toBeUndefined();
  });

  it('holds schedules to their count, and a key’s to a minute apart unless the namespace says otherwise', async () => {
    const q = new Quotas(fakeDb({ schedules: 2 }).db);
    await expect(q.scheduleRoom('team', 60, false, async () => 1)).resolves.toBeUndefined();
    await expect(q.scheduleRoom('team', 60, false, async () => 2)).rejects.toMatchObject({ status: 403 });
    await expect(q.scheduleRoom('team', 59, false, async () => 0)).rejects.toMatchObject({
      status: 400,
      message: expect.stringMatching(/59 s apart .* at most once every 60 s/),
    });
    await expect(q.scheduleRoom('team', 1, true, async () => 0)).resolves.toBeUndefined(); // the operator
    const fast = new Quotas(fakeDb({ scheduleInterval: 5 }).db);
    await expect(fast.scheduleRoom('team', 5, false, async () => 100)).resolves.toBeUndefined();
    await expect(fast.scheduleRoom('team', 4, false, async () => 0)).rejects.toMatchObject({ status: 400 });
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
