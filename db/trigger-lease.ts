// The rules of a trigger's record, the same in every store: a trigger written again keeps its lease and
// stats, and a lease goes to one holder at a time (another holder's runs until it lapses).
import type { DbRequest, Trigger } from '../protocol/db.js';

// As the DB service parsed it (its defaults filled in).
export type LeaseRequest = Extract<DbRequest, { msgType: 'leaseTrigger' }>['content'];

// The trigger as stored after a put: what was sent, with the lease and stats it had.
export function keptOnPut(t: Omit<Trigger, 'lease' | 'stats'>, had: Trigger | null | undefined): Trigger {
  return { ...t, ...(had?.lease ? { lease: had.lease } : {}), ...(had?.stats ? { stats: had.stats } : {}) };
}

// What a lease request does to the trigger: `next` to store (none: refused, another holder's lease runs).
export function leased(t: Trigger, r: LeaseRequest, now: number): { next?: Trigger; held: boolean } {
  if (t.lease && t.lease.holder !== r.holder && Date.parse(t.lease.until) > now) return { held: false };
  const { lease: _lease, ...rest } = t;
  const next: Trigger = {
    ...rest,
    ...(r.release ? {} : { lease: { holder: r.holder, until: new Date(now + r.leaseMs).toISOString() } }),
    ...(r.stats ? { stats: r.stats } : {}),
  };
  return { next, held: !r.release };
}
