// Tests of names.ts: entry names and symlink targets refused on their own, from a tar and a zip.
import { describe, it } from 'vitest';
import { expectRefused, pyTar, pyZip } from './testing.js';

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
});

describe('refusals: link targets', () => {
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
});
