// `zfaas namespace`, `zfaas key`, `zfaas secret`, `zfaas whoami` and the global --namespace (also
// ZFAAS_NAMESPACE and the config file's `namespace`), run in process against a fake API behind fetch:
// what each sends (method, path, body, X-Zfaas-Namespace), what it prints, its exit code. A key is printed
// once with a note that it is shown only now; a secret's value is never printed.
import { Command } from 'commander';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../client/errors.js';
import { renderTable, type Output } from '../client/output.js';
import { makeDeps } from './common.js';
import { settingsFields } from './functions.js';
import { registerClientCommands } from './index.js';
import { mergeQuotas, parseBytes, readQuotas } from './tenancy.js';

const API = 'http://api.test';
const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const at = (msAgo: number): string => new Date(NOW - msAgo).toISOString();
const KEY = 'zfk_0123456789abcdef_c2VjcmV0LXBhcnQtb2YtdGhlLWtleQ';

let dir: string;
beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
  dir = await mkdtemp(join(tmpdir(), 'zfaas-tenancy-'));
});
afterAll(async () => {
  vi.useRealTimers();
  await rm(dir, { recursive: true, force: true });
});

interface Seen {
  method: string;
  path: string;
  body: unknown;
  auth: string | null;
  namespace: string | null;
}
type Route = (r: Seen) => [number, unknown];

function fakeApi(routes: Record<string, Route>): { fetchFn: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const h = new Headers(init?.headers);
    const r: Seen = {
      method: init?.method ?? 'GET',
      path: url.pathname,
      body: init?.body === undefined ? undefined : (JSON.parse(String(init.body)) as unknown),
      auth: h.get('authorization'),
      namespace: h.get('x-zfaas-namespace'),
    };
    seen.push(r);
    const route = routes[`${r.method} ${r.path}`];
    const [status, body] = route ? route(r) : [404, { error: `no route ${r.method} ${r.path}` }];
    return Response.json(body, { status });
  };
  return { fetchFn, seen };
}

interface Run {
  code: number;
  stdout: string;
  notes: string[];
}

/** Runs a client command in process; stdin is `input` when given (piped), else a terminal with nothing. */
async function run(args: string[], fetchFn: typeof fetch, o: { env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  const lines: string[] = [];
  const notes: string[] = [];
  let code = 0;
  const out: Output = {
    print: (t) => void lines.push(t),
    note: (t) => void notes.push(t),
    json: (v) => void lines.push(JSON.stringify(v, null, 2)),
    table: (head, rows) => void lines.push(renderTable(head, rows, false)),
    fields: (pairs) => {
      const w = Math.max(0, ...pairs.map(([k]) => k.length)) + 1;
      lines.push(pairs.map(([k, v]) => `${`${k}:`.padEnd(w)} ${v}`).join('\n'));
    },
    progress: () => undefined,
  };
  const stdin =
    o.input === undefined
      ? Object.assign(Readable.from([]), { isTTY: true })
      : Object.assign(Readable.from([Buffer.from(o.input)]), { isTTY: false });
  const env = { ZFAAS_API: API, ZFAAS_CONFIG: join(dir, 'none.json'), ...o.env };
  const p = new Command('zfaas');
  registerClientCommands(p, makeDeps({ out, env, stdin, fetchFn, setExitCode: (c) => (code = c) }));
  await p.parseAsync(args, { from: 'user' });
  return { code, stdout: lines.join('\n'), notes };
}

const ns = (name: string, quotas: Record<string, number> = {}) => ({ name, createdAt: at(3_600_000), quotas });
const keyInfo = (o: Record<string, unknown> = {}) => ({
  id: '0123456789abcdef',
  namespace: 'team-a',
  role: 'developer',
  createdAt: at(120_000),
  ...o,
});
const secretInfo = (name: string, o: Record<string, unknown> = {}) => ({
  name,
  version: 1,
  bytes: 11,
  createdAt: at(60_000),
  updatedAt: at(60_000),
  ...o,
});

describe('--namespace', () => {
  const api = () => fakeApi({ 'GET /functions': () => [200, []], 'GET /whoami': () => [200, { namespace: 'team-b', role: 'operator' }] });

  it('is sent as X-Zfaas-Namespace on every request, from the flag, the environment or the config file', async () => {
    const a = api();
    await run(['--namespace', 'team-b', 'functions'], a.fetchFn);
    await run(['functions', '--namespace', 'team-b'], a.fetchFn);
    await run(['functions'], a.fetchFn, { env: { ZFAAS_NAMESPACE: 'team-c' } });
    const cfg = join(dir, 'cfg.json');
    await writeFile(cfg, JSON.stringify({ token: 'tok', namespace: 'team-d' }));
    await run(['functions'], a.fetchFn, { env: { ZFAAS_CONFIG: cfg } });
    await run(['functions', '--namespace', 'team-e'], a.fetchFn, { env: { ZFAAS_CONFIG: cfg, ZFAAS_NAMESPACE: 'team-c' } });
    await run(['functions'], a.fetchFn);
    expect(a.seen.map((s) => s.namespace)).toEqual(['team-b', 'team-b', 'team-c', 'team-d', 'team-e', null]);
    expect(a.seen[3]?.auth).toBe('Bearer tok');
  });

  it('refuses a name the API would refuse, sending nothing (exit 2)', async () => {
    const a = api();
    const r = await run(['functions', '--namespace', 'Team_A'], a.fetchFn);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.notes[0]).toMatch(/^zfaas: invalid namespace "Team_A" \(--namespace\): must be 1-32 characters/);
    expect(a.seen).toEqual([]);
  });

  it('shows in zfaas config, and config set namespace checks it', async () => {
    const cfg = join(dir, 'set.json');
    const a = api();
    expect((await run(['config', 'set', 'namespace', 'team-a'], a.fetchFn, { env: { ZFAAS_CONFIG: cfg } })).code).toBe(EXIT.OK);
    const shown = await run(['config', '--json'], a.fetchFn, { env: { ZFAAS_CONFIG: cfg } });
    expect(JSON.parse(shown.stdout)).toMatchObject({ namespace: 'team-a' });
    expect((await run(['config', 'set', 'namespace', 'no such'], a.fetchFn, { env: { ZFAAS_CONFIG: cfg } })).code).toBe(EXIT.USAGE);
    const none = await run(['config', '--json'], a.fetchFn);
    expect(JSON.parse(none.stdout)).not.toHaveProperty('namespace');
  });
});

describe('zfaas whoami', () => {
  it('prints the namespace, role and key id', async () => {
    const a = fakeApi({ 'GET /whoami': () => [200, { namespace: 'team-a', role: 'developer', keyId: '0123456789abcdef' }] });
    const r = await run(['whoami'], a.fetchFn, { env: { ZFAAS_TOKEN: KEY } });
    expect(r).toEqual({
      code: EXIT.OK,
      stdout: ['api:       http://api.test', 'namespace: team-a', 'role:      developer', 'key:       0123456789abcdef'].join('\n'),
      notes: [],
    });
    expect(a.seen[0]?.auth).toBe(`Bearer ${KEY}`);
    const op = fakeApi({ 'GET /whoami': () => [200, { namespace: 'default', role: 'operator' }] });
    expect((await run(['whoami'], op.fetchFn)).stdout).toContain('key:       (the operator token)');
    expect(JSON.parse((await run(['whoami', '--json'], op.fetchFn)).stdout)).toEqual({ namespace: 'default', role: 'operator' });
  });

  it('says a bad key is refused, exit 77', async () => {
    const a = fakeApi({ 'GET /whoami': () => [401, { error: 'the token or key is not valid' }] });
    expect(await run(['whoami'], a.fetchFn)).toEqual({ code: EXIT.AUTH, stdout: '', notes: ['zfaas: the token or key is not valid'] });
  });
});

describe('zfaas namespace', () => {
  it('creates a namespace with the quotas given, read like the API reads them', async () => {
    const a = fakeApi({ 'POST /namespaces': (r) => [201, ns('team-a', (r.body as { quotas?: Record<string, number> }).quotas ?? {})] });
    const r = await run(
      [
        'namespace',
        'create',
        'team-a',
        '--running',
        '5',
        '--per-minute',
        '600',
        '--functions',
        '0',
        '--archive-bytes',
        '1g',
        '--memory',
        '512m',
      ],
      a.fetchFn,
    );
    expect(r.code).toBe(EXIT.OK);
    expect(a.seen[0]?.body).toEqual({
      name: 'team-a',
      quotas: { running: 5, perMinute: 600, functions: 0, archiveBytes: 1024 ** 3, memory: 512 },
    });
    expect(r.stdout).toBe('created namespace team-a (quotas: running 5, per minute 600, functions 0, archives 1.0 GB, memory 512 MiB)');
    expect(r.notes).toEqual(['give it an admin key: zfaas key create --namespace team-a --role admin']);
    await run(['namespace', 'create', 'team-b'], a.fetchFn);
    expect(a.seen[1]?.body).toEqual({ name: 'team-b' });
  });

  it("sets the limits of one function, of schedules, and the namespace's runtimes and isolation", async () => {
    const a = fakeApi({
      'GET /namespaces/team-a': () => [200, ns('team-a', { running: 5 })],
      'PUT /namespaces/team-a/quotas': (r) => [200, ns('team-a', r.body as Record<string, number>)],
    });
    const flags = [
      '--cpus',
      '0.5',
      '--pids',
      '64',
      '--schedules',
      '10',
      '--schedule-interval',
      '300',
      '--runtimes',
      'node, safe',
      '--isolation',
      'runsc',
    ];
    const r = await run(['namespace', 'quotas', 'team-a', ...flags], a.fetchFn);
    expect(r.code).toBe(EXIT.OK);
    expect(a.seen[1]?.body).toEqual({
      running: 5,
      cpus: 0.5,
      pids: 64,
      schedules: 10,
      scheduleInterval: 300,
      runtimes: ['node', 'safe'],
      isolation: ['runsc'],
    });
    expect(r.stdout).toContain('cpus:       0.5 per function\npids:       64 per function\nschedules:  10\n');
    expect(r.stdout).toContain('runtimes:   node, safe\nisolation:  runsc');
    const list = fakeApi({
      'GET /namespaces': () => [200, [ns('team-a', { cpus: 0.5, runtimes: ['node'], isolation: ['runsc', 'kata-runtime'] } as never)]],
    });
    expect((await run(['namespace', 'list'], list.fetchFn)).stdout).toContain('cpus 0.5, runtimes node, isolation runsc/kata-runtime');
  });

  it('refuses a bad quota before sending anything (exit 2)', async () => {
    const a = fakeApi({});
    for (const bad of [
      ['--running', '0'],
      ['--per-minute', 'lots'],
      ['--archive-bytes', '12x'],
      ['--memory', '1t'],
      ['--cpus', '0'],
      ['--pids', '4'],
      ['--runtimes', 'no/slash'],
      ['--isolation', 'Bad Name'],
    ]) {
      const r = await run(['namespace', 'create', 'team-a', ...bad], a.fetchFn);
      expect(r.code, bad.join(' ')).toBe(EXIT.USAGE);
      expect(r.notes[0]).toContain(bad[0]);
    }
    expect(a.seen).toEqual([]);
  });

  it('lists the namespaces and shows one', async () => {
    const a = fakeApi({
      'GET /namespaces': () => [200, [ns('default'), ns('team-a', { running: 5, archiveBytes: 500 * 1024 ** 2 })]],
      'GET /namespaces/team-a': () => [200, ns('team-a', { running: 5 })],
    });
    expect((await run(['namespace', 'list'], a.fetchFn)).stdout).toBe(
      ['NAMESPACE   CREATED   QUOTAS', 'default     1h ago    none', 'team-a      1h ago    running 5, archives 500 MB'].join('\n'),
    );
    const shown = await run(['namespace', 'show', 'team-a'], a.fetchFn);
    expect(shown.stdout).toContain('name:       team-a\n');
    expect(shown.stdout).toContain('running:    5 at once\nper minute: no limit\n');
    expect(JSON.parse((await run(['namespaces', 'ls', '--json'], a.fetchFn)).stdout)).toHaveLength(2);
  });

  it('changes only the quotas given, "none" taking one off; with none given, shows them', async () => {
    const a = fakeApi({
      'GET /namespaces/team-a': () => [200, ns('team-a', { running: 5, perMinute: 600, functions: 3 })],
      'PUT /namespaces/team-a/quotas': (r) => [200, ns('team-a', r.body as Record<string, number>)],
    });
    const r = await run(['namespace', 'quotas', 'team-a', '--running', '20', '--per-minute', 'none'], a.fetchFn);
    expect(r.code).toBe(EXIT.OK);
    expect(a.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /namespaces/team-a', 'PUT /namespaces/team-a/quotas']);
    expect(a.seen[1]?.body).toEqual({ running: 20, functions: 3 });
    expect(r.notes).toEqual(['quotas of team-a set']);
    expect(r.stdout).toContain('running:    20 at once\nper minute: no limit\nfunctions:  3\n');
    const shown = await run(['namespace', 'quotas', 'team-a'], a.fetchFn);
    expect(a.seen).toHaveLength(3);
    expect(shown.stdout).toContain('per minute: 600 calls');
  });

  it("prints the API's refusals as one line: 409 exit 1, 403 exit 77", async () => {
    const a = fakeApi({
      'POST /namespaces': () => [409, { error: 'namespace team-a exists' }],
      'GET /namespaces': () => [403, { error: 'GET /namespaces needs the operator role; this key is admin' }],
    });
    expect(await run(['namespace', 'create', 'team-a'], a.fetchFn)).toEqual({
      code: EXIT.FAILURE,
      stdout: '',
      notes: ['zfaas: namespace team-a exists'],
    });
    expect(await run(['namespace', 'list'], a.fetchFn)).toMatchObject({
      code: EXIT.AUTH,
      notes: ['zfaas: GET /namespaces needs the operator role; this key is admin'],
    });
  });
});

describe('zfaas key', () => {
  const keysApi = () =>
    fakeApi({
      'POST /namespaces/team-a/keys': (r) => [201, { ...keyInfo({ role: (r.body as { role: string }).role }), key: KEY }],
      'GET /namespaces/team-a/keys': () => [
        200,
        [keyInfo(), keyInfo({ id: 'fedcba9876543210', role: 'admin', rotatedAt: at(30_000), revokedAt: at(10_000) })],
      ],
      'POST /namespaces/team-a/keys/0123456789abcdef/rotate': () => [200, { ...keyInfo({ rotatedAt: at(0) }), key: `${KEY}2` }],
      'DELETE /namespaces/team-a/keys/0123456789abcdef': () => [200, keyInfo({ revokedAt: at(0) })],
      'DELETE /namespaces/team-a/keys/ffffffffffffffff': () => [404, { error: 'key ffffffffffffffff not found' }],
      'GET /whoami': () => [200, { namespace: 'team-a', role: 'admin', keyId: 'aaaaaaaaaaaaaaaa' }],
    });

  it('create prints the key alone on stdout, once, and says it is shown only now', async () => {
    const a = keysApi();
    const r = await run(['key', 'create', '--namespace', 'team-a', '--role', 'developer'], a.fetchFn);
    expect(r).toEqual({
      code: EXIT.OK,
      stdout: KEY,
      notes: [
        'made key 0123456789abcdef (role developer in namespace team-a): the key above is shown only now, keep it now (lost: "zfaas key rotate 0123456789abcdef --namespace team-a")',
      ],
    });
    expect(a.seen).toEqual([
      { method: 'POST', path: '/namespaces/team-a/keys', body: { role: 'developer' }, auth: null, namespace: 'team-a' },
    ]);
    const json = await run(['--namespace', 'team-a', 'key', 'create', '--role', 'invoker', '--json'], a.fetchFn);
    expect(JSON.parse(json.stdout)).toMatchObject({ id: '0123456789abcdef', role: 'invoker', key: KEY });
    expect(json.notes).toEqual([]);
  });

  it("without --namespace uses the key's own namespace (GET /whoami)", async () => {
    const a = keysApi();
    const r = await run(['key', 'list'], a.fetchFn, { env: { ZFAAS_TOKEN: KEY } });
    expect(a.seen.map((s) => `${s.method} ${s.path}`)).toEqual(['GET /whoami', 'GET /namespaces/team-a/keys']);
    expect(r.stdout).toBe(
      [
        'ID                 ROLE        CREATED   ROTATED   STATE',
        '0123456789abcdef   developer   2m ago              active',
        'fedcba9876543210   admin       2m ago    30s ago   revoked 10s ago',
      ].join('\n'),
    );
    expect(r.stdout).not.toContain(KEY);
  });

  it('needs a role from the list: a usage error (exit 2), nothing sent', async () => {
    const a = keysApi();
    // Commander's own usage errors end the process (cli/commands/index.ts): caught here as a throw.
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await expect(run(['key', 'create', '--namespace', 'team-a'], a.fetchFn)).rejects.toThrow('exit 2');
      await expect(run(['key', 'create', '--namespace', 'team-a', '--role', 'root'], a.fetchFn)).rejects.toThrow('exit 2');
    } finally {
      exit.mockRestore();
      stderr.mockRestore();
    }
    expect(a.seen).toEqual([]);
  });

  it('rotate prints the new key once; revoke says which key stopped; an unknown key is exit 1', async () => {
    const a = keysApi();
    const rot = await run(['key', 'rotate', '0123456789abcdef', '--namespace', 'team-a'], a.fetchFn);
    expect(rot.stdout).toBe(`${KEY}2`);
    expect(rot.notes[0]).toMatch(/^rotated key 0123456789abcdef .*shown only now/);
    expect(await run(['key', 'revoke', '0123456789abcdef', '--namespace', 'team-a'], a.fetchFn)).toEqual({
      code: EXIT.OK,
      stdout: 'revoked key 0123456789abcdef (role developer in namespace team-a)',
      notes: [],
    });
    expect(await run(['key', 'rm', 'ffffffffffffffff', '--namespace', 'team-a'], a.fetchFn)).toEqual({
      code: EXIT.FAILURE,
      stdout: '',
      notes: ['zfaas: key ffffffffffffffff not found'],
    });
  });
});

describe('zfaas secret', () => {
  const secretsApi = () =>
    fakeApi({
      'POST /secrets': (r) => {
        const b = r.body as { name: string; valueBase64: string };
        if (b.name === 'taken') return [409, { error: 'secret taken exists: PUT /secrets/taken replaces its value' }];
        return [201, secretInfo(b.name, { bytes: Buffer.from(b.valueBase64, 'base64').length })];
      },
      'PUT /secrets/db': (r) => [
        200,
        secretInfo('db', { version: 2, bytes: Buffer.from((r.body as { valueBase64: string }).valueBase64, 'base64').length }),
      ],
      'GET /secrets': () => [200, [secretInfo('db', { version: 2, updatedAt: at(5000) }), secretInfo('tls-key', { bytes: 3000 })]],
      'DELETE /secrets/db': () => [200, { deleted: 'db' }],
      'DELETE /secrets/nope': () => [404, { error: 'secret nope not found' }],
    });
  const sent = (s: { body: unknown }): string => Buffer.from((s.body as { valueBase64: string }).valueBase64, 'base64').toString();

  it('create reads the value from a piped stdin, byte for byte, and never prints it', async () => {
    const a = secretsApi();
    const r = await run(['secret', 'create', 'db'], a.fetchFn, { input: 's3cr3t\nvalue' });
    expect(r).toEqual({ code: EXIT.OK, stdout: 'created secret db (12 B, version 1)', notes: [] });
    expect(sent(a.seen[0]!)).toBe('s3cr3t\nvalue');
    expect(a.seen[0]?.body).toMatchObject({ name: 'db' });
  });

  it('takes --value or --from-file instead, not both, and refuses a terminal stdin (exit 2)', async () => {
    const a = secretsApi();
    await run(['secret', 'create', 'one', '--value', 'v1'], a.fetchFn);
    const file = join(dir, 'value.bin');
    await writeFile(file, Buffer.from([0, 1, 2, 255]));
    await run(['secret', 'create', 'two', '--from-file', file], a.fetchFn);
    expect(sent(a.seen[0]!)).toBe('v1');
    expect(Buffer.from((a.seen[1]?.body as { valueBase64: string }).valueBase64, 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
    const both = await run(['secret', 'create', 'x', '--value', 'a', '--from-file', file], a.fetchFn);
    expect(both).toEqual({ code: EXIT.USAGE, stdout: '', notes: ['zfaas: give the value with --value or --from-file, not both'] });
    const tty = await run(['secret', 'create', 'x'], a.fetchFn);
    expect(tty.code).toBe(EXIT.USAGE);
    expect(tty.notes[0]).toMatch(/pipe the value on stdin/);
    const big = await run(['secret', 'create', 'x'], a.fetchFn, { input: 'x'.repeat(64 * 1024 + 1) });
    expect(big).toMatchObject({ code: EXIT.USAGE, notes: ['zfaas: a secret holds at most 64 KiB; this value is larger'] });
    const missing = await run(['secret', 'create', 'x', '--from-file', join(dir, 'missing')], a.fetchFn);
    expect(missing.code).toBe(EXIT.USAGE);
    expect(a.seen).toHaveLength(2);
  });

  it('create of one that exists is exit 1 with the hint; set replaces it', async () => {
    const a = secretsApi();
    expect(await run(['secret', 'create', 'taken', '--value', 'x'], a.fetchFn)).toEqual({
      code: EXIT.FAILURE,
      stdout: '',
      notes: ['zfaas: secret taken exists: PUT /secrets/taken replaces its value'],
    });
    const r = await run(['secret', 'set', 'db'], a.fetchFn, { input: 'new' });
    expect(r.stdout).toBe('set secret db (3 B, version 2)');
    expect(a.seen[1]).toMatchObject({ method: 'PUT', path: '/secrets/db' });
    expect(sent(a.seen[1]!)).toBe('new');
  });

  it('list shows names, versions and sizes; rm deletes; --namespace goes along', async () => {
    const a = secretsApi();
    const r = await run(['secret', 'list', '--namespace', 'team-a'], a.fetchFn);
    expect(r.stdout).toBe(
      [
        'NAME      VERSION   SIZE     CREATED   UPDATED',
        'db        2         11 B     1m ago    5s ago',
        'tls-key   1         2.9 kB   1m ago    1m ago',
      ].join('\n'),
    );
    expect(a.seen[0]?.namespace).toBe('team-a');
    expect((await run(['secret', 'rm', 'db'], a.fetchFn)).stdout).toBe('deleted secret db');
    expect(await run(['secret', 'rm', 'nope'], a.fetchFn)).toMatchObject({ code: EXIT.FAILURE, notes: ['zfaas: secret nope not found'] });
  });
});

describe('deploy --secrets', () => {
  it('sends the names as one comma-separated field, and refuses a bad name', () => {
    expect(settingsFields({ secrets: ['db, tls-key', 'api.token'], retry: true })).toEqual([['secrets', 'db,tls-key,api.token']]);
    expect(settingsFields({ secrets: 'db', retry: true })).toEqual([['secrets', 'db']]);
    expect(settingsFields({ secrets: [], retry: true })).toEqual([]);
    expect(() => settingsFields({ secrets: ['../etc'], retry: true })).toThrow(/invalid --secrets name/);
  });
});

describe('quota readers', () => {
  it('read sizes in powers of 1024, whole numbers, and none', () => {
    expect(parseBytes('1048576', 'x')).toBe(1048576);
    expect(parseBytes('500k', 'x')).toBe(500 * 1024);
    expect(parseBytes('2GiB', 'x')).toBe(2 * 1024 ** 3);
    expect(parseBytes('1.5m', 'x')).toBe(1.5 * 1024 ** 2);
    expect(() => parseBytes('-1', 'x')).toThrow(/expected a size/);
    expect(readQuotas({ running: 'none', functions: '0', memory: '1g' })).toEqual({ running: null, functions: 0, memory: 1024 });
    expect(mergeQuotas({ running: 3, perMinute: 60 }, { running: null, functions: 2 })).toEqual({ perMinute: 60, functions: 2 });
    expect(readQuotas({ runtimes: 'node,python,node', isolation: 'none', schedules: '0' })).toEqual({
      runtimes: ['node', 'python'],
      isolation: null,
      schedules: 0,
    });
  });
});
