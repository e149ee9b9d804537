// Builds at deploy, on the API's side: a version whose runtime has a dependencies step is born `building`
// (common/build.ts); this sends its build to one node (the least loaded), follows its record in the DB
// service until the node ends it there, and tells whoever waits (the deploy request, calls held back by
// api/build-gate.ts). A build whose node is lost, or that stays silent past its time, is sent to a node
// again; the record takes the first end (endBuild), so a build that ran twice does no harm. Builds left
// `building` by an API that stopped are taken up again when this one starts.
import { errText, type Logger } from '../common/log.js';
import type { FunctionMeta } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import { capacityOf, type NodeControl, type NodeRegistry, type NodeView } from './broker.js';

export interface BuildsOptions {
  db: Pick<DbClient, 'request'>;
  nodes: NodeRegistry & NodeControl;
  log: Logger;
  onEnd(fn: FunctionMeta): void; // a build ended (before anyone waiting on it is told)
  pollMs?: number; // how often a build's record is read (default 250 ms)
  resendMs?: number; // a build not ended this long after it was sent goes to a node again (default 6 min)
  recoverAfterMs?: number; // after start, when builds left `building` are looked for (default 3 s)
}

interface Watch {
  name: string;
  version: number;
  createdAt: string;
  sent?: { node: string; life: string; at: number };
  waiters: Array<(fn: FunctionMeta | null) => void>;
}

export class Builds {
  private readonly watched = new Map<string, Watch>();
  private timer?: NodeJS.Timeout;
  private recoverTimer?: NodeJS.Timeout;
  private ticking = false;
  private stopped = false;

  constructor(private readonly o: BuildsOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.pollMs ?? 250);
    this.recoverTimer = setTimeout(() => void this.recover(), this.o.recoverAfterMs ?? 3000);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.recoverTimer);
    for (const w of this.watched.values()) for (const wake of w.waiters) wake(null);
    this.watched.clear();
  }

  // Whether a node is there to run a build now.
  canBuild(): boolean {
    return this.nodes().length > 0;
  }

  // The version as it stands once its build ended (null: the version is gone, or this API stopped). A
  // version that is building and not yet sent anywhere is sent to a node at the next look.
  follow(fn: Pick<FunctionMeta, 'functionName' | 'version' | 'createdAt'>): Promise<FunctionMeta | null> {
    const key = `${fn.functionName}@${fn.version}`;
    let w = this.watched.get(key);
    if (w && w.createdAt !== fn.createdAt) this.end(key, w, null); // that deployment is gone
    if (!w || w.createdAt !== fn.createdAt) {
      w = { name: fn.functionName, version: fn.version, createdAt: fn.createdAt, waiters: [] };
      this.watched.set(key, w);
    }
    const watch = w;
    return new Promise((resolve) => watch.waiters.push(resolve));
  }

  // Builds left `building` (an API stopped while they ran): followed, and so sent again.
  private async recover(): Promise<void> {
    try {
      for (const fn of await this.o.db.request('listFunctions', {})) {
        if (fn.build?.state !== 'building' || this.watched.has(`${fn.functionName}@${fn.version}`)) continue;
        this.o.log.info({ fn: fn.functionName, version: fn.version }, 'build taken up again');
        void this.follow(fn);
      }
    } catch (e) {
      this.o.log.warn({ err: errText(e) }, 'could not look for unfinished builds');
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped || this.watched.size === 0) return;
    this.ticking = true;
    try {
      for (const [key, w] of [...this.watched]) await this.look(key, w);
    } finally {
      this.ticking = false;
    }
  }

  private async look(key: string, w: Watch): Promise<void> {
    let fn: FunctionMeta | null;
    try {
      fn = await this.o.db.request('getFunction', { name: w.name, version: w.version });
    } catch (e) {
      this.o.log.debug({ fn: w.name, err: errText(e) }, 'build not read; read again shortly');
      return;
    }
    if (this.watched.get(key) !== w) return;
    if (!fn || fn.createdAt !== w.createdAt) return this.end(key, w, null);
    if (fn.build?.state !== 'building') {
      this.o.onEnd(fn);
      return this.end(key, w, fn);
    }
    if (this.due(w)) await this.send(w, fn);
  }

  private end(key: string, w: Watch, fn: FunctionMeta | null): void {
    this.watched.delete(key);
    for (const wake of w.waiters) wake(fn);
  }

  // Whether the build must go to a node: never sent, its node lost or restarted, or silent past its time.
  private due(w: Watch): boolean {
    if (!w.sent) return true;
    const n = this.o.nodes.get(w.sent.node);
    if (!n || n.state !== 'alive' || n.info.life !== w.sent.life) return true;
    return Date.now() - w.sent.at > (this.o.resendMs ?? 6 * 60_000);
  }

  private nodes(): NodeView[] {
    return this.o.nodes.alive().filter((n) => !n.load.draining);
  }

  private async send(w: Watch, fn: FunctionMeta): Promise<void> {
    const node = this.nodes().sort((a, b) => a.inflight.size / capacityOf(a) - b.inflight.size / capacityOf(b))[0];
    if (!node) return; // it waits for a node to join
    const runtime = await this.o.db.request('getRuntime', { name: fn.runtimeName }).catch(() => null);
    if (!runtime) return; // read again at the next look (a runtime deleted under a version cannot be)
    const lost = w.sent?.node;
    w.sent = { node: node.info.id, life: node.info.life, at: Date.now() };
    this.o.nodes.tell(node.info.id, { type: 'build', fn, runtime });
    this.o.log.info({ fn: fn.functionName, version: fn.version, node: node.info.id, ...(lost ? { instead: lost } : {}) }, 'build sent');
  }
}
