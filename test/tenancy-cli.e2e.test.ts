// Namespaces, keys and secrets from the built `zfaas` CLI (child processes) against one `zfaas up` with an
// operator token: the operator makes a namespace and its keys (each printed once); the namespace's admin
// key stores a secret from stdin that no listing shows; its developer key may not name the secret in a
// deploy (the secrets are the admin's), the admin key deploys a function that reads it (--secrets) and the
// developer key invokes it; the operator sees that namespace's functions only with --namespace
// (or ZFAAS_NAMESPACE); a revoked key is refused at once (exit 77, one line).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startUp, tempDir, type Platform } from './helpers/platform.js';

const OP = 'tenancy-cli-operator-token-42';
const NS = 'team-cli';
const VALUE = `cli-secret-${randomBytes(12).toString('hex')}`;

let p: Platform;
let work: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

// The test process's own ZFAAS_* settings (if any) must not leak into the CLI under test.
const baseEnv = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('ZFAAS_')));

/** `zfaas ARGS` with `token` (the operator's unless given); `input` is piped to its stdin. */
async function zf(args: string[], o: { token?: string; env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const env: Record<string, string> = {
    ...baseEnv(),
    ZFAAS_CONFIG: join(work, 'no-config.json'),
    ZFAAS_API: p.api,
    ZFAAS_TOKEN: o.token ?? OP,
    ...o.env,
  };
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(o.input ?? '');
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  return { code, stdout, stderr };
}

const ok = (r: Run): Run => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return r;
};
const json = <T>(r: Run): T => JSON.parse(ok(r).stdout) as T;

interface KeyJson {
  id: string;
  namespace: string;
  role: string;
  key: string;
}

let admin: KeyJson;
let devKey = '';
let devId = '';

beforeAll(async () => {
  work = await tempDir('zfaas-tenancy-cli-');
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: OP });
}, 120_000);

afterAll(async () => {
  await p?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the operator', () => {
  it('makes a namespace with quotas, and sees it listed', async () => {
    const made = ok(await zf(['namespace', 'create', NS, '--running', '4', '--archive-bytes', '100m']));
    expect(made.stdout).toBe(`created namespace ${NS} (quotas: running 4, archives 100 MB)\n`);
    expect(made.stderr).toContain(`zfaas key create --namespace ${NS} --role admin`);
    const list = ok(await zf(['namespace', 'list']));
    expect(list.stdout).toMatch(new RegExp(`\\n${NS}\\s+\\d+s ago\\s+running 4, archives 100 MB\\n`));
    expect((await zf(['namespace', 'create', NS])).code).toBe(1);
    expect(json<{ role: string; namespace: string }>(await zf(['whoami', '--json']))).toEqual({ namespace: 'default', role: 'operator' });
  });

  it('makes an admin and a developer key: each printed once, with a line saying so', async () => {
    admin = json<KeyJson>(await zf(['key', 'create', '--namespace', NS, '--role', 'admin', '--json']));
    expect(admin).toMatchObject({ namespace: NS, role: 'admin' });
    const dev = ok(await zf(['key', 'create', '--namespace', NS, '--role', 'developer']));
    devKey = dev.stdout.trim();
    expect(devKey).toMatch(/^zfk_[a-f0-9]{16}_\S+$/);
    expect(dev.stdout).toBe(`${devKey}\n`);
    devId = devKey.split('_')[1]!;
    expect(dev.stderr).toContain(`made key ${devId} (role developer in namespace ${NS}): the key above is shown only now`);
    // Listed by id and role, never with the key itself.
    const listed = ok(await zf(['key', 'list', '--namespace', NS]));
    expect(listed.stdout).toMatch(new RegExp(`${devId}\\s+developer\\s+.*active`));
    expect(listed.stdout).toMatch(new RegExp(`${admin.id}\\s+admin`));
    // The secret is base64url, so it may itself hold '_': it is everything after the id.
    expect(listed.stdout).not.toContain(devKey.slice(`zfk_${devId}_`.length));
    expect(json<{ namespace: string; role: string; keyId: string }>(await zf(['whoami', '--json'], { token: devKey }))).toEqual({
      namespace: NS,
      role: 'developer',
      keyId: devId,
    });
  });
});

describe('a namespace key', () => {
  it('admin: stores a secret from stdin that no listing shows; a developer may not manage secrets (exit 77)', async () => {
    const made = ok(await zf(['secret', 'create', 'db'], { token: admin.key, input: VALUE }));
    expect(made.stdout).toBe(`created secret db (${VALUE.length} B, version 1)\n`);
    expect(made.stdout + made.stderr).not.toContain(VALUE);
    const list = ok(await zf(['secret', 'list'], { token: admin.key }));
    expect(list.stdout).toMatch(/^NAME\s+VERSION\s+SIZE\s+CREATED\s+UPDATED\ndb\s+1\s+/);
    const listJson = ok(await zf(['secret', 'list', '--json'], { token: admin.key }));
    expect(listJson.stdout + list.stdout).not.toContain(VALUE);
    expect(listJson.stdout).not.toContain(Buffer.from(VALUE).toString('base64'));
    const again = await zf(['secret', 'create', 'db', '--value', 'x'], { token: admin.key });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^zfaas: secret db exists/);
    const refused = await zf(['secret', 'list'], { token: devKey });
    expect(refused.code).toBe(77);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/needs the admin role/);
  });

  it("developer: may not name the secret in a deploy; the admin's function that reads it, it invokes", async () => {
    const dir = join(work, 'reader');
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, 'index.js'),
      "const { createHash } = require('node:crypto');\nconst { readFileSync } = require('node:fs');\nmodule.exports = (p) => ({ hi: p.name, sha: createHash('sha256').update(readFileSync('/var/zfaas/secrets/db')).digest('hex') });\n",
    );
    const refused = await zf(['deploy', 'reader', dir, '--runtime', 'node', '--secrets', 'db'], { token: devKey });
    expect(refused.code).toBe(77);
    expect(refused.stderr).toMatch(/^zfaas: naming secrets \(db\) in a deploy needs the admin role/);
    const d = ok(await zf(['deploy', 'reader', dir, '--runtime', 'node', '--secrets', 'db'], { token: admin.key }));
    expect(d.stdout).toMatch(/^deployed reader version 1 \(runtime node, /);
    const shown = ok(await zf(['function', 'reader'], { token: devKey }));
    expect(shown.stdout).toMatch(/\nsecrets:\s+db\n/);
    const r = ok(await zf(['invoke', 'reader', 'name=ana'], { token: devKey }));
    expect(JSON.parse(r.stdout)).toEqual({ hi: 'ana', sha: createHash('sha256').update(VALUE).digest('hex') });
    expect(json<{ functionName: string }[]>(await zf(['functions', '--json'], { token: devKey })).map((f) => f.functionName)).toEqual([
      'reader',
    ]);
  });
});

describe('--namespace', () => {
  it("lets the operator see the namespace's functions (flag, env), which its default namespace does not hold", async () => {
    const names = (r: Run): string[] => json<{ functionName: string }[]>(r).map((f) => f.functionName);
    expect(names(await zf(['functions', '--json']))).not.toContain('reader');
    expect(names(await zf(['--namespace', NS, 'functions', '--json']))).toEqual(['reader']);
    expect(names(await zf(['functions', '--json'], { env: { ZFAAS_NAMESPACE: NS } }))).toEqual(['reader']);
    const shown = ok(await zf(['function', 'reader', '--namespace', NS]));
    expect(shown.stdout).toMatch(/^name:\s+reader\n/);
    // A key names only its own namespace: any other is one that does not exist.
    const other = await zf(['functions', '--namespace', 'default'], { token: devKey });
    expect(other.code).toBe(1);
    expect(other.stderr).toBe('zfaas: namespace default not found\n');
    const bad = await zf(['functions', '--namespace', 'Not_A_Namespace']);
    expect(bad.code).toBe(2);
  });
});

describe('key revoke', () => {
  it('stops the key at once: exit 77 and one line', async () => {
    const r = ok(await zf(['key', 'revoke', devId, '--namespace', NS]));
    expect(r.stdout).toBe(`revoked key ${devId} (role developer in namespace ${NS})\n`);
    const refused = await zf(['functions'], { token: devKey });
    expect(refused.code).toBe(77);
    expect(refused.stderr).toMatch(/^zfaas: the (token or )?key is not valid\n$/);
    const inv = await zf(['invoke', 'reader', 'name=x'], { token: devKey });
    expect(inv.code).toBe(77);
    // Listed as revoked; revoking it again is "not found" (exit 1).
    expect(ok(await zf(['key', 'list'], { token: admin.key })).stdout).toMatch(new RegExp(`${devId}\\s+developer\\s+.*revoked`));
    expect((await zf(['key', 'revoke', devId], { token: admin.key })).code).toBe(1);
  });
});
