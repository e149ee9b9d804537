// A built function tree as it travels: packed into a .tar.gz by the node that ran the build, kept in the DB
// service by digest, and unpacked by every node that runs the version. node-tar on both sides, as for the
// tree the dependencies step streams out of its container: it keeps symlinks as links, and on unpacking
// refuses `..`, absolute names and anything a symlink would redirect. (Uploaded archives go through
// common/archive instead, whose entry limit a node_modules folder easily passes.)
import { create as tarCreate, x as untar } from 'tar';
import type { Readable, Writable } from 'node:stream';

// The tree's files, packed; more than `maxBytes` packed is refused (the DB service keeps it whole).
export async function packTree(dir: string, maxBytes: number): Promise<Buffer> {
  const pack = tarCreate({ gzip: true, cwd: dir, portable: true }, ['.']) as unknown as Readable;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of pack) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > maxBytes) {
      pack.destroy();
      throw new TreeTooLarge(size);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

export class TreeTooLarge extends Error {
  constructor(readonly bytes: number) {
    super(`the built tree packs to more than ${bytes} bytes`);
  }
}

// Unpacks a packed tree into `dir` (which exists).
export function unpackTree(data: Buffer, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = untar({ cwd: dir, strict: true, preserveOwner: false }) as unknown as Writable;
    x.on('error', reject);
    x.on('close', () => resolve());
    x.end(data);
  });
}
