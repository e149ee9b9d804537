// A built tree as it travels between nodes: what the builder packs is what another node unpacks (files,
// folders, symlinks kept as links), a tree larger than the limit packed is refused, and an archive that
// would write outside the folder it is unpacked into is refused.
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { create as tarCreate } from 'tar';
import { afterEach, describe, expect, it } from 'vitest';
import { packTree, TreeTooLarge, unpackTree } from './built-tree.js';

const dirs: string[] = [];
const temp = async (): Promise<string> => {
  const d = await mkdtemp(join(tmpdir(), 'zfaas-built-tree-'));
  dirs.push(d);
  return d;
};
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('a built tree', () => {
  it('unpacks on another node as the builder packed it, symlinks included', async () => {
    const built = await temp();
    await mkdir(join(built, 'node_modules', 'greeting'), { recursive: true });
    await writeFile(join(built, 'node_modules', 'greeting', 'index.js'), "module.exports = 'hi';\n");
    await writeFile(join(built, 'index.js'), "module.exports = () => require('greeting');\n");
    await symlink('node_modules/greeting/index.js', join(built, 'link.js'));
    const packed = await packTree(built, 1024 * 1024);
    const elsewhere = await temp();
    await unpackTree(packed, elsewhere);
    expect(await readFile(join(elsewhere, 'node_modules', 'greeting', 'index.js'), 'utf8')).toBe("module.exports = 'hi';\n");
    expect((await lstat(join(elsewhere, 'link.js'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(elsewhere, 'link.js'))).toBe('node_modules/greeting/index.js');
  });

  it('is refused when it packs to more than the limit', async () => {
    const built = await temp();
    await writeFile(join(built, 'noise.bin'), randomBytes(256 * 1024)); // random: gzip cannot shrink it
    await expect(packTree(built, 64 * 1024)).rejects.toBeInstanceOf(TreeTooLarge);
  });

  it('never writes outside the folder it is unpacked into', async () => {
    const src = await temp();
    await writeFile(join(src, 'x.txt'), 'pwned');
    const chunks: Buffer[] = [];
    // An entry named ../escaped.txt, as a forged archive in the DB service would hold it.
    const pack = tarCreate({ gzip: true, cwd: src, portable: true, onWriteEntry: (e) => void (e.path = '../escaped.txt') }, ['x.txt']);
    for await (const c of pack) chunks.push(c as Buffer);
    const root = await temp();
    const into = join(root, 'tree');
    await mkdir(into);
    await expect(unpackTree(Buffer.concat(chunks), into)).rejects.toThrow(/\.\./);
    await expect(lstat(join(root, 'escaped.txt'))).rejects.toThrow(/ENOENT/);
  });
});
