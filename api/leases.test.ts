// This API's lease on a shared store, against a fake DB service and clock: it dispatches only while its
// lease surely holds, counted from when it sent the renewal, and says so when a renewal holds again.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ApiLeases } from './leases.js';

const log = pino({ level: 'silent' });
const LEASE = 5_000;

// A DB service on PostgreSQL whose lease answers can be held back (the API is cut off from it).
function fakeDb(engine: 'postgres' | 'leveldb') {
  const state = { cutOff: false, held: true };
  const db = {
    request: async (msgType: string): Promise<never> => {
      if (state.cutOff) throw new Error('db service did not answer');
      const answers: Record<string, unknown> = {
        ping: { engine },
        leaseApi: { held: state.held, lost: false },
        adoptCalls: { calls: [], from: [] },
      };
      return answers[msgType] as never;
    },
  };
  return { db, state };
}

describe('ApiLeases', () => {
  it('always dispatches when alone (LevelDB)', async () => {
    let now = 0;
    const { db } = fakeDb('leveldb');
    const l = new ApiLeases({ db, log, onAdopted: () => undefined, onLost: () => undefined, now: () => now, beatMs: 3_600_000 });
    await l.start();
    now += 10 * LEASE;
    expect(l.current).toBeUndefined();
    expect(l.mayDispatch).toBe(true);
    await l.stop();
  });

  it('stops dispatching before its lease may lapse when it cannot renew, and goes on once it renews', async () => {
    let now = 1_000_000;
    let renewed = 0;
    const { db, state } = fakeDb('postgres');
    const l = new ApiLeases({
      db,
      log,
      leaseMs: LEASE,
      beatMs: 3_600_000, // beats are driven by hand below
      onAdopted: () => undefined,
      onLost: () => undefined,
      onRenewed: () => renewed++,
      now: () => now,
    });
    await l.start();
    expect(l.current).toBeDefined();
    expect(l.mayDispatch).toBe(true);
    const beat = (): Promise<void> => (l as unknown as { beat(): Promise<void> }).beat();
    state.cutOff = true;
    now += 2_000;
    await beat(); // not renewed
    expect(l.mayDispatch).toBe(true); // 2 s into a 5 s lease
    now += 2_500; // 4.5 s: within a second of the lease's end as the store may count it
    await beat();
    expect(l.mayDispatch).toBe(false);
    expect(renewed).toBe(0);
    state.cutOff = false;
    await beat();
    expect(l.mayDispatch).toBe(true);
    expect(renewed).toBe(1);
    now += 1_000;
    await beat(); // renewed while it held: nothing to say
    expect(renewed).toBe(1);
    await l.stop();
  });
});
