// The archive an image function's version stores: one file, zfaas-image.json, holding its image spec. A
// version's archive is what names it by content (its digest) and what rollbacks, deletes and the nodes'
// tree caches already handle, so an image function keeps one too. A plain ustar archive made here, with
// fixed times and owners: the same spec always makes the same bytes, hence the same digest.
import type { ImageSpec } from './image-function.js';

export const IMAGE_SPEC_FILE = 'zfaas-image.json';

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

// A ustar archive holding one regular file.
export function ustarOne(name: string, data: Buffer): Buffer {
  const header = Buffer.alloc(512, 0);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(0o644, 8), 100, 'ascii'); // mode
  header.write(octal(0, 8), 108, 'ascii'); // uid
  header.write(octal(0, 8), 116, 'ascii'); // gid
  header.write(octal(data.length, 12), 124, 'ascii'); // size
  header.write(octal(0, 12), 136, 'ascii'); // mtime
  header.write('        ', 148, 'ascii'); // checksum, counted as spaces
  header.write('0', 156, 'ascii'); // a regular file
  header.write('ustar\0', 257, 'ascii');
  header.write('00', 263, 'ascii');
  let sum = 0;
  for (const b of header) sum += b;
  header.write(octal(sum, 7) + ' ', 148, 'ascii');
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512, 0);
  return Buffer.concat([header, data, pad, Buffer.alloc(1024, 0)]);
}

export const imageArchive = (spec: ImageSpec): Buffer =>
  ustarOne(IMAGE_SPEC_FILE, Buffer.from(`${JSON.stringify({ ref: spec.ref, port: spec.port, readiness: spec.readiness })}\n`));
