// The bridge (runtimes/image/bridge, Go) has its tests in Go: this runs them, with `go vet`, as part of the
// unit tests, checks that its copies of the protocol's constants are protocol/loader.ts's, and that the
// build script makes a static binary (one that runs in any image).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CANCELLED, LOADER_PROTOCOL, LOG_LIMIT, RESULT_LIMIT } from '../../protocol/loader.js';

const run = promisify(execFile);
const here = join(import.meta.dirname);

describe('zfaas-bridge', () => {
  it('passes its Go tests (the mapping of calls to HTTP requests and back, readiness)', async () => {
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
    // A failure shows what Go printed (which test, and why), not only that the command failed.
    const go = (args: string[]) =>
      run('go', args, { cwd: join(here, 'bridge'), env }).catch((e: { message: string; stdout?: string; stderr?: string }) => {
        throw new Error(`${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
      });
    await go(['vet', './...']);
    const { stdout } = await go(['test', '-count=1', './...']);
    expect(stdout).toMatch(/^ok\s+zfaas\/bridge/m);
  });

  it("speaks the node's protocol version, with its limits and words", async () => {
    const go = await readFile(join(here, 'bridge', 'messages.go'), 'utf8');
    const constant = (name: string): string => new RegExp(`^const ${name} = (.+)$`, 'm').exec(go)?.[1]?.trim() ?? '';
    const num = (expr: string): number => expr.split('*').reduce((a, x) => a * Number(x.trim()), 1);
    expect(num(constant('protocolVersion'))).toBe(LOADER_PROTOCOL);
    expect(num(constant('resultLimit'))).toBe(RESULT_LIMIT);
    expect(num(constant('logLimit'))).toBe(LOG_LIMIT);
    expect(constant('cancelled')).toBe(JSON.stringify(CANCELLED));
  });

  it('builds as a static binary', async () => {
    await run('bash', [join(here, 'build-bridge.sh')]);
    const head = await readFile(join(here, 'bin', 'zfaas-bridge'));
    expect(head.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // A dynamically linked ELF names its interpreter (PT_INTERP, "/lib64/ld-linux..."): a static one does not.
    expect(head.includes(Buffer.from('ld-linux'))).toBe(false);
  });
});
