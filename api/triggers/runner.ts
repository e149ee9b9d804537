// Which triggers this API process consumes. Every `syncMs` it reads the triggers and, for each, takes or
// renews its lease in the DB service (leaseTrigger, written in the service's one write queue, so that two
// APIs never hold one trigger at once), writing its consumer's stats with it. It runs a TriggerDelivery
// for each trigger it holds and stops the ones it no longer holds, that were deleted, or whose lease it
// could not renew (another API takes over once the lease lapses; the messages its calls were made for
// come again from the broker and find those calls by their keys). A trigger's password is read from the
// namespace's secret when its consumer starts, and kept only in memory.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { UsageError } from '../../common/errors.js';
import { errText, type Logger } from '../../common/log.js';
import { namespaceOf } from '../../common/namespace.js';
import type { DbClient } from '../../db/client.js';
import type { Trigger, TriggerStats } from '../../protocol/db.js';
import { TriggerDelivery, type DeliveryDeps } from './delivery.js';
import { sourceFactory, type SourceFactory } from './source.js';
import type { TriggerAllow } from './allow.js';

export interface TriggerRunnerDeps extends DeliveryDeps {
  db: Pick<DbClient, 'request' | 'requestWithBlobs'>;
  log: Logger;
  syncMs?: number;
  leaseMs?: number;
  factory?: (type: Trigger['type']) => Promise<SourceFactory>; // tests give fakes
  allow?: Pick<TriggerAllow, 'refusal'>; // checked again before each connection
}

// The lease and the sync period from the environment (ZFAAS_TRIGGER_LEASE_MS, ZFAAS_TRIGGER_SYNC_MS): a
// shorter lease lets another API take a trigger over sooner after one died.
export function triggerTimings(env: NodeJS.ProcessEnv): { leaseMs?: number; syncMs?: number } {
  const num = (name: string, min: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > 600_000)
      throw new UsageError(`${name} must be a whole number of ms from ${min} to 600000, not "${v}"`);
    return n;
  };
  const leaseMs = num('ZFAAS_TRIGGER_LEASE_MS', 500);
  const syncMs = num('ZFAAS_TRIGGER_SYNC_MS', 100);
  if (leaseMs !== undefined && syncMs !== undefined && syncMs * 2 > leaseMs)
    throw new UsageError('ZFAAS_TRIGGER_SYNC_MS must be at most half of ZFAAS_TRIGGER_LEASE_MS (the lease is renewed at each sync)');
  return { ...(leaseMs !== undefined ? { leaseMs } : {}), ...(syncMs !== undefined ? { syncMs } : {}) };
}

export class TriggerRunner {
  readonly holder = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly running = new Map<string, TriggerDelivery>();
  // Held triggers that cannot be consumed (their secret is missing): why, shown in their stats.
  private readonly blocked = new Map<string, Omit<TriggerStats, 'at'>>();
  private timer?: NodeJS.Timeout;
  private syncing?: Promise<void>;
  private stopped = false;

  constructor(private readonly d: TriggerRunnerDeps) {}

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      this.sync()
        .catch((e: unknown) => {
          if ((e as { code?: unknown }).code === 'CLOSED') return void this.stop();
          this.d.log.warn({ err: errText(e) }, 'triggers not read');
        })
        .finally(() => {
          if (!this.stopped) (this.timer = setTimeout(tick, this.d.syncMs ?? 2000)).unref();
        });
    };
    tick();
  }

  // Read the triggers now (after one was added, paused or deleted here): resolved once this API applied
  // the change to what it consumes (another API holding the trigger applies it at its next sync).
  poke(): Promise<void> {
    return this.sync().catch((e: unknown) => this.d.log.warn({ err: errText(e) }, 'triggers not read'));
  }

  sync(): Promise<void> {
    // One pass at a time: a pass started meanwhile waits for it, then runs.
    const next = (this.syncing ?? Promise.resolve()).then(() => this.pass());
    this.syncing = next.catch(() => undefined);
    return next;
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    const all = await this.d.db.request('listTriggers', {});
    const seen = new Set<string>();
    for (const t of all) {
      seen.add(t.id);
      const mine = this.running.get(t.id);
      const leaseMs = this.d.leaseMs ?? 10_000;
      try {
        const blocked = this.blocked.get(t.id);
        const stats = mine ? await mine.stats() : blocked ? { ...blocked, at: new Date().toISOString() } : undefined;
        const { trigger, held } = await this.d.db.request('leaseTrigger', {
          funcName: t.funcName,
          id: t.id,
          holder: this.holder,
          leaseMs,
          ...(stats ? { stats } : {}),
        });
        if (!held || !trigger) {
          if (mine) await this.drop(t.id);
          continue;
        }
        if (mine) mine.update(trigger);
        else await this.begin(trigger);
      } catch (e) {
        if ((e as { code?: unknown }).code === 'CLOSED') throw e;
        // Not renewed: stop before the lease lapses, so that two consumers never run at once.
        if (mine) await this.drop(t.id);
        this.d.log.warn({ trigger: t.id, err: errText(e) }, 'trigger lease not renewed');
      }
    }
    for (const id of [...this.running.keys()]) if (!seen.has(id)) await this.drop(id);
    for (const id of [...this.blocked.keys()]) if (!seen.has(id)) this.blocked.delete(id);
  }

  private async begin(t: Trigger): Promise<void> {
    if (this.stopped || this.running.has(t.id)) return;
    let password: string | undefined;
    if (t.auth?.secret) {
      const { data, blobs } = await this.d.db.requestWithBlobs('readSecrets', {
        namespace: namespaceOf(t.funcName),
        names: [t.auth.secret],
      });
      if (data.missing.length > 0) {
        const lastError = `secret ${t.auth.secret} of namespace ${namespaceOf(t.funcName)} is missing: not consumed until it exists`;
        if (!this.blocked.has(t.id)) this.d.log.warn({ trigger: t.id, secret: t.auth.secret }, "trigger's secret is missing; not consumed");
        this.blocked.set(t.id, { ...(t.stats ?? { inFlight: 0, delivered: 0, failed: 0, rejected: [] }), connected: false, lastError });
        return;
      }
      this.blocked.delete(t.id);
      password = blobs[0]?.toString('utf8');
    }
    const base = await (this.d.factory ?? sourceFactory)(t.type);
    const allow = this.d.allow;
    // The list may have changed, or the host resolve elsewhere now: checked before each connection.
    const factory: SourceFactory = allow
      ? (spec) => {
          const src = base(spec);
          return {
            ...src,
            start: async () => {
              const refused = await allow.refusal(t.type, t.url);
              if (refused) throw new Error(refused);
              await src.start();
            },
          };
        }
      : base;
    const delivery = new TriggerDelivery(t, factory, password, this.d);
    this.running.set(t.id, delivery);
    delivery.start();
    this.d.log.info({ trigger: t.id, funcName: t.funcName, type: t.type, source: t.source }, 'trigger consumed');
  }

  private async drop(id: string): Promise<void> {
    const d = this.running.get(id);
    this.running.delete(id);
    await d?.close();
  }

  // Stops every consumer and gives their leases up (another API takes them at once).
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const held = [...this.running.values()];
    this.running.clear();
    await Promise.all(
      held.map(async (d) => {
        const stats = await d.stats();
        await d.close();
        const release = { funcName: d.funcName, id: d.id, holder: this.holder, leaseMs: 100, stats, release: true };
        await this.d.db.request('leaseTrigger', release).catch(() => undefined); // else it lapses
      }),
    );
  }

  // The triggers this process consumes (for tests and the log).
  held(): string[] {
    return [...this.running.keys()];
  }
}
