// Runtime images with this tree's loaders: the built-in image (zfaas/node, zfaas/python) with the loader
// built from runtimes/LANG/src copied over its own, tagged with a name of the caller's, so that a test or a
// benchmark of a loader change does not depend on when the shared images were last rebuilt.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { docker, ROOT } from './platform.js';

const LOADERS = {
  node: { base: 'zfaas/node:latest', file: 'loader.js', command: 'node /opt/zfaas/loader.js' },
  python: { base: 'zfaas/python:latest', file: 'loader.py', command: 'python3 /opt/zfaas/loader.py' },
} as const;

export type LoaderLang = keyof typeof LOADERS;

// Builds `tag` and answers the runtime that uses it (for POST /registerRuntime).
export async function buildLoaderImage(
  lang: LoaderLang,
  tag: string,
  name: string,
): Promise<{ name: string; image: string; path: string; run: string; loader: string }> {
  const l = LOADERS[lang];
  await new Promise<void>((resolve, reject) => {
    const p = spawn('docker', ['build', '-q', '-t', tag, '-f', '-', join(ROOT, 'runtimes', lang)], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker build ${tag}: ${err}`))));
    p.stdin.end(`FROM ${l.base}\nCOPY ${l.file} /opt/zfaas/${l.file}\n`);
  });
  return { name, image: tag, path: '/ws', run: `${l.command} --once`, loader: l.command };
}

export async function removeImage(tag: string): Promise<void> {
  await docker
    .getImage(tag)
    .remove({ force: true })
    .catch(() => undefined); // already gone
}
