// Tests of pack.ts and the ignore engine it uses: a packed directory round-trips through extraction,
// minus what the ignore lines (and the built-in .git, node_modules/.cache) leave out.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { extractArchive } from '../../common/archive/extract.js';
import { detectFormat } from '../../common/archive/format.js';
import { makeProject, modeOf, tmp } from '../../common/archive/testing.js';
import { packDirectory } from './pack.js';

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
