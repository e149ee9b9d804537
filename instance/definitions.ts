// The function definitions a node has been sent (or read from the DB service), by name@version, the most
// recently used last. At most `max` are kept: one that goes is read again from the DB service when a call
// needs it. One whose containers are still on the node stays (`held`), since a redeploy under the same name
// and version is told from it.
import type { FnDef, FnRef } from '../protocol/broker.js';

export class Definitions {
  private readonly defs = new Map<string, FnDef>();

  constructor(
    private readonly held: (ref: FnRef) => boolean,
    private readonly max = 512,
  ) {}

  get size(): number {
    return this.defs.size;
  }

  // Without touching its place: the one this node had before a new one arrives.
  peek(ref: FnRef): FnDef | undefined {
    return this.defs.get(key(ref));
  }

  get(ref: FnRef): FnDef | undefined {
    const d = this.defs.get(key(ref));
    if (d) this.keep(d);
    return d;
  }

  keep(def: FnDef): void {
    const k = key({ name: def.fn.functionName, version: def.fn.version });
    this.defs.delete(k);
    this.defs.set(k, def);
    for (const [old, d] of this.defs) {
      if (this.defs.size <= this.max) break;
      if (!this.held({ name: d.fn.functionName, version: d.fn.version })) this.defs.delete(old);
    }
  }
}

const key = (ref: FnRef): string => `${ref.name}@${ref.version}`;
