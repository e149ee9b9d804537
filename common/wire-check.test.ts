// The check of what one process hands itself unparsed: a value passes only when its wire schema, given the
// value as JSON, gives back the same value; a dropped key, a filled-in default and a transform are named.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryLink } from './memory-link.js';
import { assertWireForm, checkingInProcess, WireMismatch } from './wire-check.js';

const Msg = z.object({ type: z.literal('ping'), n: z.number(), at: z.string().optional() });

describe('the wire form check', () => {
  it('passes a value the wire carries unchanged, with undefined fields as JSON drops them', () => {
    expect(() => assertWireForm(Msg, { type: 'ping', n: 1 }, 'ping')).not.toThrow();
    expect(() => assertWireForm(Msg, { type: 'ping', n: 1, at: undefined }, 'ping')).not.toThrow();
  });

  it('names a key the schema drops, a default it fills in, a transform, and a value it refuses', () => {
    expect(() => assertWireForm(Msg, { type: 'ping', n: 1, extra: { deep: true } }, 'a ping')).toThrow(
      /a ping is changed by its wire schema at extra/,
    );
    const withDefault = z.object({ a: z.object({ b: z.number().default(3) }) });
    expect(() => assertWireForm(withDefault, { a: {} }, 'x')).toThrow(/at a\.b \(undefined became 3\)/);
    expect(() => assertWireForm(z.object({ s: z.string().transform((v) => v.trim()) }), { s: ' a ' }, 'x')).toThrow(WireMismatch);
    expect(() => assertWireForm(Msg, { type: 'ping', n: 'one' }, 'a ping')).toThrow(/a ping does not pass its wire schema: n:/);
  });

  it('is on in the test suite, so that every in-process hand-over in it is checked', () => {
    expect(checkingInProcess()).toBe(true);
  });

  it('stops a message on the in-process link before it is handed over', async () => {
    const link = new MemoryLink<z.infer<typeof Msg>, z.infer<typeof Msg>>({
      up: (m) => assertWireForm(Msg, m, 'up'),
      down: (m) => assertWireForm(Msg, m, 'down'),
    });
    const heard: unknown[] = [];
    link.listen((_node, m) => heard.push(m));
    const port = link.attach('n1', (m) => heard.push(m));
    await port.send({ type: 'ping', n: 1 });
    expect(() => port.send({ type: 'ping', n: 2, stray: 1 } as never)).toThrow(/up is changed/);
    expect(() => link.toNode('n1', { type: 'ping', n: 3, stray: 1 } as never)).toThrow(/down is changed/);
    await new Promise((r) => setImmediate(r));
    expect(heard).toEqual([{ type: 'ping', n: 1 }]);
  });
});
