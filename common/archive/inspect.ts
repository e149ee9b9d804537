// Validating an archive without writing anything: one walk, every entry through the Checker, every
// file's bytes counted as they inflate. This is all the API does with an upload.
import { Checker } from './checker.js';
import { formatOrThrow } from './format.js';
import { walkTar } from './tar.js';
import { DEFAULT_LIMITS, checkLimits, type ArchiveFormat, type ArchiveLimits, type ArchiveSummary, type Visitor } from './types.js';
import { walkZip } from './zip.js';

/** Walks the archive in the given format, handing each entry to `visit` in order. */
export function walkArchive(buf: Buffer, format: ArchiveFormat, limits: ArchiveLimits, visit: Visitor): Promise<void> {
  return format === 'zip' ? walkZip(buf, limits, visit) : walkTar(buf, format === 'tar.gz', limits, visit);
}

/** Validates the whole archive without writing anything. Throws ArchiveError on any problem. */
export async function inspectArchive(buf: Buffer, limits: ArchiveLimits = DEFAULT_LIMITS): Promise<ArchiveSummary> {
  checkLimits(limits);
  const format = formatOrThrow(buf);
  const checker = new Checker(limits);
  await walkArchive(buf, format, limits, async (item) => {
    checker.add(item);
    if (item.body) {
      checker.reserve(item.declaredSize);
      for await (const chunk of item.body) checker.addBytes(chunk.length);
    }
  });
  return checker.finish(format);
}
