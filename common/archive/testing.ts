// Helpers for the archive tests (and the CLI packer's): archives built by python's tarfile and
// zipfile (which write what our walkers refuse), a small project on disk, temporary directories
// removed after each test, and expectRefused, which checks that both passes refuse an archive and
// leave nothing behind. A module of its own (not a .test.ts) so every test file can import it.
import { execFileSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create as tarCreate } from 'tar';
import { afterEach, expect } from 'vitest';
import { extractArchive } from './extract.js';
import { inspectArchive } from './inspect.js';
import { ArchiveError, type ArchiveLimits } from './types.js';

const tmpDirs: string[] = [];

export function tmp(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'zfaas-archive-test-'));
  tmpDirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Runs a python3 script that writes an archive to stdout. */
export function python(script: string): Buffer {
  return execFileSync('python3', ['-c', script], { maxBuffer: 256 * 1024 * 1024 });
}

/** A tar built with python's tarfile; `body` uses f(), d(), sym(), hard(), dev(), fifo(). */
export function pyTar(body: string, mode: 'w:gz' | 'w' = 'w:gz'): Buffer {
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
export function pyZip(body: string): Buffer {
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

export async function tarOf(dir: string, gzip: boolean, entries: string[] = ['.']): Promise<Buffer> {
  return tarCreate({ gzip, cwd: dir, portable: true }, entries).concat();
}

/** A little project on disk: index.js, lib/util.js, bin/run.sh (executable). */
export function makeProject(): string {
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
export function walk(dir: string, prefix = ''): string[] {
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
export function flip(buf: Buffer, offset: number): void {
  buf.writeUInt8(buf.readUInt8(offset) ^ 0xff, offset);
}

export function modeOf(p: string): number {
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
export async function expectRefused(buf: Buffer, message: RegExp, limits?: ArchiveLimits): Promise<void> {
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

export const SMALL: ArchiveLimits = { maxTotalBytes: 64 * 1024, maxEntries: 5 };
