// The node's cache of readSecrets answers (instance/secrets.ts), with a fake DB: one request for a burst of
// calls, a new one after the TTL, stamps that tell versions (and a re-created secret) apart, missing names,
// failures not kept, and an answer that does not hold together refused.
import { describe, expect, it } from 'vitest';
import { SecretCache, stampOf, type ReadSecrets } from './secrets.js';

const info = (name: string, version: number, updatedAt = '2025-01-01T00:00:00.000Z') => ({
  name,
  version,
  bytes: 3,
  createdAt: '2025-01-01T00:00:00.000Z',
  updatedAt,
});

function fakeDb(store: Map<string, { version: number; value: string; updatedAt?: string }>) {
  const asked: string[][] = [];
  const read: ReadSecrets = async (_ns, names) => {
    asked.push(names);
    const found = names.filter((n) => store.has(n));
    return {
      data: {
        secrets: found.map((n) => info(n, store.get(n)!.version, store.get(n)!.updatedAt)),
        missing: names.filter((n) => !store.has(n)),
      },
      blobs: found.map((n) => Buffer.from(store.get(n)!.value)),
    };
  };
  return { read, asked };
}

describe('SecretCache', () => {
  it('answers the named secrets in order, as base64 with their stamps, and lists the missing', async () => {
    const db = fakeDb(
      new Map([
        ['a', { version: 2, value: 'AAA' }],
        ['b', { version: 1, value: 'BBB' }],
      ]),
    );
    const c = new SecretCache(db.read);
    const s = await c.get('ns', ['b', 'nope', 'a']);
    expect(s.files).toEqual([
      { name: 'b', stamp: stampOf(info('b', 1)), value: Buffer.from('BBB').toString('base64') },
      { name: 'a', stamp: stampOf(info('a', 2)), value: Buffer.from('AAA').toString('base64') },
    ]);
    expect(s.missing).toEqual(['nope']);
  });

  it('asks the DB once within the TTL and again after it', async () => {
    const store = new Map([['a', { version: 1, value: 'v1' }]]);
    const db = fakeDb(store);
    let now = 1000;
    const c = new SecretCache(db.read, 1000, () => now);
    await Promise.all([c.get('ns', ['a']), c.get('ns', ['a'])]);
    now += 999;
    expect((await c.get('ns', ['a'])).files[0]!.stamp).toMatch(/^1@/);
    expect(db.asked).toHaveLength(1);
    store.set('a', { version: 2, value: 'v2' });
    now += 1;
    const s = await c.get('ns', ['a']);
    expect(db.asked).toHaveLength(2);
    expect(s.files[0]).toMatchObject({ stamp: expect.stringMatching(/^2@/), value: Buffer.from('v2').toString('base64') });
    await c.get('other', ['a']); // another namespace is another entry
    expect(db.asked).toHaveLength(3);
  });

  it('gives a deleted and re-created secret (version 1 again) a new stamp', () => {
    expect(stampOf(info('a', 1, '2025-01-01T00:00:00.000Z'))).not.toBe(stampOf(info('a', 1, '2025-01-02T00:00:00.000Z')));
  });

  it('needs no request for a function naming no secret', async () => {
    const db = fakeDb(new Map());
    expect(await new SecretCache(db.read).get('ns', [])).toEqual({ files: [], missing: [] });
    expect(db.asked).toEqual([]);
  });

  it('does not keep a failure, and refuses an answer whose values do not match its list', async () => {
    let fail = true;
    const c = new SecretCache(async () => {
      if (fail) throw new Error('db service did not answer');
      return { data: { secrets: [info('a', 1)], missing: [] }, blobs: [] };
    });
    await expect(c.get('ns', ['a'])).rejects.toThrow('did not answer');
    fail = false;
    await expect(c.get('ns', ['a'])).rejects.toThrow('without every value');
    const bad = new SecretCache(async () => ({ data: { secrets: 'no' }, blobs: [] }));
    await expect(bad.get('ns', ['a'])).rejects.toThrow();
  });
});
