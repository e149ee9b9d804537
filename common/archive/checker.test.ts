// Tests of checker.ts: refusals that need the whole tree (duplicates, links that escape or loop,
// entries below links), the byte and entry limits, and what the summary lists.
import { describe, expect, it } from 'vitest';
import { inspectArchive } from './inspect.js';
import { SMALL, expectRefused, pyTar, pyZip } from './testing.js';
import { DEFAULT_LIMITS } from './types.js';

describe('refusals: the tree', () => {
  it('refuses duplicate entries and entries below a file', async () => {
    await expectRefused(pyTar(`f('a'); f('./a')`), /^entry \.\/a appears more than once in the archive$/);
    await expectRefused(pyTar(`f('a'); f('a/b')`), /^entry a\/b is inside a, which is not a directory$/);
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
});

describe('refusals: sizes and counts', () => {
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

  it('refuses empty archives', async () => {
    await expectRefused(pyTar(''), /^archive holds no files$/);
    await expectRefused(pyTar('', 'w'), /^archive holds no files$/);
    await expectRefused(pyZip(''), /^archive holds no files$/);
    await expectRefused(pyTar(`d('only-a-dir')`), /^archive holds no files$/);
    await expectRefused(pyZip(`d('only-a-dir/')`), /^archive holds no files$/);
  });
});

describe('limits', () => {
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

  it('has the documented defaults', () => {
    expect(DEFAULT_LIMITS).toEqual({ maxTotalBytes: 100 * 1024 * 1024, maxEntries: 10_000 });
  });
});
