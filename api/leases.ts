// This API process among others on one store (PostgreSQL): its id and its lease, renewed every second
// (one write per API, not per call), and the adoption of the calls of APIs whose lease lapsed, tried on
// each beat. On LevelDB (one DB service, one API) none of this runs: the store is asked once which engine
// it is, and nothing more. The rules are db/api-lease.ts; the calls are handed to api/calls.ts.
//
// An API that cannot renew its lease stops dispatching before another API may adopt its calls: it counts
// its lease from the moment it sent the last renewal that held (the store counts from a later moment, when
// it got it), less a margin for a dispatch on its way, so it never dispatches a call another has taken.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { errText, type Logger } from '../common/log.js';
import type { Call } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import { UsageError } from '../common/errors.js';

export const API_LEASE_MS = 5_000; // an API silent this long is taken over
export const API_BEAT_MS = 1_000;
const DISPATCH_MARGIN_MS = 1_000; // stop dispatching this long before the lease may lapse

export interface ApiLeasesOptions {
  db: Pick<DbClient, 'request'>;
  log: Logger;
  id?: string;
  leaseMs?: number;
  beatMs?: number;
  onAdopted(calls: Call[], from: string[]): void; // calls now this API's to dispatch
  onLost(): void; // this API's lease lapsed and its calls went to another: what it queued is not its own
  onRenewed?(): void; // the lease held again after it had been in doubt: dispatching may go on
  now?(): number; // the clock (tests)
}

export class ApiLeases {
  readonly id: string;
  private active = false;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly leaseMs: number;
  private readonly token = randomBytes(8).toString('hex'); // this process, should another be given the same id
  private heldUntil = 0; // this API may dispatch until then (its clock), on a shared store

  constructor(private readonly o: ApiLeasesOptions) {
    this.id =
      o.id ??
      `api-${
        hostname()
          .replace(/[^A-Za-z0-9_-]/g, '')
          .slice(0, 40) || 'host'
      }-${randomBytes(4).toString('hex')}`;
    this.leaseMs = o.leaseMs ?? API_LEASE_MS;
  }

  // This API's id while it shares the store with others (its calls carry it); undefined on LevelDB.
  get current(): string | undefined {
    return this.active ? this.id : undefined;
  }

  // Whether this API may hand calls to nodes now: always when alone; on a shared store, while its lease
  // surely holds.
  get mayDispatch(): boolean {
    return !this.active || this.now() < this.heldUntil;
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  // A renewal sent at `sentAt` held: the lease runs at least leaseMs from then.
  private held(sentAt: number): void {
    const doubted = !this.mayDispatch;
    this.heldUntil = sentAt + this.leaseMs - Math.min(DISPATCH_MARGIN_MS, this.leaseMs / 2);
    if (doubted) this.o.onRenewed?.();
  }

  // Asks the store's engine (within waitMs; a DB service that answers later is asked again in the
  // background) and, on PostgreSQL, takes the lease before the API takes any call.
  async start(waitMs = 15_000, background = false): Promise<void> {
    const end = Date.now() + waitMs;
    for (;;) {
      try {
        await this.learn();
        return;
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof UsageError) {
          if (!background) throw e; // the API does not start
          this.o.log.error({ err: errText(e) }, 'this API runs alone');
          return;
        }
        if (Date.now() > end) {
          this.o.log.warn({ err: errText(e) }, 'the DB service does not answer yet: this API runs alone until it does');
          this.timer = setTimeout(() => void this.start(Number.MAX_SAFE_INTEGER, true), API_BEAT_MS);
          return;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async learn(): Promise<void> {
    const { engine } = await this.o.db.request('ping', {});
    if (engine !== 'postgres') return;
    const sentAt = this.now();
    const { held } = await this.o.db.request('leaseApi', { id: this.id, token: this.token, leaseMs: this.leaseMs });
    if (!held)
      throw new UsageError(
        `another API process holds the id ${this.id} (its lease runs): give each API its own --api-id, or none (one is made)`,
      );
    this.heldUntil = sentAt + this.leaseMs - Math.min(DISPATCH_MARGIN_MS, this.leaseMs / 2);
    this.active = true;
    this.o.log.info(
      { api: this.id, leaseMs: this.leaseMs },
      'shared store: this API holds a lease and takes over the calls of APIs that stop',
    );
    this.schedule();
  }

  private schedule(): void {
    if (!this.stopped) this.timer = setTimeout(() => void this.beat().finally(() => this.schedule()), this.o.beatMs ?? API_BEAT_MS);
  }

  private async beat(): Promise<void> {
    try {
      const sentAt = this.now();
      const { held, lost } = await this.o.db.request('leaseApi', { id: this.id, token: this.token, leaseMs: this.leaseMs });
      if (!held) {
        this.o.log.error(
          { api: this.id },
          'another API process took this API id while its lease had lapsed: this one dispatches nothing more',
        );
        this.o.onLost();
        return;
      }
      if (lost) {
        this.o.log.error({ api: this.id }, 'this API lost its lease (the DB service was out of reach): its calls went to another API');
        this.o.onLost();
      }
      this.held(sentAt);
      const { calls, from } = await this.o.db.request('adoptCalls', { adopter: this.id });
      if (calls.length > 0 || from.length > 0) {
        this.o.log.warn({ from, calls: calls.length }, 'took over the calls of APIs whose lease lapsed');
        this.o.onAdopted(calls, from);
      }
    } catch (e) {
      this.o.log.warn({ err: errText(e) }, 'lease not renewed');
    }
  }

  // Gives the lease up, so that another API takes this one's unfinished calls at once.
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.active) return;
    this.active = false;
    await this.o.db.request('leaseApi', { id: this.id, token: this.token, leaseMs: this.leaseMs, release: true }).catch(() => undefined);
  }
}
