// The keeper of minWarm against a fake DB service and node table: what each node is told, once, and told
// again only when its floor, the function's version or the node's life changes; floors taken back when
// minWarm goes or the function is deleted.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { FunctionMeta } from '../common/model.js';
import { fnMeta, nodeRuntime } from '../test/helpers/objects.js';
import type { ControlMessage, NodeControl, NodeRegistry, NodeView } from './broker.js';
import { WarmKeeper } from './warm-keeper.js';

function setUp(nodeIds: string[]) {
  let fns: FunctionMeta[] = [];
  const nodes = new Map<string, NodeView>(
    nodeIds.map((id) => [
      id,
      {
        info: { id, capacity: 4, policy: 'function', labels: {}, images: [], version: '', protocol: 2, life: 'L1' },
        load: { running: [], warm: {}, containers: {} },
        state: 'alive',
        inflight: new Map(),
        lastSeen: 0,
        joinedAt: 0,
      } as unknown as NodeView,
    ]),
  );
  const told: string[] = [];
  const registry: NodeRegistry & NodeControl = {
    list: () => [...nodes.values()],
    get: (id) => nodes.get(id),
    alive: () => [...nodes.values()].filter((n) => n.state === 'alive'),
    capacity: () => 0,
    tell: (id: string, m: ControlMessage) => {
      if (m.type === 'keepWarm') told.push(`${id} ${m.name}@${m.def?.fn.version ?? '-'} ${m.floor}`);
    },
  };
  const db = {
    request: (async (type: string) => {
      if (type === 'listFunctions') return fns;
      if (type === 'getRuntime') return nodeRuntime;
      throw new Error(`unexpected ${type}`);
    }) as never,
  };
  const keeper = new WarmKeeper({ db, nodes: registry, log: pino({ level: 'silent' }) });
  return { keeper, told, nodes, set: (f: FunctionMeta[]) => void (fns = f) };
}

describe('WarmKeeper', () => {
  it('tells each node its floor once, again when it changes, and takes floors back', async () => {
    const { keeper, told, nodes, set } = setUp(['a', 'b']);
    set([fnMeta('f', 1, { minWarm: 3 }), fnMeta('g', 1)]);
    expect(await keeper.tick()).toBe(2);
    expect(told.splice(0).sort()).toEqual(['a f@1 2', 'b f@1 1']);
    expect(await keeper.tick()).toBe(0); // nothing changed: nothing said
    // A new version: each node hears of it.
    set([fnMeta('f', 2, { minWarm: 3 }), fnMeta('g', 1)]);
    await keeper.tick();
    expect(told.splice(0).sort()).toEqual(['a f@2 2', 'b f@2 1']);
    // Node b restarted (a new life): it is told again.
    nodes.set('b', { ...nodes.get('b')!, info: { ...nodes.get('b')!.info, life: 'L2' } });
    await keeper.tick();
    expect(told.splice(0)).toEqual(['b f@2 1']);
    // minWarm lowered to 1, then gone, then the function deleted.
    set([fnMeta('f', 2, { minWarm: 1 })]);
    await keeper.tick();
    expect(told.splice(0).sort()).toEqual(['a f@2 1', 'b f@- 0']);
    set([fnMeta('f', 2)]);
    await keeper.tick();
    expect(told.splice(0)).toEqual(['a f@- 0']);
    set([fnMeta('f', 2, { minWarm: 2 })]);
    await keeper.tick();
    told.splice(0);
    set([]);
    await keeper.tick();
    expect(told.splice(0).sort()).toEqual(['a f@- 0', 'b f@- 0']);
    expect(await keeper.tick()).toBe(0);
  });

  it('moves the floors of a node that died or drains to the others', async () => {
    const { keeper, told, nodes, set } = setUp(['a', 'b']);
    set([fnMeta('f', 1, { minWarm: 2 })]);
    await keeper.tick();
    expect(told.splice(0).sort()).toEqual(['a f@1 1', 'b f@1 1']);
    nodes.set('b', { ...nodes.get('b')!, state: 'dead' });
    await keeper.tick();
    expect(told.splice(0)).toEqual(['a f@1 2']);
  });
});
