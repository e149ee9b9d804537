// Function archives for tests: packed from files given inline, or hostile ones built with python's
// tarfile/zipfile (which, unlike our own packer, will happily write `..` and absolute links).
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { packDirectory } from '../../cli/pack/pack.js';
import { tempDir } from './platform.js';

const run = promisify(execFile);

export async function packFiles(files: Record<string, string>): Promise<Buffer> {
  const dir = await tempDir('zfaas-fn-');
  try {
    for (const [name, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), text);
    }
    return await packDirectory(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function pyArchive(kind: 'tar' | 'zip', body: string): Promise<Buffer> {
  const script =
    kind === 'tar'
      ? `
import io, sys, tarfile
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode='w:gz')
def f(name, data=b'x'):
    i = tarfile.TarInfo(name); i.size = len(data); t.addfile(i, io.BytesIO(data))
def sym(name, target):
    i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
def big(name, n):
    class Z(io.RawIOBase):
        def __init__(s): s.left = n
        def readinto(s, b):
            k = min(len(b), s.left); b[:k] = bytes(k); s.left -= k; return k
    i = tarfile.TarInfo(name); i.size = n; t.addfile(i, Z())
${body}
t.close()
sys.stdout.buffer.write(buf.getvalue())`
      : `
import io, sys, zipfile
buf = io.BytesIO()
z = zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED)
def f(name, data=b'x'): z.writestr(name, data)
${body}
z.close()
sys.stdout.buffer.write(buf.getvalue())`;
  const { stdout } = await run('python3', ['-c', script], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}
