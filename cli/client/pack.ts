// What `zfaas deploy` uploads: an archive as it is, or a directory packed into a .tar.gz (entries at the
// archive root) leaving out what its .zfaasignore lists.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError, errText } from './errors.js';

export const IGNORE_FILE = '.zfaasignore';

export interface Upload {
  bytes: Buffer;
  filename: string;
  /** True when we packed a directory (false: an archive uploaded as is). */
  packed: boolean;
}

/** gitignore-like lines: blank lines and # comments dropped, "\#" keeps a leading hash. */
export function ignoreLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => (l.startsWith('\\#') ? l.slice(1) : l));
}

async function readIgnore(dir: string): Promise<string[]> {
  try {
    return ignoreLines(await readFile(join(dir, IGNORE_FILE), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError(`cannot read ${join(dir, IGNORE_FILE)}: ${errText(e)}`);
  }
}

export async function loadUpload(path: string, name: string): Promise<Upload> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `${path}: no such file or directory` : `cannot read ${path}: ${errText(e)}`);
  }
  // Loaded on demand: tar and yauzl are only worth their start-up time when deploying.
  const { detectFormat, packDirectory } = await import('../../common/archive.js');
  if (isDir) {
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
