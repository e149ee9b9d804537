// The vocabulary every archive module shares: the formats, the limits and the summary callers see,
// the error whose message is meant for the user, and the shape of an entry as the tar and zip
// walkers hand it over. Kept apart so that no module has to import another just for a type.

export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

/** A problem with the uploaded archive itself; the message is meant for the user (HTTP 400). */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

export interface ArchiveLimits {
  /** Unpacked bytes of all regular files together, counted from what actually inflates. */
  maxTotalBytes: number;
  /** Entries of any kind (files, directories, links). */
  maxEntries: number;
}

export const KiB = 1024;
export const MiB = 1024 * KiB;

export const DEFAULT_LIMITS: ArchiveLimits = Object.freeze({ maxTotalBytes: 100 * MiB, maxEntries: 10_000 });

export function checkLimits(limits: ArchiveLimits): void {
  for (const key of ['maxTotalBytes', 'maxEntries'] as const) {
    const v = limits[key];
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`ArchiveLimits.${key} must be a non-negative integer, got ${v}`);
  }
}

export interface ArchiveSummary {
  format: ArchiveFormat;
  /** Entries of any kind, including directories and links. */
  entries: number;
  /** Unpacked bytes of the regular files. */
  totalBytes: number;
  /** Normalized relative paths of the regular files (hardlinks included), at most MAX_LISTED_FILES. */
  files: string[];
}

export type Kind = 'file' | 'dir' | 'symlink' | 'hardlink';

/** One archive entry as the walkers hand it over, before the checks. */
export interface Item {
  /** The name as stored in the archive (used in messages). */
  name: string;
  kind: Kind;
  /** Symlink: the raw target. Hardlink: the raw name of the linked entry. */
  target?: string;
  /** Any exec bit set in the archive's mode. */
  exec: boolean;
  /** Size the headers claim (only a hint for failing fast; real bytes are counted). */
  declaredSize: number;
  /** Regular files: the content. */
  body?: AsyncIterable<Buffer>;
}

export type Visitor = (item: Item) => Promise<void>;
