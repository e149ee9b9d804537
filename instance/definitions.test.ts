// The node's definitions cache: bounded, the least recently used go first, never one whose containers
// are still on the node.
import { describe, expect, it } from 'vitest';
import type { FnDef } from '../protocol/broker.js';
import { Definitions } from './definitions.js';
import { fnMeta, nodeRuntime } from '../test/helpers/objects.js';

const def = (name: string, version = 1): FnDef => ({ fn: fnMeta(name, version), runtime: nodeRuntime });

describe('Definitions', () => {
  it('keeps at most its bound, dropping the least recently used first', () => {
    const d = new Definitions(() => false, 3);
    for (const n of ['a', 'b', 'c']) d.keep(def(n));
    expect(d.get({ name: 'a', version: 1 })).toBeDefined(); // used: now the most recent
    d.keep(def('d'));
    expect(d.size).toBe(3);
    expect(d.peek({ name: 'b', version: 1 })).toBeUndefined();
    for (const n of ['a', 'c', 'd']) expect(d.peek({ name: n, version: 1 })).toBeDefined();
  });

  it('never drops a definition whose containers are on the node, even past its bound', () => {
    const held = new Set(['a@1', 'b@1']);
    const d = new Definitions((r) => held.has(`${r.name}@${r.version}`), 2);
    for (const n of ['a', 'b', 'c', 'e']) d.keep(def(n));
    expect(d.peek({ name: 'a', version: 1 })).toBeDefined();
    expect(d.peek({ name: 'b', version: 1 })).toBeDefined();
    expect(d.size).toBe(2);
    held.clear();
    d.keep(def('f'));
    expect(d.size).toBe(2);
    expect(d.peek({ name: 'f', version: 1 })).toBeDefined();
  });
});
