// Keeps every function's `minWarm`: every few seconds it reads the functions, spreads each one's minWarm
// over the nodes (warm-floors.ts) and tells each node its floor (`keepWarm`) where that changed: another
// floor, another current version, or a node that came back with a new life. A function whose minWarm went,
// or that was deleted, gets floors of 0 where it had any. The nodes make and keep the containers; several
// APIs telling the same floors is harmless (a node takes the latest word).
import { errText, type Logger } from '../common/log.js';
import type { FunctionMeta, Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { NodeControl, NodeRegistry } from './broker.js';
import { spreadWarm } from './warm-floors.js';

export interface WarmKeeperOptions {
  db: Pick<DbClient, 'request'>;
  nodes: NodeRegistry & NodeControl;
  log: Logger;
  everyMs?: number; // default 2 s
}

export class WarmKeeper {
  // function -> node -> what that node was last told (`life:version:floor`)
  private readonly told = new Map<string, Map<string, string>>();
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(private readonly o: WarmKeeperOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.everyMs ?? 2000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  // One round; resolves with the number of nodes told something. A failed round is tried at the next.
  async tick(): Promise<number> {
    if (this.busy) return 0;
    this.busy = true;
    try {
      return await this.round();
    } catch (e) {
      this.o.log.warn({ err: errText(e) }, 'warm containers not kept this round');
      return 0;
    } finally {
      this.busy = false;
    }
  }

  private async round(): Promise<number> {
    const fns = (await this.o.db.request('listFunctions', {})).filter(
      (f) => (f.settings.minWarm ?? 0) > 0 || this.told.has(f.functionName),
    );
    const runtimes = new Map<string, Runtime | null>();
    let sent = 0;
    for (const fn of fns) {
      if (!runtimes.has(fn.runtimeName)) runtimes.set(fn.runtimeName, await this.o.db.request('getRuntime', { name: fn.runtimeName }));
      const runtime = runtimes.get(fn.runtimeName);
      sent += this.tellFloors(fn, runtime ?? undefined);
    }
    const listed = new Set(fns.map((f) => f.functionName));
    for (const name of [...this.told.keys()]) if (!listed.has(name)) sent += this.clear(name); // deleted
    return sent;
  }

  private tellFloors(fn: FunctionMeta, runtime: Runtime | undefined): number {
    const name = fn.functionName;
    const nodes = this.o.nodes.list();
    const floors = spreadWarm(
      runtime ? fn : { settings: { ...fn.settings, minWarm: 0 } }, // a function whose runtime went cannot start
      nodes.map((n) => ({
        id: n.info.id,
        policy: n.info.policy,
        usable: n.state === 'alive' && !n.load.draining,
        warm: n.load.warm[`${name}@${fn.version}`] ?? 0,
      })),
    );
    const told = this.told.get(name) ?? new Map<string, string>();
    let sent = 0;
    for (const n of nodes) {
      const floor = floors.get(n.info.id) ?? 0;
      const word = `${n.info.life}:${fn.version}:${floor}`;
      if (n.state !== 'alive' || told.get(n.info.id) === word) continue;
      if (floor === 0 && !told.has(n.info.id)) continue; // nothing to take back there
      this.o.nodes.tell(
        n.info.id,
        floor > 0 && runtime ? { type: 'keepWarm', name, floor, def: { fn, runtime } } : { type: 'keepWarm', name, floor: 0 },
      );
      if (floor > 0) told.set(n.info.id, word);
      else told.delete(n.info.id);
      sent++;
    }
    for (const id of told.keys()) if (!nodes.some((n) => n.info.id === id && n.state === 'alive')) told.delete(id); // gone nodes
    if (told.size) this.told.set(name, told);
    else this.told.delete(name);
    return sent;
  }

  private clear(name: string): number {
    let sent = 0;
    for (const id of this.told.get(name)?.keys() ?? []) {
      if (this.o.nodes.get(id)?.state !== 'alive') continue;
      this.o.nodes.tell(id, { type: 'keepWarm', name, floor: 0 });
      sent++;
    }
    this.told.delete(name);
    return sent;
  }
}
