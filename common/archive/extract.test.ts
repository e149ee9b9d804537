// Tests of extract.ts: good .tar.gz, .tar and .zip archives extracted with normalized modes and their
// links recreated, and a destination that is not empty.
import { readFileSync, readdirSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { extractArchive } from './extract.js';
import { detectFormat } from './format.js';
import { inspectArchive } from './inspect.js';
import { makeProject, modeOf, pyTar, pyZip, tarOf, tmp, walk } from './testing.js';
import { ArchiveError } from './types.js';

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
