// Unpacking a validated archive into a directory: a second walk re-applying the same checks, writing
// only plain directories and files (fixed modes, O_EXCL|O_NOFOLLOW), links last, and undoing a
// half-done extraction when anything fails.
import { constants as fsConstants } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, rm, symlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Checker } from './checker.js';
import { inspectArchive, walkArchive } from './inspect.js';
import { normalizeName, parentOf } from './names.js';
import { DEFAULT_LIMITS, type ArchiveLimits, type ArchiveSummary } from './types.js';

function inside(root: string, rel: string): string {
  const abs = rel === '' ? root : path.join(root, ...rel.split('/'));
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  if (abs !== root && !abs.startsWith(prefix)) throw new Error(`internal error: ${rel} resolves outside ${root}`);
  return abs;
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

async function writeFully(fh: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Validates the archive (inspectArchive), then extracts it into destDir, which is created if missing
 * and must be empty if it exists. Directories get 0755, files 0644 (0755 if the archive set any exec
 * bit); ownership, timestamps and other modes from the archive are ignored. If writing fails half
 * way, destDir is emptied again (and removed if this call created it).
 */
export async function extractArchive(buf: Buffer, destDir: string, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<ArchiveSummary> {
  const root = path.resolve(destDir);
  let present: string[] | undefined;
  try {
    present = await readdir(root);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (present && present.length > 0) throw new Error(`extractArchive: destination ${root} is not empty`);

  const summary = await inspectArchive(buf, limits);
  const format = summary.format;

  // mkdir returns the topmost directory it had to create (undefined if root already existed).
  const created = await mkdir(root, { recursive: true, mode: 0o755 });
  try {
    const checker = new Checker(limits);
    const dirs = new Set<string>(['']);
    const hardlinks: { rel: string; target: string }[] = [];
    const symlinks: { rel: string; target: string }[] = [];

    const ensureDir = async (rel: string): Promise<void> => {
      if (dirs.has(rel)) return;
      await ensureDir(parentOf(rel));
      const abs = inside(root, rel);
      try {
        await mkdir(abs, { mode: 0o755 });
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
        if (!(await lstat(abs)).isDirectory()) throw new Error(`extractArchive: ${abs} exists and is not a directory`);
      }
      await chmod(abs, 0o755);
      dirs.add(rel);
    };

    await walkArchive(buf, format, limits, async (item) => {
      const rel = checker.add(item);
      switch (item.kind) {
        case 'dir':
          await ensureDir(rel);
          return;
        case 'symlink':
          symlinks.push({ rel, target: item.target ?? '' });
          return;
        case 'hardlink':
          hardlinks.push({ rel, target: normalizeName(item.target ?? '', 'target') });
          return;
        case 'file': {
          await ensureDir(parentOf(rel));
          const mode = item.exec ? 0o755 : 0o644;
          // O_EXCL + O_NOFOLLOW: never reuse or follow anything already there.
          const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
          const fh = await open(inside(root, rel), flags, mode);
          try {
            checker.reserve(item.declaredSize);
            if (item.body) {
              for await (const chunk of item.body) {
                checker.addBytes(chunk.length);
                await writeFully(fh, chunk);
              }
            }
            await fh.chmod(mode); // the umask does not get a say
          } finally {
            await fh.close();
          }
          return;
        }
      }
    });
    const done = checker.finish(format);

    // Links last: by now every regular file and directory is in place.
    for (const { rel, target } of hardlinks) {
      await ensureDir(parentOf(rel));
      await link(inside(root, target), inside(root, rel));
    }
    for (const { rel, target } of symlinks) {
      await ensureDir(parentOf(rel));
      await symlink(target, inside(root, rel));
    }
    return done;
  } catch (err) {
    await undoExtraction(root, created);
    throw err;
  }
}

/** Best effort: removes what a failed extraction wrote (and the directories it created). */
async function undoExtraction(root: string, created: string | undefined): Promise<void> {
  try {
    if (created) {
      await rm(created, { recursive: true, force: true });
      return;
    }
    for (const name of await readdir(root)) await rm(path.join(root, name), { recursive: true, force: true });
  } catch {
    // the original error is the one worth reporting
  }
}
