// Tests of zip.ts: zip bombs (honest and lying headers), CRC-32 failures, truncated or corrupted zips.
import { describe, expect, it } from 'vitest';
import { expectRefused, flip, pyZip, python } from './testing.js';

describe('refusals: sizes', () => {
  it('stops a zip of 200 MiB of zeros at the limit, quickly, without writing it', async () => {
    const buf = python(`
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('index.js', 'x')
    with z.open('zeros.bin', 'w') as w:
        chunk = bytes(1 << 20)
        for _ in range(200): w.write(chunk)
sys.stdout.buffer.write(buf.getvalue())
`);
    expect(buf.length).toBeLessThan(1024 * 1024);
    const started = Date.now();
    await expectRefused(buf, /^archive is larger than 100 MiB unpacked$/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('stops a zip whose headers lie about the size', async () => {
    const buf = pyZip(`f('index.js'); f('bomb.bin', bytes(20 << 20))`);
    // Claim 100 bytes in both the local and the central header of bomb.bin.
    const local = buf.indexOf(Buffer.from('PK\x03\x04', 'latin1'), 1); // the second local header
    expect(buf.toString('latin1', local + 30, local + 38)).toBe('bomb.bin');
    buf.writeUInt32LE(100, local + 22);
    const central = buf.indexOf(Buffer.from('PK\x01\x02', 'latin1'), buf.indexOf(Buffer.from('PK\x01\x02', 'latin1')) + 1);
    expect(buf.toString('latin1', central + 46, central + 54)).toBe('bomb.bin');
    buf.writeUInt32LE(100, central + 24);
    await expectRefused(buf, /^entry bomb\.bin inflates to more than the 100 bytes its header declares$/);
  });
});

describe('refusals: broken input', () => {
  it('refuses a zip entry whose data fails its CRC-32 check', async () => {
    const buf = python(`
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z: z.writestr('a.txt', b'hello world')
sys.stdout.buffer.write(buf.getvalue())
`);
    flip(buf, 30 + 'a.txt'.length + 1); // stored data: only the CRC can notice
    await expectRefused(buf, /^archive is truncated or corrupt: entry a\.txt fails its CRC-32 check$/);
  });

  it('refuses a truncated or corrupted .zip', async () => {
    const buf = pyZip(`f('index.js', b'x' * 5000); f('b.js', bytes(range(256)) * 100)`);
    for (const cut of [10, Math.floor(buf.length / 2), buf.length - 1]) {
      await expectRefused(buf.subarray(0, cut), /^archive is truncated or corrupt: /);
    }
    // Flip a byte of compressed data: the inflate or the CRC-32 check catches it.
    const bad = Buffer.from(buf);
    flip(bad, 30 + 'index.js'.length + 4); // inside index.js's deflated data
    await expectRefused(bad, /^archive is truncated or corrupt: entry index\.js/);
  });
});
