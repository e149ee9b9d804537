import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { create as tarCreate } from 'tar';
import {
  ArchiveError,
  DEFAULT_LIMITS,
  detectFormat,
  extractArchive,
  inspectArchive,
  packDirectory,
  type ArchiveLimits,
} from './archive.js';

// ---------------------------------------------------------------------------------------------
// helpers

const tmpDirs: string[] = [];

function tmp(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'zfaas-archive-test-'));
  tmpDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs a python3 script that writes an archive to stdout. */
function python(script: string): Buffer {
  return execFileSync('python3', ['-c', script], { maxBuffer: 256 * 1024 * 1024 });
}

/** A tar built with python's tarfile; `body` uses f(), d(), sym(), hard(), dev(), fifo(). */
function pyTar(body: string, mode: 'w:gz' | 'w' = 'w:gz'): Buffer {
  return python(`
import io, sys, tarfile
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode=${JSON.stringify(mode)}, format=tarfile.PAX_FORMAT)
def info(name, type, **kw):
    ti = tarfile.TarInfo(name)
    ti.type = type
    for k, v in kw.items(): setattr(ti, k, v)
    return ti
def f(name, data=b'hi\\n', mode=0o644):
    ti = info(name, tarfile.REGTYPE, mode=mode, size=len(data))
    t.addfile(ti, io.BytesIO(data))
def d(name): t.addfile(info(name, tarfile.DIRTYPE, mode=0o755))
def sym(name, target): t.addfile(info(name, tarfile.SYMTYPE, linkname=target))
def hard(name, target): t.addfile(info(name, tarfile.LNKTYPE, linkname=target))
def dev(name): t.addfile(info(name, tarfile.CHRTYPE, devmajor=1, devminor=3))
def fifo(name): t.addfile(info(name, tarfile.FIFOTYPE))
${body}
t.close()
sys.stdout.buffer.write(buf.getvalue())
`);
}

/** A zip built with python's zipfile; `body` uses f(), d(), sym(), raw(ZipInfo, data). */
function pyZip(body: string): Buffer {
  return python(`
import io, sys, zipfile
buf = io.BytesIO()
z = zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED)
def zi(name, mode):
    i = zipfile.ZipInfo(name)
    i.create_system = 3
    i.external_attr = mode << 16
    i.compress_type = zipfile.ZIP_DEFLATED
    return i
def f(name, data=b'hi\\n', mode=0o100644): z.writestr(zi(name, mode), data)
def d(name): z.writestr(zi(name, 0o040755), b'')
def sym(name, target): z.writestr(zi(name, 0o120777), target)
${body}
z.close()
sys.stdout.buffer.write(buf.getvalue())
`);
}

async function tarOf(dir: string, gzip: boolean, entries: string[] = ['.']): Promise<Buffer> {
  return tarCreate({ gzip, cwd: dir, portable: true }, entries).concat();
}

/** A little project on disk: index.js, lib/util.js, bin/run.sh (executable). */
function makeProject(): string {
  const dir = tmp();
  writeFileSync(path.join(dir, 'index.js'), 'module.exports = () => 42;\n');
  mkdirSync(path.join(dir, 'lib'));
  writeFileSync(path.join(dir, 'lib', 'util.js'), 'exports.x = 1;\n');
  mkdirSync(path.join(dir, 'bin'));
  writeFileSync(path.join(dir, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(path.join(dir, 'bin', 'run.sh'), 0o775);
  return dir;
}

/** Every path under dir (relative, sorted), without following symlinks. */
function walk(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const rel = prefix ? `${prefix}/${name}` : name;
    out.push(rel);
    const st = lstatSync(path.join(dir, name));
    if (st.isDirectory()) out.push(...walk(path.join(dir, name), rel));
  }
  return out;
}

/** Inverts the bits of one byte. */
function flip(buf: Buffer, offset: number): void {
  buf.writeUInt8(buf.readUInt8(offset) ^ 0xff, offset);
}

function modeOf(p: string): number {
  return lstatSync(p).mode & 0o7777;
}

async function refusal(promise: Promise<unknown>): Promise<ArchiveError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ArchiveError);
  return err as ArchiveError;
}

/**
 * Expects both inspectArchive and extractArchive to refuse `buf` with a message matching `message`,
 * and extraction to leave nothing behind: not the destination, not anything next to it. The
 * destination is <base>/deep/dest, so every relative escape the tests try ("../evil", "a/../../x",
 * a link to "../../x", a hardlink to "../outside") would land inside <base>, which must stay empty.
 */
async function expectRefused(buf: Buffer, message: RegExp, limits?: ArchiveLimits): Promise<void> {
  const inspected = await refusal(inspectArchive(buf, limits));
  expect(inspected.message).toMatch(message);

  const base = tmp();
  const dest = path.join(base, 'deep', 'dest');
  const extracted = await refusal(extractArchive(buf, dest, limits));
  expect(extracted.message).toMatch(message);
  expect(readdirSync(base)).toEqual([]);

  // An existing, empty destination stays empty.
  mkdirSync(dest, { recursive: true });
  await refusal(extractArchive(buf, dest, limits));
  expect(walk(base)).toEqual(['deep', 'deep/dest']);
}

const SMALL: ArchiveLimits = { maxTotalBytes: 64 * 1024, maxEntries: 5 };

// ---------------------------------------------------------------------------------------------

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

describe('good archives', () => {
  it('extracts a .tar.gz with ./-prefixed names, normalized modes, and lists files', async () => {
    const src = makeProject();
    const buf = await tarOf(src, true);
    expect(detectFormat(buf)).toBe('tar.gz');

    const summary = await inspectArchive(buf);
    expect(summary.format).toBe('tar.gz');
    expect([...summary.files].sort()).toEqual(['bin/run.sh', 'index.js', 'lib/util.js']);
    expect(summary.entries).toBe(6); // ./, index.js, lib/, lib/util.js, bin/, bin/run.sh
    expect(summary.totalBytes).toBe(27 + 15 + 18);

    const dest = path.join(tmp(), 'fn');
    expect(await extractArchive(buf, dest)).toEqual(summary);
    expect(walk(dest)).toEqual(['bin', 'bin/run.sh', 'index.js', 'lib', 'lib/util.js']);
    expect(readFileSync(path.join(dest, 'index.js'), 'utf8')).toBe('module.exports = () => 42;\n');
    expect(modeOf(path.join(dest, 'index.js'))).toBe(0o644);
    expect(modeOf(path.join(dest, 'bin', 'run.sh'))).toBe(0o755);
    expect(modeOf(path.join(dest, 'lib'))).toBe(0o755);
  });

  it('extracts a plain .tar', async () => {
    const buf = await tarOf(makeProject(), false, ['index.js', 'lib']);
    expect(detectFormat(buf)).toBe('tar');
    const dest = tmp();
    const summary = await extractArchive(buf, dest);
    expect(summary).toMatchObject({ format: 'tar', entries: 3, files: ['index.js', 'lib/util.js'] });
    expect(walk(dest)).toEqual(['index.js', 'lib', 'lib/util.js']);
  });

  it('extracts a .zip with directories, an executable and a valid symlink', async () => {
    const buf = pyZip(`
d('src/')
f('src/main.py', b'print(1)\\n')
f('./run.sh', b'#!/bin/sh\\n', 0o100755)
f('weird-mode.txt', b'x', 0o100600)
sym('src/link.py', 'main.py')
sym('top', 'src/../src')
`);
    expect(detectFormat(buf)).toBe('zip');
    const dest = tmp();
    const summary = await extractArchive(buf, dest);
    expect(summary).toMatchObject({ format: 'zip', entries: 6, totalBytes: 9 + 10 + 1 });
    expect(summary.files).toEqual(['src/main.py', 'run.sh', 'weird-mode.txt']);
    expect(walk(dest)).toEqual(['run.sh', 'src', 'src/link.py', 'src/main.py', 'top', 'weird-mode.txt']);
    expect(modeOf(path.join(dest, 'run.sh'))).toBe(0o755);
    expect(modeOf(path.join(dest, 'weird-mode.txt'))).toBe(0o644);
    expect(readlinkSync(path.join(dest, 'src', 'link.py'))).toBe('main.py');
    expect(readFileSync(path.join(dest, 'top', 'link.py'), 'utf8')).toBe('print(1)\n');
  });

  it('recreates validated symlinks and hardlinks from a tar', async () => {
    const buf = pyTar(`
f('./lib/real.js', b'real')
sym('./link.js', 'lib/real.js')
sym('lib/up', '..')
sym('lib/self', '../lib')
hard('copy.js', './lib/real.js')
`);
    const dest = tmp();
    const summary = await extractArchive(buf, dest);
    expect(summary.files).toEqual(['lib/real.js', 'copy.js']);
    expect(readlinkSync(path.join(dest, 'link.js'))).toBe('lib/real.js');
    expect(readFileSync(path.join(dest, 'link.js'), 'utf8')).toBe('real');
    expect(statSync(path.join(dest, 'copy.js')).ino).toBe(statSync(path.join(dest, 'lib', 'real.js')).ino);
    const root = realpathSync(dest);
    for (const rel of walk(dest)) {
      expect(realpathSync(path.join(dest, rel)).startsWith(root)).toBe(true);
    }
  });

  it('accepts up to the limits exactly', async () => {
    const buf = pyTar(`
for i in range(4): f('f%d' % i, b'x' * 1024)
`);
    const summary = await inspectArchive(buf, { maxTotalBytes: 4096, maxEntries: 4 });
    expect(summary).toMatchObject({ entries: 4, totalBytes: 4096 });
  });

  it('lists at most 1000 files', async () => {
    const buf = pyTar(`
for i in range(1200): f('f/%04d' % i, b'')
`);
    const summary = await inspectArchive(buf);
    expect(summary.entries).toBe(1200);
    expect(summary.files).toHaveLength(1000);
  });
});

describe('refusals: names', () => {
  it('refuses ../evil', async () => {
    await expectRefused(pyTar(`f('index.js'); f('../evil')`), /^entry \.\.\/evil escapes the archive root$/);
    await expectRefused(pyZip(`f('index.js'); f('../evil')`), /^entry \.\.\/evil escapes the archive root$/);
  });

  it('refuses /etc/passwd', async () => {
    await expectRefused(pyTar(`f('index.js'); f('/etc/passwd')`), /^entry \/etc\/passwd is an absolute path$/);
    await expectRefused(pyZip(`f('index.js'); f('/etc/passwd')`), /^entry \/etc\/passwd is an absolute path$/);
  });

  it('refuses a/../../x', async () => {
    await expectRefused(pyTar(`f('a/../../x')`), /^entry a\/\.\.\/\.\.\/x escapes the archive root$/);
    await expectRefused(pyZip(`f('a/../../x')`), /escapes the archive root/);
  });

  it('refuses Windows-style absolute and backslash paths', async () => {
    await expectRefused(pyTar(`f('C:/x')`), /^entry C:\/x is an absolute path$/);
    await expectRefused(pyTar(`f('\\\\server\\\\x')`), /is an absolute path$/);
    await expectRefused(pyTar(`f('..\\\\evil')`), /escapes the archive root$/);
    await expectRefused(pyZip(`f('..\\\\evil')`), /escapes the archive root$/);
  });

  it('refuses control characters and overlong names', async () => {
    await expectRefused(pyTar(`f('bad\\x01name')`), /^entry "bad\\u0001name" has a control character in its name$/);
    // zip names only keep control characters when UTF-8 flagged (in CP437 they decode to glyphs).
    await expectRefused(pyZip(`f('b\\u00e4d\\nname')`), /^entry "bäd\\nname" has a control character in its name$/);
    await expectRefused(pyTar(`f('a' * 1025)`), /^entry name is longer than 1024 bytes/);
  });

  it('refuses duplicate entries and entries below a file', async () => {
    await expectRefused(pyTar(`f('a'); f('./a')`), /^entry \.\/a appears more than once in the archive$/);
    await expectRefused(pyTar(`f('a'); f('a/b')`), /^entry a\/b is inside a, which is not a directory$/);
  });
});

describe('refusals: links and special files', () => {
  it('refuses a symlink to /etc/passwd', async () => {
    await expectRefused(
      pyTar(`f('index.js'); sym('passwd', '/etc/passwd')`),
      /^symlink passwd -> \/etc\/passwd points to an absolute path$/,
    );
    await expectRefused(
      pyZip(`f('index.js'); sym('passwd', '/etc/passwd')`),
      /^symlink passwd -> \/etc\/passwd points to an absolute path$/,
    );
  });

  it('refuses a symlink ../../x', async () => {
    await expectRefused(pyTar(`f('index.js'); sym('a/link', '../../x')`), /^symlink a\/link -> \.\.\/\.\.\/x escapes the archive root$/);
    await expectRefused(pyZip(`f('index.js'); sym('link', '../x')`), /^symlink link -> \.\.\/x escapes the archive root$/);
  });

  it('refuses escapes through a chain of symlinks', async () => {
    // "a" -> "." is harmless alone, and "b" -> "a/.." looks like "." lexically, but really is "./..".
    await expectRefused(pyTar(`f('index.js'); sym('a', '.'); sym('b', 'a/..')`), /^symlink b -> a\/\.\. escapes the archive root$/);
    // Same, with the links in the other order, in nested directories, and in a zip.
    await expectRefused(
      pyTar(`f('index.js'); sym('x/b', '../y/a/../..'); sym('y/a', '../x')`),
      /^symlink x\/b -> .* escapes the archive root$/,
    );
    await expectRefused(pyZip(`f('index.js'); sym('b', 'a/..'); sym('a', '.')`), /^symlink b -> a\/\.\. escapes the archive root$/);
    // Loops are refused too.
    await expectRefused(pyTar(`f('index.js'); sym('a', 'b'); sym('b', 'a')`), /^symlink a -> b loops or goes through too many symlinks$/);
  });

  it('refuses entries that would be written through a symlink', async () => {
    await expectRefused(pyTar(`d('sub'); sym('lnk', 'sub'); f('lnk/evil.txt')`), /^entry lnk\/evil\.txt is inside symlink lnk$/);
    // The file first, the link after: still refused.
    await expectRefused(pyTar(`f('lnk/evil.txt'); sym('lnk', 'sub')`), /^entry lnk\/evil\.txt is inside symlink lnk$/);
  });

  it('refuses a hardlink to an outside path', async () => {
    await expectRefused(pyTar(`f('index.js'); hard('h', '/etc/passwd')`), /^hardlink h -> \/etc\/passwd points outside the archive$/);
    await expectRefused(pyTar(`f('index.js'); hard('h', '../outside')`), /^hardlink h -> \.\.\/outside points outside the archive$/);
    await expectRefused(
      pyTar(`hard('h', 'later.js'); f('later.js')`),
      /^hardlink h -> later\.js does not point to a regular file earlier in the archive$/,
    );
  });

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

describe('refusals: sizes and counts', () => {
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

  it('counts real bytes against the limit', async () => {
    await expectRefused(pyTar(`f('a', b'x' * 40000); f('b', b'x' * 40000)`), /^archive is larger than 64 KiB unpacked$/, SMALL);
    await expectRefused(pyZip(`f('a', b'x' * 40000); f('b', b'x' * 40000)`), /^archive is larger than 64 KiB unpacked$/, SMALL);
    await expectRefused(pyTar(`f('a', b'x' * 1001)`), /^archive is larger than 1000 bytes unpacked$/, {
      maxTotalBytes: 1000,
      maxEntries: 10,
    });
  });

  it('refuses too many entries', async () => {
    await expectRefused(pyTar(`for i in range(6): f('f%d' % i)`), /^archive has more than 5 entries$/, SMALL);
    await expectRefused(pyZip(`for i in range(6): f('f%d' % i)`), /^archive has more than 5 entries$/, SMALL);
    await expectRefused(pyTar(`for i in range(6): d('d%d' % i)`), /^archive has more than 5 entries$/, SMALL);
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

  it('refuses wrong magic', async () => {
    await expectRefused(Buffer.from('hello'), /^not a \.tar\.gz, \.tar or \.zip archive \(unknown magic bytes\)$/);
    await expectRefused(Buffer.alloc(0), /^archive is empty \(0 bytes\)$/);
  });

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

  it('refuses empty archives', async () => {
    await expectRefused(pyTar(''), /^archive holds no files$/);
    await expectRefused(pyTar('', 'w'), /^archive holds no files$/);
    await expectRefused(pyZip(''), /^archive holds no files$/);
    await expectRefused(pyTar(`d('only-a-dir')`), /^archive holds no files$/);
    await expectRefused(pyZip(`d('only-a-dir/')`), /^archive holds no files$/);
  });
});

describe('extractArchive destination', () => {
  it('refuses a non-empty destination with a plain Error', async () => {
    const dest = tmp();
    writeFileSync(path.join(dest, 'x'), '');
    const err = await extractArchive(await tarOf(makeProject(), true), dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(ArchiveError);
    expect(readdirSync(dest)).toEqual(['x']);
  });
});

describe('packDirectory', () => {
  it('round-trips through extractArchive, honoring ignore patterns', async () => {
    const src = tmp();
    const files: Record<string, string> = {
      'index.js': 'main',
      'lib/a.js': 'a',
      'lib/a.test.js': 'test',
      'lib/deep/b.test.js': 'test',
      '.git/config': 'git',
      'node_modules/.cache/junk': 'cache',
      'node_modules/dep/index.js': 'dep',
      'secret.env': 'key',
      'build/out.js': 'out',
      'src/build/keep.js': 'nested build is a dir too, dir/ matches it',
      'docs/readme.md': 'anchored',
      'sub/docs/readme.md': 'not anchored',
      'keep.log': 'kept by negation',
      'other.log': 'ignored',
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
      writeFileSync(path.join(src, rel), content);
    }
    chmodSync(path.join(src, 'index.js'), 0o755);

    const buf = await packDirectory(src, { ignore: ['# comment', '*.env', 'build/', '**/*.test.js', '*.log', '!keep.log', '/docs', ''] });
    expect(detectFormat(buf)).toBe('tar.gz');
    const names = gunzipSync(buf).toString('latin1');
    expect(names).not.toContain(path.basename(src)); // entries sit at the archive root

    const dest = tmp();
    const summary = await extractArchive(buf, dest);
    expect([...summary.files].sort()).toEqual(['index.js', 'keep.log', 'lib/a.js', 'node_modules/dep/index.js', 'sub/docs/readme.md']);
    expect(readFileSync(path.join(dest, 'lib', 'a.js'), 'utf8')).toBe('a');
    expect(modeOf(path.join(dest, 'index.js'))).toBe(0o755);
    expect(existsSync(path.join(dest, '.git'))).toBe(false);
    expect(existsSync(path.join(dest, 'node_modules', '.cache'))).toBe(false);
  });

  it('keeps symlinks as symlinks', async () => {
    const src = makeProject();
    execFileSync('ln', ['-s', 'lib/util.js', path.join(src, 'alias.js')]);
    const dest = tmp();
    await extractArchive(await packDirectory(src), dest);
    expect(readlinkSync(path.join(dest, 'alias.js'))).toBe('lib/util.js');
  });

  it('refuses an empty directory', async () => {
    await expect(packDirectory(tmp())).rejects.toThrow(/nothing to pack/);
  });
});

describe('limits', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxTotalBytes: 100 * 1024 * 1024, maxEntries: 10_000 });
  });
});
