// Which kind of archive a buffer is, from its magic bytes. Apart from the walkers (and free of tar
// and yauzl) so the CLI can tell an archive from other files without loading them.
import { ArchiveError, type ArchiveFormat } from './types.js';

export const TAR_BLOCK = 512;

export function detectFormat(buf: Buffer): ArchiveFormat | null {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'tar.gz';
  if (buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b) {
    if (buf[2] === 0x03 && buf[3] === 0x04) return 'zip';
    if (buf[2] === 0x05 && buf[3] === 0x06) return 'zip'; // empty zip: just the end-of-central-directory record
  }
  if (hasUstarMagic(buf)) return 'tar';
  return null;
}

export function hasUstarMagic(block: Buffer): boolean {
  return block.length >= 262 && block.toString('latin1', 257, 262) === 'ustar';
}

export function isZeroBlock(buf: Buffer): boolean {
  if (buf.length < TAR_BLOCK) return false;
  for (let i = 0; i < TAR_BLOCK; i++) if (buf[i] !== 0) return false;
  return true;
}

export function formatOrThrow(buf: Buffer): ArchiveFormat {
  if (buf.length === 0) throw new ArchiveError('archive is empty (0 bytes)');
  const format = detectFormat(buf);
  if (format) return format;
  // An empty tar is nothing but zero blocks: it has no "ustar" magic to detect.
  if (isZeroBlock(buf)) throw new ArchiveError('archive holds no files');
  throw new ArchiveError('not a .tar.gz, .tar or .zip archive (unknown magic bytes)');
}
