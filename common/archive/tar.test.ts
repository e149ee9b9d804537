// Tests of tar.ts: special files, a .tar.gz bomb, oversized extended headers, and truncated or
// corrupted tar and .tar.gz input.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { inspectArchive } from './inspect.js';
import { SMALL, expectRefused, flip, makeProject, pyTar, pyZip, python, tarOf } from './testing.js';

describe('refusals: special files', () => {
  it('refuses a character device, a FIFO and unknown tar types', async () => {
    await expectRefused(
      pyTar(`f('index.js'); dev('null')`),
      /^entry null is a character device; only regular files, directories and symlinks are allowed$/,
    );
    await expectRefused(pyTar(`f('index.js'); fifo('pipe')`), /^entry pipe is a FIFO/);
    await expectRefused(pyTar(`f('index.js'); t.addfile(info('vol', b'V'))`, 'w'), /^entry vol is of unsupported tar type/);
    await expectRefused(pyZip(`f('index.js'); f('null', b'', 0o020666)`), /^entry null is a character device/);
  });
});

describe('refusals: sizes', () => {
  it('stops a .tar.gz bomb at the limit', async () => {
    const buf = python(`
import io, sys, tarfile
class Zeros:
    def read(self, n=-1): return bytes(n)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w:gz', compresslevel=1) as t:
    ti = tarfile.TarInfo('zeros.bin'); ti.size = 150 << 20
    t.addfile(ti, Zeros())
sys.stdout.buffer.write(buf.getvalue())
`);
    expect(buf.length).toBeLessThan(2 * 1024 * 1024);
    await expectRefused(buf, /^archive is larger than 100 MiB unpacked$/);
  });
});

describe('refusals: tar metadata', () => {
  /** A plain tar whose only file carries a pax comment of `size` bytes. */
  const paxTar = (size: number): Buffer =>
    pyTar(`t.addfile(info('index.js', tarfile.REGTYPE, size=2, pax_headers={'comment': 'x' * ${size}}), io.BytesIO(b'hi'))`, 'w');

  it('refuses an extended header over 64 KiB', async () => {
    await expectRefused(paxTar(70_000), /^archive has an extended header larger than 64 KiB$/);
  });

  it('stops a .tar.gz whose tar stream inflates past the limit without file bytes', async () => {
    // Repeat the pax header 40 times in front of the file: ~2.4 MiB of metadata for a 2-byte file.
    const tar = paxTar(60_000);
    const size = parseInt(tar.toString('latin1', 124, 136).replace(/\0.*$/, '').trim(), 8);
    const paxLength = 512 + Math.ceil(size / 512) * 512;
    const padded = Buffer.concat([...Array<Buffer>(40).fill(tar.subarray(0, paxLength)), tar]);
    expect((await inspectArchive(gzipSync(padded))).files).toEqual(['index.js']); // fine with the default limits
    await expectRefused(gzipSync(padded), /^archive is larger than 64 KiB unpacked$/, SMALL);
  });
});

describe('refusals: broken input', () => {
  it('refuses a gzip that holds no tar', async () => {
    await expectRefused(gzipSync(Buffer.alloc(2000, 'a')), /does not contain a tar archive/);
    await expectRefused(gzipSync(Buffer.from('hi')), /^archive is truncated or corrupt/);
  });

  it('refuses a truncated .tar.gz', async () => {
    const src = makeProject();
    writeFileSync(path.join(src, 'random.bin'), randomBytes(200_000));
    const buf = await tarOf(src, true);
    for (const cut of [10, 600, Math.floor(buf.length / 2), buf.length - 4]) {
      await expectRefused(buf.subarray(0, cut), /^archive is truncated or corrupt: /);
    }
  });

  it('refuses a truncated or corrupted plain .tar', async () => {
    const src = makeProject();
    writeFileSync(path.join(src, 'random.bin'), randomBytes(20_000));
    const buf = await tarOf(src, false, ['random.bin', 'index.js']);
    await expectRefused(buf.subarray(0, 5000), /^archive is truncated or corrupt: Truncated input/);
    // Cut exactly after the first entry: every header is whole, but the end marker is missing.
    await expectRefused(buf.subarray(0, 512 + 20_480), /^archive is truncated or corrupt: the tar end-of-archive marker is missing$/);
    // Damage the second header (after 512 + 20_480 bytes): its checksum no longer matches.
    const bad = Buffer.from(buf);
    flip(bad, 512 + 20_480 + 10);
    await expectRefused(bad, /^archive is truncated or corrupt: checksum failure$/);
  });
});
