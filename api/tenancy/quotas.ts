// Each namespace's quotas as the API applies them. Calls per minute: a token bucket per namespace
// holding a minute's worth, refilled continuously; past it a call is refused with 429 and Retry-After
// before anything is stored. Running calls: the scheduler keeps a namespace's further calls queued once
// it has that many in nodes' hands, and lets other namespaces' calls go past them (api/dispatcher.ts).
// A function's settings (memory, CPUs, processes) are held to the namespace's limits at deploy and at
// rollback (fits); its runtime to the namespace's runtimes and isolation (runtimeAllowed), also when a
// private runtime is registered; the deploy handler checks functions and archive bytes (every stored
// version counts) with deployRoom(), the schedules handler the count and spacing of schedules.
// Quotas are read from the DB service and kept for a few seconds: a change applies within that.
import type { DbClient } from '../../db/client.js';
import type { FunctionMeta, FunctionSettings, Quotas as QuotaSet } from '../../common/model.js';
import { namespaceOf } from '../../common/namespace.js';

const FRESH_MS = 3000;
// How close a key's schedule may tick when the namespace sets no scheduleInterval.
export const DEFAULT_SCHEDULE_INTERVAL_S = 60;

export class QuotaExceeded extends Error {
  constructor(
    message: string,
    readonly status: 429 | 413 | 400 | 403,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

// The Docker runtime a runtime's containers run under: its isolation, else the engine's default.
export const isolationOf = (rt: { isolation?: string }): string => rt.isolation ?? 'runc';

export class Quotas {
  private readonly known = new Map<string, { quotas: QuotaSet; at: number; loading?: Promise<QuotaSet> }>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly db: Pick<DbClient, 'request'>) {}

  // A namespace's quotas, as last read (read again when older than a few seconds; a failed read keeps
  // the last known ones, or none).
  async of(namespace: string): Promise<QuotaSet> {
    const k = this.known.get(namespace);
    if (k && Date.now() - k.at < FRESH_MS) return k.quotas;
    if (k?.loading) return k.quotas;
    const loading = this.db
      .request('getNamespace', { name: namespace })
      .then((ns) => ns?.quotas ?? {})
      .catch(() => k?.quotas ?? {});
    this.known.set(namespace, { quotas: k?.quotas ?? {}, at: k?.at ?? 0, loading });
    const quotas = await loading;
    this.known.set(namespace, { quotas, at: Date.now() });
    return quotas;
  }

  // What the scheduler reads, without waiting: the namespace's running limit as last read.
  runningLimit(qualifiedName: string): number | undefined {
    return this.known.get(namespaceOf(qualifiedName))?.quotas.running;
  }

  // One call of the namespace is about to be made: refused past its calls per minute.
  async admit(namespace: string, now = Date.now()): Promise<void> {
    const perMinute = (await this.of(namespace)).perMinute;
    if (perMinute === undefined) return;
    const b = this.buckets.get(namespace) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) / 60_000) * perMinute);
    b.at = now;
    this.buckets.set(namespace, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return;
    }
    const waitS = Math.max(1, Math.ceil(((1 - b.tokens) / perMinute) * 60));
    throw new QuotaExceeded(`namespace ${namespace} makes at most ${perMinute} calls a minute`, 429, waitS);
  }

  // Whether a function's settings stay within what the namespace lets one function ask for (400 past it).
  async fits(namespace: string, s: Pick<FunctionSettings, 'memory' | 'cpus' | 'pids'>): Promise<void> {
    const q = await this.of(namespace);
    const over = (what: string, max: number | undefined, asked: number, unit = ''): void => {
      if (max !== undefined && asked > max)
        throw new QuotaExceeded(
          `namespace ${namespace} lets a function ask for at most ${max}${unit} ${what} (asked: ${asked}${unit})`,
          400,
        );
    };
    over('of memory', q.memory, s.memory, ' MiB');
    over('CPUs', q.cpus, s.cpus);
    over('processes (pids)', q.pids, s.pids);
  }

  // Whether the namespace's functions may use a runtime (`name` as the namespace names it): deploying,
  // rolling back, or registering it as a private runtime (403 when its rules say no).
  async runtimeAllowed(namespace: string, rt: { name: string; isolation?: string }, doing: 'deploy' | 'register'): Promise<void> {
    const q = await this.of(namespace);
    if (q.runtimes && !q.runtimes.includes(rt.name))
      throw new QuotaExceeded(
        `namespace ${namespace} may ${doing === 'deploy' ? 'use' : 'register'} only the runtimes ${q.runtimes.join(', ') || '(none)'}, not ${rt.name}`,
        403,
      );
    if (q.isolation && !q.isolation.includes(isolationOf(rt)))
      throw new QuotaExceeded(
        `namespace ${namespace} runs its functions only under ${q.isolation.join(' or ')}: runtime ${rt.name} runs under ${isolationOf(rt)}${
          doing === 'register' ? ' (set its "isolation")' : ''
        }`,
        403,
      );
  }

  // Whether a new version fits the namespace's functions and archive bytes. `stored`: every stored version
  // of the namespace's functions, read only when a quota counts them.
  async deployRoom(namespace: string, next: { functionName: string; size: number }, stored: () => Promise<FunctionMeta[]>): Promise<void> {
    const q = await this.of(namespace);
    if (q.functions === undefined && q.archiveBytes === undefined) return;
    const versions = await stored();
    const names = new Set(versions.map((v) => v.functionName));
    if (q.functions !== undefined && !names.has(next.functionName) && names.size + 1 > q.functions)
      throw new QuotaExceeded(`namespace ${namespace} holds at most ${q.functions} functions`, 403);
    const bytes = versions.reduce((sum, v) => sum + v.size, 0) + next.size;
    if (q.archiveBytes !== undefined && bytes > q.archiveBytes)
      throw new QuotaExceeded(
        `namespace ${namespace} holds at most ${q.archiveBytes} bytes of archives, every stored version counted (with this one: ${bytes}); DELETE /functions/NAME/versions/N removes an old version`,
        413,
      );
  }

  // Whether one more schedule fits: the namespace's count of schedules (403), and its ticks' spacing
  // (`gapS`: the closest two ticks of its cron; 400), which the operator is not held to.
  async scheduleRoom(namespace: string, gapS: number, operator: boolean, count: () => Promise<number>): Promise<void> {
    const q = await this.of(namespace);
    const interval = q.scheduleInterval ?? DEFAULT_SCHEDULE_INTERVAL_S;
    if (!operator && gapS < interval)
      throw new QuotaExceeded(
        `invalid schedule: cron: its ticks come ${gapS} s apart at the closest; namespace ${namespace} lets a schedule tick at most once every ${interval} s`,
        400,
      );
    if (q.schedules !== undefined && (await count()) + 1 > q.schedules)
      throw new QuotaExceeded(`namespace ${namespace} holds at most ${q.schedules} schedules`, 403);
  }
}
