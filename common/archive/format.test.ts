// Tests of format.ts: magic-byte detection, and the refusal of what has no known magic.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { detectFormat } from './format.js';
import { expectRefused } from './testing.js';

describe('detectFormat', () => {
  it('recognizes the magic bytes', () => {
    expect(detectFormat(gzipSync(Buffer.from('x')))).toBe('tar.gz');
    expect(detectFormat(Buffer.from('PK\x03\x04rest', 'latin1'))).toBe('zip');
    expect(detectFormat(Buffer.from('PK\x05\x06' + '\0'.repeat(18), 'latin1'))).toBe('zip');
    const tar = Buffer.alloc(512);
    tar.write('ustar', 257, 'latin1');
    expect(detectFormat(tar)).toBe('tar');
    expect(detectFormat(Buffer.from('hello'))).toBeNull();
    expect(detectFormat(Buffer.alloc(0))).toBeNull();
  });
});

describe('refusals: broken input', () => {
  it('refuses wrong magic', async () => {
    await expectRefused(Buffer.from('hello'), /^not a \.tar\.gz, \.tar or \.zip archive \(unknown magic bytes\)$/);
    await expectRefused(Buffer.alloc(0), /^archive is empty \(0 bytes\)$/);
  });
});
