// Writing secrets into a container without a loader (miniworker/secrets.ts), against a fake container: each
// changed value is one `docker exec` of a fixed script as the function's uid with the value on its stdin
// (never in its command line), unchanged ones are skipped, names no longer wanted are removed, and a
// failing exec is an error that says why without the value.
import type Docker from 'dockerode';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { USER } from '../common/container-spec.js';
import type { SecretFile } from '../protocol/worker.js';
import { syncSecrets } from './secrets.js';

interface Ran {
  Cmd: string[];
  User?: string;
  stdin: string;
}

function fakeContainer(exitCode = (_cmd: string[]) => 0) {
  const ran: Ran[] = [];
  const container = {
    modem: {
      demuxStream(_s: NodeJS.ReadableStream, _out: NodeJS.WritableStream, err: NodeJS.WritableStream) {
        err.write('rm: cannot remove: Permission denied\n');
      },
    },
    async exec(opts: { Cmd: string[]; User?: string }) {
      const r: Ran = { Cmd: opts.Cmd, User: opts.User, stdin: '' };
      ran.push(r);
      return {
        async start() {
          const chunks: Buffer[] = [];
          const d: Duplex = new Duplex({
            read() {},
            write(chunk: Buffer, _enc, cb) {
              chunks.push(chunk);
              cb();
            },
            final(cb) {
              r.stdin = Buffer.concat(chunks).toString();
              cb();
              d.push(null);
            },
          });
          d.resume();
          return d;
        },
        async inspect() {
          return { ExitCode: exitCode(opts.Cmd) };
        },
      };
    },
  };
  return { container: container as unknown as Docker.Container, ran };
}

const sec = (name: string, stamp: string, value: string): SecretFile => ({ name, stamp, value: Buffer.from(value).toString('base64') });

describe('syncSecrets', () => {
  it('writes each value through an exec`s stdin as the function`s uid, never in a command line', async () => {
    const { container, ran } = fakeContainer();
    const held = new Map<string, string>();
    await syncSecrets(container, [sec('db', '1@t', 's3cr3t-db'), sec('api', '1@t', 's3cr3t-api')], held);
    expect(ran.map((r) => r.Cmd.slice(3))).toEqual([
      ['/var/zfaas/secrets', 'db'],
      ['/var/zfaas/secrets', 'api'],
    ]);
    expect(ran.map((r) => r.stdin)).toEqual(['s3cr3t-db', 's3cr3t-api']);
    for (const r of ran) {
      expect(r.User).toBe(USER);
      expect(JSON.stringify(r.Cmd)).not.toContain('s3cr3t');
      expect(r.Cmd[2]).toContain('umask 0277'); // born 0400
    }
    expect([...held]).toEqual([
      ['db', '1@t'],
      ['api', '1@t'],
    ]);
  });

  it('skips what the container already holds, writes what changed, removes what is no longer named', async () => {
    const { container, ran } = fakeContainer();
    const held = new Map([
      ['db', '1@t'],
      ['old', '3@t'],
    ]);
    await syncSecrets(container, [sec('db', '1@t', 'same'), sec('api', '2@u', 'new')], held);
    expect(ran.map((r) => r.Cmd.slice(3))).toEqual([
      ['/var/zfaas/secrets', 'old'],
      ['/var/zfaas/secrets', 'api'],
    ]);
    expect(ran[0]!.Cmd[2]).toContain('rm -f');
    expect([...held.keys()].sort()).toEqual(['api', 'db']);
  });

  it('fails with the exec`s words and exit code when it cannot write', async () => {
    const { container } = fakeContainer(() => 1);
    const held = new Map<string, string>();
    await expect(syncSecrets(container, [sec('db', '1@t', 'v')], held)).rejects.toThrow(/exit 1\): rm: cannot remove: Permission denied/);
    expect(held.size).toBe(0);
  });
});
