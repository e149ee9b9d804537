// A corpus of crafted function archives, written byte by byte (no archiver would write most of these):
// path traversal, absolute paths, links out of the tree, bombs, huge entry counts, wrong magic, truncation,
// names with odd bytes. Each `refused` item must be answered 400 with nothing stored; each `accepted` item
// is hostile in a way extraction neutralizes (modes, owners), and must deploy and run normally.
import { crc32, deflateRawSync, constants as zc, gzipSync } from 'node:zlib';

const KiB = 1024;
const MiB = 1024 * KiB;

// ---------------------------------------------------------------------------------------------- tar

export interface TarEntry {
  name: string | Buffer;
  /** '0' file, '1' hardlink, '2' symlink, '3' char device, '4' block device, '5' directory, '6' FIFO,
   *  'x' pax header, 'L' GNU long name, or anything else for an odd type. */
  type?: string;
  data?: Buffer | string;
  /** Size written in the header (defaults to the data's length). */
  size?: number;
  linkname?: string | Buffer;
  mode?: number;
  uid?: number;
  /** Break the header checksum on purpose. */
  badChecksum?: boolean;
  /** Write this (not octal digits) in the size field. */
  rawSize?: string;
}

function put(block: Buffer, at: number, len: number, value: string | Buffer): void {
  const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  b.copy(block, at, 0, Math.min(len, b.length));
}

const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0';

export function tarHeader(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(512);
  put(h, 0, 100, e.name);
  put(h, 100, 8, octal(e.mode ?? (e.type === '5' ? 0o755 : 0o644), 8));
  put(h, 108, 8, octal(e.uid ?? 1000, 8));
  put(h, 116, 8, octal(e.uid ?? 1000, 8));
  if (e.rawSize !== undefined) put(h, 124, 12, e.rawSize);
  else if (size < 8 ** 11) put(h, 124, 12, octal(size, 12));
  else {
    // base-256 (GNU) for sizes over 8 GiB - 1
    h[124] = 0x80;
    let v = BigInt(size);
    for (let i = 135; i > 124; i--) {
      h[i] = Number(v & 0xffn);
      v >>= 8n;
    }
  }
  put(h, 136, 12, octal(1_700_000_000, 12));
  put(h, 148, 8, '        ');
  put(h, 156, 1, e.type ?? '0');
  if (e.linkname !== undefined) put(h, 157, 100, e.linkname);
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  put(h, 265, 32, 'zfaas');
  put(h, 297, 32, 'zfaas');
  let sum = 0;
  for (const b of h) sum += b;
  if (e.badChecksum) sum += 7;
  put(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);

/** A pax record "LEN key=value\n" (LEN counts the whole record, itself included). */
export function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

export function tar(entries: TarEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    parts.push(tarHeader(e, e.size ?? data.length), data, pad(data.length));
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export const tgz = (entries: TarEntry[], opts: { end?: boolean } = {}): Buffer => gzipSync(tar(entries, opts));

const INDEX = { name: 'index.js', data: 'module.exports = () => "ok";\n' };

/** A pax-extended entry: the name (or link) lives in a pax header, which may hold any bytes. */
function paxEntry(e: TarEntry & { paxPath?: string | Buffer; paxLink?: string | Buffer }): TarEntry[] {
  const records: Buffer[] = [];
  if (e.paxPath !== undefined) records.push(paxRecord('path', e.paxPath));
  if (e.paxLink !== undefined) records.push(paxRecord('linkpath', e.paxLink));
  const data = Buffer.concat(records);
  return [{ name: 'PaxHeader', type: 'x', data }, e];
}

/**
 * A gzip bomb without the memory: gzip members may be concatenated, so the gzip of one MiB of zeros is
 * written `mib` times after the tar header of one file that size.
 */
export function tgzZeroBomb(mib: number, declared = mib * MiB): Buffer {
  const zeroMiB = gzipSync(Buffer.alloc(MiB), { level: 9 });
  const parts = [gzipSync(tarHeader({ name: 'zeros.bin' }, declared))];
  for (let i = 0; i < mib; i++) parts.push(zeroMiB);
  parts.push(gzipSync(Buffer.alloc(1024)));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------- zip

export interface ZipEntry {
  name: string | Buffer;
  data?: Buffer | string;
  /** 0 stored, 8 deflate, or any other method number. */
  method?: number;
  /** Unix mode (with the file type bits); stored in the external attributes. */
  mode?: number;
  /** Set the UTF-8 name flag (bit 11). */
  utf8?: boolean;
  /** General purpose flags to OR in (1: encrypted). */
  flags?: number;
  /** Override what the headers declare. */
  declaredSize?: number;
  /** Already-compressed bytes to store as is (with `uncompressed` and `crc`). */
  raw?: { bytes: Buffer; uncompressed: number; crc: number };
}

interface Built {
  local: Buffer;
  central: (offset: number) => Buffer;
}

function zipParts(e: ZipEntry): Built {
  const name = Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name, 'utf8');
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
  const method = e.method ?? (e.raw ? 8 : data.length ? 8 : 0);
  const comp = e.raw ? e.raw.bytes : method === 8 ? deflateRawSync(data) : data;
  const crc = e.raw ? e.raw.crc : crc32(data);
  const size = e.declaredSize ?? (e.raw ? e.raw.uncompressed : data.length);
  const flags = (e.utf8 ? 0x800 : 0) | (e.flags ?? 0);
  // The fields the local header (at 6) and the central directory entry (at 8) share, in the same order.
  const shared = (b: Buffer, at: number): Buffer => {
    b.writeUInt16LE(flags, at);
    b.writeUInt16LE(method, at + 2);
    b.writeUInt16LE(0, at + 4); // time
    b.writeUInt16LE(0x21, at + 6); // date
    b.writeUInt32LE(crc >>> 0, at + 8);
    b.writeUInt32LE(comp.length, at + 12);
    b.writeUInt32LE(size >>> 0, at + 16);
    b.writeUInt16LE(name.length, at + 20);
    return b;
  };
  const local = shared(Buffer.alloc(30), 6);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  const mode = e.mode ?? 0o100644;
  return {
    local: Buffer.concat([local, name, comp]),
    central: (offset) => {
      const c = shared(Buffer.alloc(46), 8);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE((3 << 8) | 20, 4); // made by unix: the external attributes hold a mode
      c.writeUInt16LE(20, 6);
      c.writeUInt32LE(((mode & 0xffff) << 16) >>> 0, 38);
      c.writeUInt32LE(offset, 42);
      return Buffer.concat([c, name]);
    },
  };
}

function eocd(count: number, cdSize: number, cdOffset: number): Buffer {
  const b = Buffer.alloc(22);
  b.writeUInt32LE(0x06054b50, 0);
  b.writeUInt16LE(Math.min(count, 0xffff), 8);
  b.writeUInt16LE(Math.min(count, 0xffff), 10);
  b.writeUInt32LE(cdSize, 12);
  b.writeUInt32LE(cdOffset, 16);
  return b;
}

export function zip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const p = zipParts(e);
    centrals.push(p.central(offset));
    locals.push(p.local);
    offset += p.local.length;
  }
  const cd = Buffer.concat(centrals);
  return Buffer.concat([...locals, cd, eocd(entries.length, cd.length, offset)]);
}

/** Raw deflate of `mib` MiB of zeros, built from one compressed MiB repeated (sync-flushed blocks). */
export function deflatedZeros(mib: number): { bytes: Buffer; uncompressed: number; crc: number } {
  const zeroMiB = Buffer.alloc(MiB);
  const piece = deflateRawSync(zeroMiB, { level: 9, finishFlush: zc.Z_SYNC_FLUSH });
  let crc = 0;
  for (let i = 0; i < mib; i++) crc = crc32(zeroMiB, crc);
  const parts: Buffer[] = [];
  for (let i = 0; i < mib; i++) parts.push(piece);
  parts.push(Buffer.from([0x03, 0x00])); // an empty final block
  return { bytes: Buffer.concat(parts), uncompressed: mib * MiB, crc };
}

/**
 * The non-recursive "overlapping files" bomb: one compressed kernel, and `count` central directory
 * entries that all point at it, each declaring its full size.
 */
export function overlappingZipBomb(count: number, mib: number): Buffer {
  const kernel = deflatedZeros(mib);
  const first = zipParts({ name: 'k0', raw: kernel });
  const cd = Buffer.concat(Array.from({ length: count }, (_, i) => zipParts({ name: `k${i}`, raw: kernel }).central(0)));
  return Buffer.concat([first.local, cd, eocd(count, cd.length, first.local.length)]);
}

// ---------------------------------------------------------------------------------------------- corpus

export interface CorpusItem {
  what: string;
  filename: string;
  bytes: () => Buffer;
  /** The refusal's wording (after "bad archive: "). */
  error?: RegExp;
}

const big = (n: number, ch = 'a'): string => ch.repeat(n);

/** Archives that must be refused (400, nothing stored). Built lazily: some take a moment. */
export function refusedCorpus(): CorpusItem[] {
  const t = (what: string, entries: () => TarEntry[], error?: RegExp): CorpusItem => ({
    what: `tar.gz: ${what}`,
    filename: 'fn.tar.gz',
    bytes: () => tgz(entries()),
    error,
  });
  const z = (what: string, entries: () => ZipEntry[], error?: RegExp): CorpusItem => ({
    what: `zip: ${what}`,
    filename: 'fn.zip',
    bytes: () => zip(entries()),
    error,
  });
  return [
    // --- path traversal and absolute paths
    t('../ traversal', () => [INDEX, { name: '../evil.js', data: 'x' }], /escapes the archive root/),
    t('a/../../ traversal', () => [INDEX, { name: 'a/../../evil.js', data: 'x' }], /escapes the archive root/),
    t('deep ../ traversal', () => [INDEX, { name: `${'../'.repeat(40)}tmp/evil`, data: 'x' }], /escapes the archive root/),
    t('absolute path', () => [INDEX, { name: '/tmp/zfaas-corpus-evil', data: 'x' }], /absolute path/),
    t('Windows drive path', () => [INDEX, { name: 'C:\\evil.js', data: 'x' }], /absolute path/),
    t('backslash traversal', () => [INDEX, { name: '..\\..\\evil.js', data: 'x' }], /escapes the archive root|backslash/),
    t(
      'traversal in a pax path',
      () => [INDEX, ...paxEntry({ name: 'innocent.js', data: 'x', paxPath: '../../evil.js' })],
      /escapes the archive root/,
    ),
    t(
      'traversal in a GNU long name',
      () => [INDEX, { name: '././@LongLink', type: 'L', data: `${'../'.repeat(60)}evil\0` }, { name: 'short', data: 'x' }],
      /escapes the archive root/,
    ),
    z(
      '../ traversal',
      () => [
        { name: 'index.js', data: 'x' },
        { name: '../../evil.js', data: 'x' },
      ],
      /escapes the archive root/,
    ),
    z(
      'absolute path',
      () => [
        { name: 'index.js', data: 'x' },
        { name: '/tmp/evil.js', data: 'x' },
      ],
      /absolute path/,
    ),
    z(
      'backslash traversal',
      () => [
        { name: 'index.js', data: 'x' },
        { name: '..\\evil.js', data: 'x' },
      ],
      /backslash|escapes/,
    ),
    // --- links out of the tree
    t('symlink to an absolute path', () => [INDEX, { name: 'passwd', type: '2', linkname: '/etc/passwd' }], /absolute path/),
    t('symlink climbing out', () => [INDEX, { name: 'up', type: '2', linkname: '../../../../etc' }], /escapes the archive root/),
    t(
      'symlink chain escaping',
      () => [INDEX, { name: 'a', type: '2', linkname: '.' }, { name: 'b', type: '2', linkname: 'a/a/a/..' }],
      /escapes the archive root/,
    ),
    t(
      'file written through a symlinked directory',
      () => [INDEX, { name: 'd', type: '2', linkname: 'sub' }, { name: 'sub', type: '5' }, { name: 'd/evil.js', data: 'x' }],
      /inside symlink/,
    ),
    t('symlink loop', () => [INDEX, { name: 'a', type: '2', linkname: 'b' }, { name: 'b', type: '2', linkname: 'a' }], /loops/),
    t('hardlink to an absolute path', () => [INDEX, { name: 'shadow', type: '1', linkname: '/etc/shadow' }], /points outside the archive/),
    t('hardlink climbing out', () => [INDEX, { name: 'h', type: '1', linkname: '../../etc/passwd' }], /points outside the archive/),
    t('hardlink to nothing earlier', () => [{ name: 'h', type: '1', linkname: 'index.js' }, INDEX], /earlier in the archive/),
    t(
      'hardlink to a symlink out',
      () => [INDEX, { name: 's', type: '2', linkname: '../x' }, { name: 'h', type: '1', linkname: 's' }],
      /escapes|regular file/,
    ),
    t(
      'same name twice (file, then a symlink over it)',
      () => [INDEX, { name: 'other.js', data: 'x' }, { name: 'index.js', type: '2', linkname: 'other.js' }],
      /more than once/,
    ),
    z(
      'symlink to an absolute path',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'passwd', data: '/etc/passwd', mode: 0o120777, method: 0 },
      ],
      /absolute path/,
    ),
    z(
      'symlink climbing out',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'up', data: '../../..', mode: 0o120777, method: 0 },
      ],
      /escapes the archive root/,
    ),
    // --- special files
    t('character device', () => [INDEX, { name: 'null', type: '3' }], /character device/),
    t('block device', () => [INDEX, { name: 'disk', type: '4' }], /block device/),
    t('FIFO', () => [INDEX, { name: 'pipe', type: '6' }], /FIFO/),
    t('unknown entry type', () => [INDEX, { name: 'odd', type: 'Z' }], /unsupported/),
    z(
      'socket',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'sock', data: '', mode: 0o140777 },
      ],
      /socket/,
    ),
    z(
      'device',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'dev', data: '', mode: 0o020666 },
      ],
      /character device/,
    ),
    // --- bombs
    {
      what: 'tar.gz: a 4 GiB zero bomb in 4 MiB (concatenated gzip members)',
      filename: 'bomb.tar.gz',
      bytes: () => tgzZeroBomb(4096),
      error: /larger than 100 MiB/,
    },
    {
      what: 'tar.gz: 160 MiB of zeros declared as 1 KiB per entry',
      filename: 'bomb.tar.gz',
      bytes: () => tgzManySmallThenBig(),
      error: /larger than 100 MiB|truncated or corrupt/,
    },
    z(
      '200 MiB of zeros in one entry (honest headers)',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'zeros', raw: deflatedZeros(200) },
      ],
      /larger than 100 MiB/,
    ),
    z(
      '200 MiB of zeros declaring 1 KiB',
      () => [
        { name: 'index.js', data: 'x' },
        { name: 'zeros', raw: deflatedZeros(200), declaredSize: 1024 },
      ],
      /inflates to more than|larger than/,
    ),
    {
      what: 'zip: overlapping entries (50 entries sharing one 10 MiB kernel)',
      filename: 'bomb.zip',
      bytes: () => overlappingZipBomb(50, 10),
      error: /larger than 100 MiB|corrupt|more than once/,
    },
    // --- huge entry counts
    {
      what: 'tar.gz: 20,000 empty files',
      filename: 'many.tar.gz',
      bytes: () => tgz(Array.from({ length: 20_000 }, (_, i) => ({ name: `f${i}` }))),
      error: /more than 10000 entries/,
    },
    z('20,000 empty files', () => Array.from({ length: 20_000 }, (_, i) => ({ name: `f${i}`, data: '' })), /more than 10000 entries/),
    {
      what: 'tar.gz: 12,000 nested directories',
      filename: 'deep.tar.gz',
      bytes: () => tgz([INDEX, ...Array.from({ length: 12_000 }, (_, i) => ({ name: `d${i % 50}/${'x/'.repeat(i % 7)}${i}`, type: '5' }))]),
      error: /more than 10000 entries/,
    },
    // --- wrong magic
    {
      what: 'random bytes',
      filename: 'fn.tar.gz',
      bytes: () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)),
      error: /unknown magic/,
    },
    {
      what: 'a PNG named .tar.gz',
      filename: 'fn.tar.gz',
      bytes: () => Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(600)]),
      error: /unknown magic/,
    },
    {
      what: 'an ELF binary',
      filename: 'fn.zip',
      bytes: () => Buffer.concat([Buffer.from('7f454c46020101', 'hex'), Buffer.alloc(1000)]),
      error: /unknown magic/,
    },
    {
      what: 'bzip2',
      filename: 'fn.tar.bz2',
      bytes: () => Buffer.concat([Buffer.from('BZh91AY&SY'), Buffer.alloc(100, 1)]),
      error: /unknown magic/,
    },
    {
      what: 'xz',
      filename: 'fn.tar.xz',
      bytes: () => Buffer.concat([Buffer.from('fd377a585a00', 'hex'), Buffer.alloc(100, 1)]),
      error: /unknown magic/,
    },
    {
      what: '7z',
      filename: 'fn.7z',
      bytes: () => Buffer.concat([Buffer.from('377abcaf271c', 'hex'), Buffer.alloc(100, 1)]),
      error: /unknown magic/,
    },
    {
      what: 'gzip of plain text',
      filename: 'fn.tar.gz',
      bytes: () => gzipSync(Buffer.from('module.exports = () => 1;\n'.repeat(40))),
      error: /does not contain a tar|truncated or corrupt/,
    },
    {
      what: 'gzip of a zip',
      filename: 'fn.tar.gz',
      bytes: () => gzipSync(zip([{ name: 'index.js', data: 'x' }])),
      error: /does not contain a tar|truncated or corrupt/,
    },
    {
      what: 'PK then garbage',
      filename: 'fn.zip',
      bytes: () => Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(200, 0xee)]),
      error: /truncated or corrupt/,
    },
    { what: 'empty upload', filename: 'fn.tar.gz', bytes: () => Buffer.alloc(0), error: /empty/ },
    // --- truncated and corrupt
    {
      what: 'tar.gz cut in half',
      filename: 'fn.tar.gz',
      bytes: () => half(tgz([INDEX, { name: 'data.bin', data: Buffer.alloc(64 * KiB, 7) }])),
      error: /truncated or corrupt/,
    },
    {
      what: 'tar.gz with a broken gzip trailer',
      filename: 'fn.tar.gz',
      bytes: () => flipLast(tgz([INDEX])),
      error: /truncated or corrupt/,
    },
    {
      what: 'tar without its end marker, cut mid-file',
      filename: 'fn.tar',
      bytes: () => tar([INDEX, { name: 'b.js', data: Buffer.alloc(3000, 65) }], { end: false }).subarray(0, 2048),
      error: /truncated or corrupt/,
    },
    {
      what: 'tar with a bad header checksum',
      filename: 'fn.tar',
      bytes: () => tar([INDEX, { name: 'b.js', data: 'x', badChecksum: true }]),
      error: /truncated or corrupt|checksum/i,
    },
    {
      what: 'tar with a size field of garbage',
      filename: 'fn.tar',
      bytes: () => tar([INDEX, { name: 'b.js', data: 'x', rawSize: 'zzzz\0' }]),
      error: /truncated or corrupt/,
    },
    {
      what: 'zip cut in half (no central directory)',
      filename: 'fn.zip',
      bytes: () =>
        half(
          zip([
            { name: 'index.js', data: 'module.exports = () => 1;'.repeat(100) },
            { name: 'b.js', data: 'x'.repeat(5000) },
          ]),
        ),
      error: /truncated or corrupt/,
    },
    z(
      'entry failing its CRC',
      () => [{ name: 'index.js', data: 'x', raw: { bytes: deflateRawSync('hello'), uncompressed: 5, crc: 12345 } }],
      /CRC-32|corrupt/,
    ),
    z('encrypted entry', () => [{ name: 'index.js', data: 'x', flags: 1 }], /encrypted/),
    z('LZMA entry (method 14)', () => [{ name: 'index.js', data: 'xxxx', method: 14 }], /unsupported compression method/),
    {
      what: 'tar.gz holding only directories',
      filename: 'fn.tar.gz',
      bytes: () =>
        tgz([
          { name: 'a', type: '5' },
          { name: 'a/b', type: '5' },
        ]),
      error: /holds no files/,
    },
    { what: 'tar of zero blocks only', filename: 'fn.tar', bytes: () => Buffer.alloc(10 * 512), error: /holds no files/ },
    t(
      'pax header over 64 KiB',
      () => [INDEX, ...paxEntry({ name: 'b.js', data: 'x', paxPath: big(70 * KiB) })],
      /extended header larger than 64 KiB|longer than/,
    ),
    // --- names with odd bytes
    t('NUL inside a pax name', () => [INDEX, ...paxEntry({ name: 'b.js', data: 'x', paxPath: 'evil\0.js' })], /NUL byte/),
    t('newline in a name', () => [INDEX, { name: 'a\nb.js', data: 'x' }], /control character/),
    t('terminal escape in a name', () => [INDEX, { name: '\x1b[2J\x1b[31mred.js', data: 'x' }], /control character/),
    t('invalid UTF-8 in a name', () => [INDEX, { name: Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x6a, 0x73]), data: 'x' }], /not valid UTF-8/),
    t(
      'overlong UTF-8 dots (..) in a name',
      () => [INDEX, { name: Buffer.concat([Buffer.from([0xc0, 0xae, 0xc0, 0xae]), Buffer.from('/evil.js')]), data: 'x' }],
      /not valid UTF-8/,
    ),
    t(
      'right-to-left override in a name',
      () => [INDEX, { name: Buffer.from('evil\u202esj.txt', 'utf8'), data: 'x' }],
      /invisible or bidirectional/,
    ),
    t(
      'a name component over 255 bytes',
      () => [INDEX, ...paxEntry({ name: 'b.js', data: 'x', paxPath: big(300) })],
      /longer than 255 bytes/,
    ),
    t(
      'a 2,000-byte path',
      () => [INDEX, ...paxEntry({ name: 'b.js', data: 'x', paxPath: `${'abcdefgh/'.repeat(222)}x.js` })],
      /longer than 1024 bytes/,
    ),
    t(
      'a symlink target with a NUL',
      () => [INDEX, ...paxEntry({ name: 'l', type: '2', paxLink: 'index.js\0/../../etc' })],
      /NUL byte|truncated or corrupt/,
    ),
    z(
      'NUL in a name',
      () => [
        { name: 'index.js', data: 'x' },
        { name: Buffer.from('evil\0.js'), data: 'x' },
      ],
      /control character/,
    ),
    z(
      'invalid UTF-8 in a UTF-8 flagged name',
      () => [
        { name: 'index.js', data: 'x' },
        { name: Buffer.from([0x66, 0xc3, 0x28, 0x2e, 0x6a, 0x73]), utf8: true, data: 'x' },
      ],
      /not valid UTF-8/,
    ),
    z(
      'name of 2,000 bytes',
      () => [
        { name: 'index.js', data: 'x' },
        { name: `${'n/'.repeat(1000)}x`, data: 'x' },
      ],
      /longer than 1024 bytes/,
    ),
  ];
}

function half(b: Buffer): Buffer {
  return b.subarray(0, Math.floor(b.length / 2));
}

function flipLast(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c[c.length - 5] = (c[c.length - 5] ?? 0) ^ 0xff; // inside the CRC-32 of the gzip trailer
  return c;
}

/** 160 files of 1 MiB of zeros each: small as a .tar.gz, over the unpacked limit once counted. */
function tgzManySmallThenBig(): Buffer {
  const zeroMiB = gzipSync(Buffer.alloc(MiB), { level: 9 });
  const parts: Buffer[] = [];
  for (let i = 0; i < 160; i++) parts.push(gzipSync(tarHeader({ name: `z${i}.bin` }, MiB)), zeroMiB);
  parts.push(gzipSync(Buffer.alloc(1024)));
  return Buffer.concat(parts);
}

/**
 * Hostile in ways extraction neutralizes: setuid and world-writable modes, root ownership, a directory
 * without permissions, odd but valid names. The function reports what it sees of its own tree.
 */
export function neutralizedArchive(): Buffer {
  return tgz([
    {
      name: 'index.js',
      mode: 0o4777,
      uid: 0,
      data: `const fs = require('fs');
module.exports = () => {
  const mode = (f) => (fs.statSync(__dirname + '/' + f).mode & 0o7777).toString(8);
  return { index: mode('index.js'), tool: mode('tool.sh'), locked: mode('locked'), secret: fs.readFileSync(__dirname + '/locked/secret.txt', 'utf8'), names: fs.readdirSync(__dirname).sort() };
};
`,
    },
    { name: 'tool.sh', mode: 0o6755, uid: 0, data: '#!/bin/sh\necho hi\n' },
    { name: 'locked', type: '5', mode: 0o000 },
    { name: 'locked/secret.txt', mode: 0o000, data: 'readable after all' },
    { name: 'espa\u00f1ol \u65e5\u672c.txt', data: 'ok' },
  ]);
}
