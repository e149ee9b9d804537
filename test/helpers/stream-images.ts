// Runtime images carrying this checkout's loaders (protocol version 3, streamed answers), made from the
// built-in images with only the loader replaced, under names of their own: tests of loader changes run
// without rebuilding the shared zfaas/node and zfaas/python, which other checkouts' nodes use.
import { execFile } from 'node:child_process';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT, tempDir } from './platform.js';

const run = promisify(execFile);
export const STREAM_IMAGE_LABEL = 'zfaas-test=loader-images';

// Builds `zfaas-loaders/LANG:test` from zfaas/LANG:latest and this checkout's loader; answers the runtime
// definition (the built-in one, with that image), to register under `name`.
export async function loaderImage(lang: 'node' | 'python', name: string): Promise<Record<string, unknown>> {
  const file = lang === 'node' ? 'loader.js' : 'loader.py';
  const image = `zfaas-loaders/${lang}:test`;
  const dir = await tempDir('zfaas-loader-image-');
  try {
    await copyFile(join(ROOT, 'runtimes', lang, file), join(dir, file));
    await writeFile(
      join(dir, 'Dockerfile'),
      `FROM zfaas/${lang}:latest\nCOPY ${file} /opt/zfaas/${file}\nRUN chmod 0644 /opt/zfaas/${file}\nLABEL ${STREAM_IMAGE_LABEL}\n`,
    );
    await run('docker', ['build', '-q', '-t', image, dir], { timeout: 120_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const def = JSON.parse(await readFile(join(ROOT, 'runtimes', lang, 'runtime.json'), 'utf8')) as Record<string, unknown>;
  return { ...def, name, image };
}

export async function removeLoaderImages(): Promise<void> {
  for (const lang of ['node', 'python']) await run('docker', ['rmi', '-f', `zfaas-loaders/${lang}:test`]).catch(() => undefined);
}
