// `zfaas up` without a Docker engine: one clear line and a non-zero exit, nothing started.
import { rm } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { freePort, tempDir, zfaas } from './helpers/platform.js';

it('says in one line that no Docker engine answers, and exits 2', async () => {
  const data = await tempDir();
  const p = zfaas(
    [
      'up',
      '--port',
      String(await freePort()),
      '--data',
      data,
      '--db-bind',
      `tcp://127.0.0.1:${await freePort()}`,
      '--broker-bind',
      `tcp://127.0.0.1:${await freePort()}`,
    ],
    {
      DOCKER_HOST: `unix://${data}/no-docker.sock`,
    },
  );
  expect(await p.stop('SIGCONT')).toBe(2);
  const lines = p.output().trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^zfaas: no Docker engine answers at unix:\/\//);
  await rm(data, { recursive: true, force: true });
});
