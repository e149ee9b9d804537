// NAME_FILE settings: read into NAME, refused when both are given, when unreadable or empty.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { settingsFromFiles } from './env-files.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zfaas-envfiles-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

it('sets each setting from its _FILE, without the trailing newline, and leaves the others alone', async () => {
  await writeFile(join(dir, 'token'), 's3cret\n');
  await writeFile(join(dir, 'key'), 'Z85KEY');
  const env: NodeJS.ProcessEnv = { ZFAAS_TOKEN_FILE: join(dir, 'token'), ZFAAS_CURVE_SECRET_FILE: join(dir, 'key'), OTHER_FILE: '/x' };
  settingsFromFiles(env);
  expect(env.ZFAAS_TOKEN).toBe('s3cret');
  expect(env.ZFAAS_CURVE_SECRET).toBe('Z85KEY');
  expect(env.OTHER).toBeUndefined();
});

it('refuses both forms at once, a missing file and an empty one, naming the setting', async () => {
  await writeFile(join(dir, 'empty'), '\n');
  expect(() => settingsFromFiles({ ZFAAS_TOKEN: 'a', ZFAAS_TOKEN_FILE: join(dir, 'empty') })).toThrow(
    /both ZFAAS_TOKEN and ZFAAS_TOKEN_FILE/,
  );
  expect(() => settingsFromFiles({ ZFAAS_TOKEN_FILE: join(dir, 'nope') })).toThrow(/ZFAAS_TOKEN_FILE: cannot read .*nope \(ENOENT\)/);
  expect(() => settingsFromFiles({ ZFAAS_CURVE_ALLOWED_FILE: join(dir, 'empty') })).toThrow(/ZFAAS_CURVE_ALLOWED_FILE: .* is empty/);
});
