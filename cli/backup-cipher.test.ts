// The sealed stream of backup files (backup-cipher.ts), in memory: what is sealed opens to the same bytes
// whatever the sizes and however the file is read; another key, a changed byte, a part cut off, moved or
// taken from another file are refused, and nothing of a part that does not authenticate comes out.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, keyIdOf, opener, sealer, Unopenable } from './backup-cipher.js';

const KEY = 'k'.repeat(16) + randomBytes(16).toString('hex');
const OTHER = 'o'.repeat(16) + randomBytes(16).toString('hex');
const SMALL = 1024; // parts of 1 KiB: many parts from little data

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(b);
  return Buffer.concat(out);
}

// The input in pieces of these sizes (cycled), as a stream gives it.
async function* pieces(data: Buffer, sizes: number[] = [data.length || 1]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    yield data.subarray(at, at + n);
    at += n;
  }
}

const seal = (data: Buffer, key = KEY, chunk = SMALL, sizes?: number[]): Promise<Buffer> =>
  collect(sealer(key, chunk)(pieces(data, sizes)));
const open = (file: Buffer, key = KEY, sizes?: number[]): Promise<Buffer> => collect(opener(key, 'the file')(pieces(file, sizes)));
const refusal = async (file: Buffer, key = KEY): Promise<string> => {
  const got: Buffer[] = [];
  try {
    for await (const b of opener(key, 'the file')(pieces(file))) got.push(b);
  } catch (e) {
    expect(e).toBeInstanceOf(Unopenable);
    return (e as Error).message;
  }
  throw new Error(`opened: ${Buffer.concat(got).length} bytes`);
};
const headerLength = (file: Buffer): number => file.indexOf(10) + 1;

describe('the sealed stream of a backup', () => {
  it('opens to exactly what was sealed, for any size and any way the bytes arrive', async () => {
    for (const n of [0, 1, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL, 3 * SMALL + 17]) {
      const data = randomBytes(n);
      expect((await open(await seal(data))).equals(data)).toBe(true);
    }
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 6 * SMALL }),
        fc.array(fc.integer({ min: 1, max: 3 * SMALL }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 3 * SMALL }), { minLength: 1, maxLength: 5 }),
        async (bytes, inSizes, outSizes) => {
          const data = Buffer.from(bytes);
          const file = await seal(data, KEY, SMALL, inSizes);
          expect((await open(file, KEY, outSizes)).equals(data)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('hides what it seals, and never seals two files alike', async () => {
    const data = Buffer.from('"secret-value-of-a-call" '.repeat(200));
    const [a, b] = [await seal(data), await seal(data)];
    expect(a.includes(Buffer.from('secret-value'))).toBe(false);
    expect(a.subarray(headerLength(a)).equals(b.subarray(headerLength(b)))).toBe(false); // a salt of its own
    const header = JSON.parse(a.subarray(0, headerLength(a)).toString()) as Record<string, unknown>;
    expect(header).toMatchObject({ format: 'zfaas-backup', version: 2, cipher: 'aes-256-gcm-stream', keyId: keyIdOf(KEY) });
    expect(JSON.stringify(header)).not.toContain(KEY);
    expect((await collect(sealer(KEY)(pieces(Buffer.alloc(0))))).length).toBeGreaterThan(0);
    expect(JSON.parse((await seal(Buffer.alloc(0), KEY, CHUNK_BYTES)).toString().split('\n')[0]!).chunkBytes).toBe(CHUNK_BYTES);
  });

  it('refuses a file sealed under another key, saying so', async () => {
    const file = await seal(randomBytes(5000));
    expect(await refusal(file, OTHER)).toMatch(
      /^the file was encrypted with another backup key \(its key id is [a-f0-9]{16}, this key's is [a-f0-9]{16}\)/,
    );
    // Its header claiming the other key's id: the parts still do not open.
    const claimed = Buffer.from(file.toString('latin1').replace(keyIdOf(KEY), keyIdOf(OTHER)), 'latin1');
    expect(await refusal(claimed, OTHER)).toMatch(/has been changed or damaged: its part 1 does not authenticate/);
  });

  it('refuses any changed byte, of a part or of the header, and gives out nothing of that part', async () => {
    const data = randomBytes(4 * SMALL + 100);
    const file = await seal(data);
    const h = headerLength(file);
    for (const at of [h + 3, h + SMALL + 16 + 5, file.length - 1, file.length - 20]) {
      const changed = Buffer.from(file);
      changed[at]! ^= 0x01;
      expect(await refusal(changed)).toMatch(/has been changed|damaged/);
    }
    // The salt of the header (authenticated as every part's associated data).
    const salt = JSON.parse(file.subarray(0, h).toString()).salt as string;
    const otherSalt = randomBytes(32).toString('base64');
    expect(await refusal(Buffer.from(file.toString('latin1').replace(salt, otherSalt), 'latin1'))).toMatch(/part 1 does not authenticate/);
    // Parts before the changed one come out; the changed one does not.
    const changed = Buffer.from(file);
    changed[h + 2 * (SMALL + 16) + 7]! ^= 0x80;
    const got: Buffer[] = [];
    await expect(
      (async () => {
        for await (const b of opener(KEY, 'the file')(pieces(changed))) got.push(b);
      })(),
    ).rejects.toThrow(/part 3 does not authenticate/);
    expect(Buffer.concat(got).equals(data.subarray(0, 2 * SMALL))).toBe(true);
  });

  it('refuses a file cut short, anywhere, and parts moved or taken from another file', async () => {
    const data = randomBytes(4 * SMALL + 100);
    const file = await seal(data);
    const h = headerLength(file);
    const part = SMALL + 16;
    expect(await refusal(file.subarray(0, 10))).toMatch(/is truncated: it ends inside its header/);
    expect(await refusal(file.subarray(0, h))).toMatch(/is truncated: it ends inside its part 1/);
    expect(await refusal(file.subarray(0, h + 20))).toMatch(/changed, damaged or cut short: its last part \(1\)/);
    expect(await refusal(file.subarray(0, h + 2 * part))).toMatch(/is truncated: it ends after its part 2, before its last part/);
    expect(await refusal(file.subarray(0, h + 2 * part + 7))).toMatch(/is truncated: it ends inside its part 3|cut short/);
    expect(await refusal(file.subarray(0, file.length - 1))).toMatch(/cut short/);
    // Two parts swapped.
    const swapped = Buffer.concat([
      file.subarray(0, h),
      file.subarray(h + part, h + 2 * part),
      file.subarray(h, h + part),
      file.subarray(h + 2 * part),
    ]);
    expect(await refusal(swapped)).toMatch(/part 1 does not authenticate/);
    // A part of another file under the same key (its own salt, so its own file key).
    const other = await seal(randomBytes(4 * SMALL + 100));
    const spliced = Buffer.concat([file.subarray(0, h + part), other.subarray(headerLength(other) + part)]);
    expect(await refusal(spliced)).toMatch(/part 2 does not authenticate/);
    // Something after the last part.
    expect(await refusal(Buffer.concat([file, Buffer.from('x')]))).toMatch(/does not authenticate/);
  });

  it('refuses what is not a sealed backup', async () => {
    expect(await refusal(Buffer.from('hello\n'))).toMatch(/is not a zfaas backup \(its header is not JSON\)/);
    expect(await refusal(Buffer.from('{"format":"zfaas-backup","version":1}\n'))).toMatch(/not an encrypted zfaas backup this zfaas reads/);
    expect(await refusal(Buffer.alloc(10_000, 'a'))).toMatch(/is not a zfaas backup \(no header line\)/);
  });
});
