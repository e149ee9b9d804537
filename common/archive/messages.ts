// Refusals that more than one module words, so that a tar and a zip with the same fault get the
// same message.
import { show } from './names.js';
import { ArchiveError, KiB, MiB, type ArchiveLimits } from './types.js';

export function formatBytes(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

export function tooLarge(limits: ArchiveLimits): ArchiveError {
  return new ArchiveError(`archive is larger than ${formatBytes(limits.maxTotalBytes)} unpacked`);
}

export function tooManyEntries(limits: ArchiveLimits): ArchiveError {
  return new ArchiveError(`archive has more than ${limits.maxEntries} entries`);
}

export function corrupt(err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const message = raw.replace(/^TAR_[A-Z_]+: /, '');
  return new ArchiveError(`archive is truncated or corrupt: ${message}`);
}

export function specialEntry(name: string, what: string): ArchiveError {
  return new ArchiveError(`entry ${show(name)} is ${what}; only regular files, directories and symlinks are allowed`);
}
