// The loaders the images carry, and the protocol's constants for other languages, are what
// runtimes/build/loaders.ts makes of their modules and protocol/loader.ts now: a change to either that was
// not built (npm run loaders) fails here. The patterns each language anchors its own way match the same.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PATTERNS, whole } from '../../protocol/loader.js';
import { generated, protocolConstants, RUNTIMES } from './loaders.js';

describe('the built loaders', () => {
  it('are current: each generated file is what the build makes now', async () => {
    for (const f of await generated()) {
      const onDisk = await readFile(join(RUNTIMES, f.path), 'utf8');
      expect(onDisk === f.text, `runtimes/${f.path} is out of date: run npm run loaders`).toBe(true);
    }
  });

  it("carry the node's version and patterns", async () => {
    const c = protocolConstants();
    const js = await readFile(join(RUNTIMES, 'node/loader.js'), 'utf8');
    const py = await readFile(join(RUNTIMES, 'python/loader.py'), 'utf8');
    expect(js).toContain(`const PROTOCOL = ${c.version};`);
    expect(py).toContain(`PROTOCOL = ${c.version}\n`);
    for (const p of Object.values(PATTERNS)) {
      expect(js).toContain(JSON.stringify(`^(?:${p})$`));
      expect(py).toContain(JSON.stringify(`(?:${p})\\Z`));
    }
  });

  it('anchor each pattern to the whole string', () => {
    const token = whole(PATTERNS.headerToken);
    expect(token.test('x-served-by')).toBe(true);
    expect(token.test('x-a\r\nx-b')).toBe(false);
    expect(token.test('x-a\n')).toBe(false);
    expect(whole(PATTERNS.secretName).test('../escape')).toBe(false);
    expect(whole(PATTERNS.base64).test('czNjcmV0')).toBe(true);
  });
});
