// The rules of API leases (db/api-lease.ts): an adopter takes the calls of APIs whose lease lapsed, never
// those of an API whose lease runs, and only while its own runs; an API back after its calls were taken
// learns it.
import { describe, expect, it } from 'vitest';
import type { Call } from '../common/model.js';
import { adoption, live, renewed, type ApiLease } from './api-lease.js';

const call = (callNum: number, api?: string, status: Call['status'] = 'PENDING'): Call => ({
  callNum,
  funcName: 'fn',
  params: {},
  status,
  result: '',
  attempts: 0,
  createdAt: new Date(0).toISOString(),
  ...(api ? { api } : {}),
});

describe('API leases', () => {
  it('renews a lease for leaseMs from now, and gives it up on release', () => {
    expect(renewed(null, { id: 'a', leaseMs: 5000 }, 1000)).toEqual({ next: { id: 'a', until: 6000 }, held: true, lost: false });
    expect(renewed({ id: 'a', until: 6000 }, { id: 'a', leaseMs: 5000, release: true }, 2000)).toEqual({ held: false, lost: false });
  });

  it("never gives one id's running lease to another process, nor gives it up for it", () => {
    const had = { id: 'a', token: 'p1', until: 6000 };
    expect(renewed(had, { id: 'a', token: 'p2', leaseMs: 5000 }, 2000)).toEqual({ keep: true, held: false, lost: false });
    expect(renewed(had, { id: 'a', token: 'p2', leaseMs: 5000, release: true }, 2000)).toEqual({ keep: true, held: false, lost: false });
    // Once it lapsed, the id is free again (the first process is gone, or was cut off too long).
    expect(renewed(had, { id: 'a', token: 'p2', leaseMs: 5000 }, 7000)).toMatchObject({ next: { token: 'p2', until: 12000 }, held: true });
  });

  it('tells an API that comes back after its lease was taken over that it lost its calls', () => {
    const r = renewed({ id: 'a', until: 6000, adoptedBy: 'b' }, { id: 'a', leaseMs: 5000 }, 9000);
    expect(r).toEqual({ next: { id: 'a', until: 14000 }, held: true, lost: true });
    expect(live(r.next!, 9000)).toBe(true); // a fresh lease: its new calls are its own again
  });

  it("adopts the calls of a lapsed API (and those of no API), never a live API's", () => {
    const leases: ApiLease[] = [
      { id: 'a', until: 5000 }, // lapsed at 6000
      { id: 'b', until: 10_000 },
      { id: 'c', until: 10_000 },
    ];
    const open = [call(1, 'a'), call(2, 'b', 'RUNNING'), call(3, 'c'), call(4), call(5, 'gone', 'RUNNING')];
    const r = adoption(leases, open, 'b', 6000);
    expect(r.calls.map((c) => [c.callNum, c.api, c.status])).toEqual([
      [1, 'b', 'PENDING'],
      [4, 'b', 'PENDING'],
      [5, 'b', 'RUNNING'],
    ]);
    expect(r.leases).toEqual([{ id: 'a', until: 5000, adoptedBy: 'b' }]);
  });

  it('adopts nothing while the lease holder runs, nor for an adopter whose own lease lapsed', () => {
    const open = [call(1, 'a'), call(2, 'b')];
    expect(
      adoption(
        [
          { id: 'a', until: 9000 },
          { id: 'b', until: 9000 },
        ],
        open,
        'b',
        6000,
      ),
    ).toEqual({ calls: [], leases: [] });
    expect(
      adoption(
        [
          { id: 'a', until: 5000 },
          { id: 'b', until: 5500 },
        ],
        open,
        'b',
        6000,
      ),
    ).toEqual({ calls: [], leases: [] });
  });

  it("does not adopt twice: a lease taken over is not lapsed again, its calls are the adopter's", () => {
    const first = adoption(
      [
        { id: 'a', until: 5000 },
        { id: 'b', until: 9000 },
        { id: 'c', until: 9000 },
      ],
      [call(1, 'a')],
      'b',
      6000,
    );
    const leases = [...first.leases, { id: 'b', until: 9000 }, { id: 'c', until: 9000 }];
    expect(adoption(leases, first.calls, 'c', 6500)).toEqual({ calls: [], leases: [] });
  });
});
