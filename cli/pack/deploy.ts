// What `zfaas deploy` uploads: an archive as it is, or a directory packed into a .tar.gz (entries at the
// archive root) leaving out what its .zfaasignore lists; and which runtime a directory looks written for.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { detectFormat } from '../../common/archive/format.js';
import { UsageError, errText } from '../client/errors.js';
import { IGNORE_FILE, readIgnore } from './ignore.js';

export interface Upload {
  bytes: Buffer;
  filename: string;
  /** True when we packed a directory (false: an archive uploaded as is). */
  packed: boolean;
}

export async function loadUpload(path: string, name: string): Promise<Upload> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `${path}: no such file or directory` : `cannot read ${path}: ${errText(e)}`);
  }
  if (isDir) {
    // Loaded on demand: tar is only worth its start-up time when there is a directory to pack.
    const { packDirectory } = await import('./pack.js');
    const ignore = [...(await readIgnore(path)), `/${IGNORE_FILE}`];
    try {
      return { bytes: await packDirectory(path, { ignore }), filename: `${name}.tar.gz`, packed: true };
    } catch (e) {
      throw new UsageError(errText(e).replace(/^packDirectory: /, 'cannot pack: '));
    }
  }
  const bytes = await readFile(path);
  if (!detectFormat(bytes)) throw new UsageError(`${path} is not a .tar.gz, .tar or .zip archive (or give a directory to pack)`);
  return { bytes, filename: basename(path), packed: false };
}

/** The built-in runtime a directory is written for, from its usual entry files; undefined if unclear. */
export async function guessRuntime(path: string): Promise<'node' | 'python' | undefined> {
  const has = async (f: string): Promise<boolean> =>
    stat(join(path, f)).then(
      (s) => s.isFile(),
      () => false,
    );
  try {
    if (!(await stat(path)).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  const node = (await has('package.json')) || (await has('index.js'));
  const python = (await has('handler.py')) || (await has('main.py')) || (await has('requirements.txt'));
  if (node === python) return undefined;
  return node ? 'node' : 'python';
}
