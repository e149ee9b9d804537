// The Go loader's own unit tests (zfaasrt/*_test.go: handler shapes, formats, web mappings; cmd/build:
// what the build step registers and generates), run with this machine's go as part of the unit tests;
// skipped, saying so, without go.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const HAVE_GO = await run('go', ['version']).then(
  () => true,
  () => false,
);

describe('the Go loader', () => {
  it.skipIf(!HAVE_GO)(
    'passes its go tests',
    async () => {
      const env = { ...process.env, CGO_ENABLED: '0', GOPROXY: 'off', GOFLAGS: '-mod=mod' };
      const r = await run('go', ['test', './...'], { cwd: import.meta.dirname, env }).catch((e: { stdout?: string; stderr?: string }) => e);
      expect(`${r.stdout ?? ''}${r.stderr ?? ''}`).not.toMatch(/FAIL/);
      expect(r.stdout).toMatch(/ok\s+zfaas\.dev\/go\/zfaasrt/);
    },
    300_000,
  );
  it.skipIf(HAVE_GO)('is skipped: this machine has no go (apt-get install golang-go)', () => undefined);
});
