// Packing a directory into the .tar.gz that `zfaas deploy` uploads (and the tests deploy). It pulls
// in tar, so the CLI loads it only when it has a directory to pack.
import type { Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { ReadEntry, create as tarCreate } from 'tar';
import { ignoreMatcher } from './ignore.js';

const ALWAYS_IGNORE = ['.git', '**/node_modules/.cache'];

function isDirStat(s: Stats | ReadEntry): boolean {
  return s instanceof ReadEntry ? s.type === 'Directory' : s.isDirectory();
}

/**
 * Packs dir's contents into a .tar.gz with the entries at the archive root ("index.js", not
 * "dir/index.js"). `ignore` takes .gitignore-style lines ("name", "dir/", "*.ext", "**\/x", "/x",
 * "!keep"); .git and node_modules/.cache are always left out. Owners are not recorded (portable).
 */
export async function packDirectory(dir: string, opts: { ignore?: string[] } = {}): Promise<Buffer> {
  const root = path.resolve(dir);
  if (!(await stat(root)).isDirectory()) throw new Error(`packDirectory: ${dir} is not a directory`);
  const always = ignoreMatcher(ALWAYS_IGNORE);
  const user = ignoreMatcher(opts.ignore ?? []);
  const ignored = (rel: string, isDir: boolean): boolean => always(rel, isDir) || user(rel, isDir);

  const top: string[] = [];
  for (const name of (await readdir(root)).sort()) {
    if (!ignored(name, (await lstat(path.join(root, name))).isDirectory())) top.push(name);
  }
  if (top.length === 0) throw new Error(`packDirectory: nothing to pack in ${dir} (empty, or everything is ignored)`);

  const pack = tarCreate(
    {
      gzip: true,
      cwd: root,
      portable: true,
      filter: (p: string, s: Stats | ReadEntry) => !ignored(p.split(path.sep).join('/'), isDirStat(s)),
    },
    top,
  );
  return pack.concat();
}
