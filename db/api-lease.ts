// Several APIs on one store (PostgreSQL): the rules of their leases, the same in every store. Each API
// process renews a lease about every second; a call records which API dispatches it (`api`, set when it is
// accepted). Once an API's lease lapses, another API adopts its unfinished calls in one atomic store
// operation, and the lapsed lease is marked as taken over, so that the API, should it come back, learns
// that the calls it had are no longer its own (`lost`). Pure functions: a store only reads and writes.
import type { Call } from '../common/model.js';

export interface ApiLease {
  id: string;
  token?: string; // the process holding it (two processes given the same id never both hold it)
  until: number; // ms since the epoch
  adoptedBy?: string; // it lapsed and that API took its calls
}

export interface LeaseAsk {
  id: string;
  token?: string;
  leaseMs: number;
  release?: boolean;
}

// What a renewal does: the lease to store (none: given up, its row goes; `keep`: refused, it stays as it
// is), and whether the API's calls were taken over while it was away. Another process's running lease of
// the same id is not taken (`held` false): two APIs given one id would both dispatch its calls.
export function renewed(had: ApiLease | null, r: LeaseAsk, now: number): { next?: ApiLease; keep?: true; held: boolean; lost: boolean } {
  if (had && live(had, now) && had.token !== r.token) return { keep: true, held: false, lost: false };
  const lost = had?.adoptedBy !== undefined;
  if (r.release) return { held: false, lost };
  return { next: { id: r.id, ...(r.token ? { token: r.token } : {}), until: now + r.leaseMs }, held: true, lost };
}

// A lease taken over a day ago: its API, were it to come back now, would have restarted long since (it
// then has another id by default); the record goes.
export const STALE_MS = 24 * 3600_000;
export const stale = (l: ApiLease, now: number): boolean => l.adoptedBy !== undefined && l.until < now - STALE_MS;

// A lease that runs: not lapsed, not taken over.
export const live = (l: ApiLease, now: number): boolean => l.adoptedBy === undefined && l.until > now;

// What an adoption takes: nothing unless the adopter's own lease runs; else every unfinished call whose API
// holds no running lease (lapsed, given up, or none recorded), and the lapsed leases, marked taken over.
export function adoption(leases: ApiLease[], open: Call[], adopter: string, now: number): { calls: Call[]; leases: ApiLease[] } {
  const running = new Set(leases.filter((l) => live(l, now)).map((l) => l.id));
  if (!running.has(adopter)) return { calls: [], leases: [] };
  const calls = open.filter((c) => c.api === undefined || !running.has(c.api)).map((c) => ({ ...c, api: adopter }));
  const taken = leases.filter((l) => l.adoptedBy === undefined && !running.has(l.id)).map((l) => ({ ...l, adoptedBy: adopter }));
  return { calls, leases: taken };
}
