// Each namespace's quotas as the API applies them. Calls per minute: a token bucket per namespace
// holding a minute's worth, refilled continuously; past it a call is refused with 429 and Retry-After
// before anything is stored. Running calls: the scheduler keeps a namespace's further calls queued once
// it has that many in nodes' hands, and lets other namespaces' calls go past them (api/scheduler.ts).
// Deploy limits (functions, archive bytes, memory) are checked by the deploy handler with deployRoom().
// Quotas are read from the DB service and kept for a few seconds: a change applies within that.
import type { DbClient } from '../../db/client.js';
import type { FunctionMeta, Quotas as QuotaSet } from '../../common/model.js';
import { namespaceOf } from '../../common/namespace.js';

const FRESH_MS = 3000;

export class QuotaExceeded extends Error {
  constructor(
    message: string,
    readonly status: 429 | 413 | 400 | 403,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export class Quotas {
  private readonly known = new Map<string, { quotas: QuotaSet; at: number; loading?: Promise<QuotaSet> }>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly db: DbClient) {}

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

  // Whether a deploy fits the namespace's quotas. Its functions as they stand (current versions) are read
  // only when a quota counts them.
  async deployRoom(
    namespace: string,
    next: { functionName: string; size: number; memory: number },
    functions: () => Promise<FunctionMeta[]>,
  ): Promise<void> {
    const q = await this.of(namespace);
    if (q.memory !== undefined && next.memory > q.memory)
      throw new QuotaExceeded(
        `namespace ${namespace} lets a function ask for at most ${q.memory} MiB of memory (asked: ${next.memory})`,
        400,
      );
    if (q.functions === undefined && q.archiveBytes === undefined) return;
    const others = (await functions()).filter((f) => f.functionName !== next.functionName);
    if (q.functions !== undefined && others.length + 1 > q.functions)
      throw new QuotaExceeded(`namespace ${namespace} holds at most ${q.functions} functions`, 403);
    const bytes = others.reduce((sum, f) => sum + f.size, 0) + next.size;
    if (q.archiveBytes !== undefined && bytes > q.archiveBytes)
      throw new QuotaExceeded(`namespace ${namespace} holds at most ${q.archiveBytes} bytes of archives (with this one: ${bytes})`, 413);
  }
}
