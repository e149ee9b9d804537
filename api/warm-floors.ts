// How a function's `minWarm` is spread over the nodes, as a pure function: each node that can keep its
// containers (alive, not draining, its effective policy not `none`) gets a floor, so that the floors add up
// to minWarm, as even as they can be, and never above the function's own per-node `maxContainers`. The
// larger shares go to the nodes already holding the most warm containers of that version, so a node
// joining or leaving moves as few containers as it can.
import type { FunctionMeta, Policy } from '../common/model.js';

export interface FloorNode {
  id: string;
  policy: Policy; // the node's default policy
  usable: boolean; // alive and not draining
  warm: number; // its warm containers of the function version now
}

export function spreadWarm(fn: Pick<FunctionMeta, 'settings'>, nodes: readonly FloorNode[]): Map<string, number> {
  const floors = new Map<string, number>();
  const want = fn.settings.minWarm ?? 0;
  const cap = fn.settings.maxContainers ?? Infinity;
  const eligible = nodes
    .filter((n) => n.usable && (fn.settings.policy ?? n.policy) !== 'none')
    .sort((a, b) => b.warm - a.warm || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const n of nodes) floors.set(n.id, 0);
  if (want <= 0 || eligible.length === 0) return floors;
  let left = want;
  // Round by round, one more container on each node that has room for it, warmest first.
  while (left > 0) {
    let placed = 0;
    for (const n of eligible) {
      if (left === 0) break;
      const f = floors.get(n.id)!;
      if (f >= cap) continue;
      floors.set(n.id, f + 1);
      left--;
      placed++;
    }
    if (placed === 0) break; // every node is at the function's own cap
  }
  return floors;
}
