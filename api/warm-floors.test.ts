// The spread of minWarm over the nodes, without nodes: even, capped per node, warmest first, only where
// the containers can serve calls.
import { describe, expect, it } from 'vitest';
import type { FunctionSettings } from '../common/model.js';
import { spreadWarm, type FloorNode } from './warm-floors.js';

const fn = (s: Partial<FunctionSettings>) => ({ settings: { minWarm: 0, ...s } as FunctionSettings });
const node = (id: string, o: Partial<FloorNode> = {}): FloorNode => ({ id, policy: 'function', usable: true, warm: 0, ...o });
const spread = (s: Partial<FunctionSettings>, nodes: FloorNode[]) => Object.fromEntries(spreadWarm(fn(s), nodes));

describe('spreadWarm', () => {
  it('spreads minWarm evenly, the odd ones to the nodes already holding the most of it', () => {
    expect(spread({ minWarm: 4 }, [node('a'), node('b')])).toEqual({ a: 2, b: 2 });
    expect(spread({ minWarm: 3 }, [node('a'), node('b', { warm: 2 })])).toEqual({ a: 1, b: 2 });
    expect(spread({ minWarm: 1 }, [node('a'), node('b'), node('c', { warm: 1 })])).toEqual({ a: 0, b: 0, c: 1 });
    expect(spread({ minWarm: 5 }, [node('a')])).toEqual({ a: 5 });
  });

  it('gives nothing to nodes that are dead or draining, or whose policy (the function has none) is none', () => {
    expect(spread({ minWarm: 4 }, [node('a', { usable: false }), node('b', { policy: 'none' }), node('c')])).toEqual({ a: 0, b: 0, c: 4 });
    // the function's own policy wins over the node's
    expect(spread({ minWarm: 2, policy: 'function' }, [node('a', { policy: 'none' }), node('b')])).toEqual({ a: 1, b: 1 });
    expect(spread({ minWarm: 2 }, [node('a', { policy: 'none' })])).toEqual({ a: 0 });
  });

  it("never gives a node more than the function's maxContainers, even when minWarm cannot be met", () => {
    expect(spread({ minWarm: 5, maxContainers: 2 }, [node('a'), node('b')])).toEqual({ a: 2, b: 2 });
    expect(spread({ minWarm: 3, maxContainers: 2 }, [node('a'), node('b', { warm: 1 })])).toEqual({ a: 1, b: 2 });
  });

  it('gives every node 0 for a function without minWarm (its floors there go)', () => {
    expect(spread({}, [node('a', { warm: 3 }), node('b')])).toEqual({ a: 0, b: 0 });
  });
});
