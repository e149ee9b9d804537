// Qualified names: the default namespace keeps bare names; others are prefixed and split back exactly.
import { describe, expect, it } from 'vitest';
import { bareName, namespaceOf, namespaceSchema, qualify, splitName } from './namespace.js';
import { NAME_RE } from './model.js';

describe('qualified names', () => {
  it('keeps bare names in the default namespace', () => {
    expect(qualify('default', 'resize')).toBe('resize');
    expect(splitName('resize')).toEqual({ namespace: 'default', name: 'resize' });
  });
  it('prefixes and splits other namespaces', () => {
    const q = qualify('team-a', 'resize.v2');
    expect(q).toBe('team-a~resize.v2');
    expect(namespaceOf(q)).toBe('team-a');
    expect(bareName(q)).toBe('resize.v2');
  });
  it('never makes a qualified name a bare name could be', () => {
    expect(NAME_RE.test(qualify('team-a', 'x'))).toBe(false);
  });
  it('accepts DNS-label namespaces only', () => {
    for (const ok of ['a', 'team-a', 'x1', 'a'.repeat(32)]) expect(namespaceSchema.safeParse(ok).success).toBe(true);
    for (const bad of ['', 'A', '-a', 'a-', 'a~b', 'a_b', 'a'.repeat(33), 'a/b'])
      expect(namespaceSchema.safeParse(bad).success).toBe(false);
  });
});
