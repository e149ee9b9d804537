// Issue 4: the zfaas CLI used as a person or a script uses it — the built CLI as a child process against
// one real `zfaas up` (Docker, ZeroMQ, LevelDB) — every command, its output and its exit code.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, freePort, http, ROOT, startUp, tempDir, waitFor, type Platform } from './helpers/platform.js';

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

/** Runs `zfaas ARGS` against the test platform; `input` is piped to its stdin (else stdin is empty). */
async function zf(args: string[], o: { env?: Record<string, string>; input?: string; api?: string | null } = {}): Promise<Run> {
  const env: Record<string, string> = { ...baseEnv(), ZFAAS_CONFIG: join(work, 'no-config.json'), ...o.env };
  if (o.api !== null) env.ZFAAS_API = o.api ?? p.api;
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.end(o.input ?? '');
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  return { code, stdout, stderr };
}

const json = <T>(r: Run): T => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};

/** One clear line on stderr, no stack trace. */
function expectOneLine(r: Run, pattern: RegExp): void {
  expect(r.stderr.trimEnd()).toMatch(pattern);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

interface CallJson {
  callNum: number;
  funcName: string;
  version?: number;
  status: string;
  result: string;
  error?: string;
  logs?: string;
}

beforeAll(async () => {
  work = await tempDir('zfaas-cli-');
  p = await startUp(['--miniworkers', '2']);
});

afterAll(async () => {
  await p?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('help', () => {
  it('every client command has --help with an Example section', async () => {
    const cmds = [
      'register-runtime',
      'runtimes',
      'runtime',
      'delete-runtime',
      'deploy',
      'functions',
      'function',
      'rollback',
      'delete',
      'invoke',
      'calls',
      'call',
      'logs',
      'nodes',
      'init',
      'config',
      'config set',
      'config unset',
      'whoami',
      'namespace',
      'namespace create',
      'namespace list',
      'namespace show',
      'namespace quotas',
      'key',
      'key create',
      'key list',
      'key rotate',
      'key revoke',
      'secret',
      'secret create',
      'secret set',
      'secret list',
      'secret rm',
    ];
    // `zfaas help A B` for several commands in one go costs one process each; sample a few for real...
    const real = await Promise.all(['deploy', 'invoke', 'calls'].map((c) => zf([c, '--help'])));
    for (const r of real) {
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\nExamples?:\n {2}zfaas /);
    }
    // ...and render every command's help, exactly as --help prints it, in one child process.
    const script = `
      import { Command } from 'commander';
      import { registerClientCommands } from ${JSON.stringify(join(ROOT, 'dist/cli/commands/index.js'))};
      const p = new Command('zfaas');
      registerClientCommands(p);
      const out = {};
      for (const path of JSON.parse(process.argv[1])) {
        let cmd = p;
        for (const n of path.split(' ')) cmd = cmd.commands.find((c) => c.name() === n);
        let text = '';
        cmd.configureOutput({ writeOut: (s) => (text += s) });
        cmd.outputHelp();
        out[path] = text;
      }
      console.log(JSON.stringify(out));`;
    const r = await new Promise<string>((res, rej) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(cmds)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let o = '';
      c.stdout.on('data', (b: Buffer) => (o += b.toString()));
      c.once('close', (code) => (code === 0 ? res(o) : rej(new Error(`help script exited ${code}`))));
    });
    const helps = JSON.parse(r) as Record<string, string>;
    // An example may feed zfaas from a pipe ("printf %s ... | zfaas secret create NAME").
    for (const c of cmds) expect(helps[c], c).toMatch(/\nExamples?:\n {2}(?:[^\n]*\| )?zfaas /);
  });
});

describe('runtimes', () => {
  it('lists the built-in runtimes as a table and as JSON', async () => {
    const [table, list] = await Promise.all([zf(['runtimes']), zf(['runtimes', '--json'])]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+IMAGE\s+PATH/);
    expect(table.stdout).toMatch(/\nnode\s+zfaas\/node:latest\s+\/ws/);
    expect(json<{ name: string }[]>(list).map((r) => r.name)).toEqual(expect.arrayContaining(['node', 'python']));
  });

  it('registers the seed runtime from flags and another from a file, shows and deletes them', async () => {
    const file = join(work, 'runtime.json');
    await writeFile(file, JSON.stringify({ name: 'ignored', image: 'zfaas/node:latest', path: '/code', run: 'node index.js' }));
    const [seed, fromFile] = await Promise.all([
      zf([
        'register-runtime',
        '--image',
        'pythonruntime',
        '--path',
        '/ws',
        '--dependencies',
        'pip3 install -r requirements.txt',
        '--run',
        'python3 test.py',
      ]),
      zf(['register-runtime', 'filert', '--file', file, '--json']),
    ]);
    expect(seed.code).toBe(0);
    expect(seed.stdout).toBe('registered runtime pythonruntime (image pythonruntime)\n');
    expect(json(fromFile)).toMatchObject({
      name: 'filert',
      image: 'zfaas/node:latest',
      path: '/code',
      run: 'node index.js',
      dependencies: '',
    });

    const [shown, deleted] = await Promise.all([zf(['runtime', 'pythonruntime']), zf(['delete-runtime', 'filert'])]);
    expect({ code: shown.code, stderr: shown.stderr }).toEqual({ code: 0, stderr: '' });
    expect(shown.stdout).toMatch(/^image:\s+pythonruntime$/m);
    expect(shown.stdout).toMatch(/^dependencies:\s+pip3 install -r requirements.txt$/m);
    expect(deleted.stdout).toBe('deleted runtime filert\n');
    expect(json<{ name: string }[]>(await zf(['runtimes', '--json'])).map((r) => r.name)).not.toContain('filert');
  });

  it('refuses bad definitions locally and reports the API refusals', async () => {
    const [missing, bad, unknown] = await Promise.all([
      zf(['register-runtime', 'x', '--image', 'zfaas/node:latest']),
      zf(['register-runtime', 'x', '--image', 'NOT AN IMAGE', '--run', 'true']),
      zf(['delete-runtime', 'nope']),
    ]);
    expect(missing.code).toBe(2);
    expectOneLine(missing, /give --image and --run/);
    expect(bad.code).toBe(2);
    expectOneLine(bad, /invalid runtime: image/);
    expect(unknown.code).toBe(1);
    expectOneLine(unknown, /^zfaas: runtime nope not found$/);
  });
});

describe('init, deploy, versions, rollback', () => {
  it('init scaffolds a node function that deploys as is, honouring .zfaasignore', async () => {
    const dir = join(work, 'hello');
    const init = await zf(['init', 'hello', '--runtime', 'node', '--dir', dir]);
    expect(init.code).toBe(0);
    expect(init.stdout).toMatch(/index\.js, package\.json, \.zfaasignore/);
    // Something that must not travel: listed in .zfaasignore.
    await writeFile(join(dir, 'secret.txt'), 'do not upload');
    await writeFile(join(dir, '.zfaasignore'), `${await readFile(join(dir, '.zfaasignore'), 'utf8')}secret.txt\n`);

    const [d, again] = await Promise.all([
      zf([
        'deploy',
        'hello',
        dir,
        '--runtime',
        'node',
        '--timeout',
        '10',
        '--memory',
        '128',
        '--concurrency',
        '3',
        '--env',
        'GREETING=hola',
        '--json',
      ]),
      zf(['init', 'hello', '--runtime', 'node', '--dir', dir]),
    ]);
    expect(again.code).toBe(1);
    expectOneLine(again, /already exists and is not empty/);
    const fn = json<{
      functionName: string;
      version: number;
      files: string[];
      settings: { timeout: number; memory: number; concurrency: number; env: Record<string, string> };
    }>(d);
    expect(fn).toMatchObject({
      functionName: 'hello',
      version: 1,
      settings: { timeout: 10, memory: 128, concurrency: 3, env: { GREETING: 'hola' } },
    });
    expect(fn.files.sort()).toEqual(['index.js', 'package.json']);

    const r = await zf(['invoke', 'hello', 'name=ana']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.stringify({ hello: 'ana' }, null, 2)}\n`);
  });

  it('init scaffolds a python function; deploy guesses its runtime', async () => {
    const dir = join(work, 'greet');
    expect((await zf(['init', 'greet', '--runtime', 'python', '--dir', dir])).code).toBe(0);
    expect((await stat(join(dir, 'handler.py'))).isFile()).toBe(true);
    expect((await stat(join(dir, 'requirements.txt'))).isFile()).toBe(true);
    const d = await zf(['deploy', 'greet', dir]);
    expect(d.code).toBe(0);
    expect(d.stderr).toContain('runtime: python');
    expect(d.stdout).toMatch(/^deployed greet version 1 \(runtime python, /);
    const r = await zf(['invoke', 'greet', 'name=bo']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ hello: 'bo' });
  });

  it('a redeploy is version 2, NAME@1 still runs the old code, rollback switches back and forth', async () => {
    const dir = join(work, 'hello');
    await writeFile(join(dir, 'index.js'), 'module.exports = async (p) => ({ hello: p.name, v: 2, greeting: process.env.GREETING });\n');
    // No --runtime: a redeploy keeps the function's runtime.
    const d = await zf(['deploy', 'hello', dir, '--env', 'GREETING=hi', '--format', 'json', '--public', '--rate-limit', '200']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^deployed hello version 2 \(runtime node, /);

    const [v2, v1, desc] = await Promise.all([
      zf(['invoke', 'hello', 'name=ana']),
      zf(['invoke', 'hello@1', 'name=ana']),
      zf(['function', 'hello']),
    ]);
    expect(JSON.parse(v2.stdout)).toEqual({ hello: 'ana', v: 2, greeting: 'hi' });
    expect(JSON.parse(v1.stdout)).toEqual({ hello: 'ana' });
    expect(desc.stdout).toMatch(/^version:\s+2$/m);
    expect(desc.stdout).toMatch(/^format:\s+json$/m);
    expect(desc.stdout).toMatch(/^public:\s+yes: its web path answers without the token, at most 200 requests\/s$/m);
    expect(desc.stdout).toMatch(/^\s+1\s+\d/m);
    expect(desc.stdout).toMatch(/^\*\s+2\s+\d/m);

    const rb = await zf(['rollback', 'hello']);
    expect(rb.stdout).toBe('hello now runs version 1\n');
    const [old, none] = await Promise.all([zf(['invoke', 'hello', 'name=cy']), zf(['rollback', 'hello', '--version', '9'])]);
    expect(JSON.parse(old.stdout)).toEqual({ hello: 'cy' });
    expect((await zf(['rollback', 'hello', '--version', '2'])).stdout).toBe('hello now runs version 2\n');
    expect(none.code).toBe(1);
    expectOneLine(none, /^zfaas: function hello has no version 9$/);
  });

  it('deploys an archive file as is, and a large directory through the streamed upload', async () => {
    const tgz = join(work, 'echo.tar.gz');
    await writeFile(tgz, await packFiles({ 'index.js': 'module.exports = async (p) => p;\n' }));
    const d = await zf(['deploy', 'echo', tgz, '--runtime', 'node', '--timeout', '5']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^deployed echo version 1 \(runtime node, .*1 file\)$/m);

    const big = join(work, 'big');
    await mkdir(big);
    await writeFile(join(big, 'index.js'), 'module.exports = () => "big";\n');
    await writeFile(join(big, 'blob.bin'), randomBytes(3 * 1024 * 1024)); // incompressible: the upload stays > 1 MiB
    const b = await zf(['deploy', 'big', big, '--runtime', 'node', '--json']);
    expect(json<{ version: number; size: number }>(b).size).toBeGreaterThan(1024 * 1024);
    expect((await zf(['invoke', 'big'])).stdout).toBe('big\n');
  });

  it('refuses what cannot be deployed, with one line and the right code', async () => {
    const hello = join(work, 'hello');
    const [noPath, notArchive, noRuntime, badEnv, badPolicy, badFormat, badRate] = await Promise.all([
      zf(['deploy', 'x', join(work, 'missing'), '--runtime', 'node']),
      zf(['deploy', 'x', join(work, 'runtime.json'), '--runtime', 'node']),
      zf(['deploy', 'x', hello, '--runtime', 'nort']),
      zf(['deploy', 'x', hello, '--runtime', 'node', '--env', 'NOEQUALS']),
      zf(['deploy', 'x', hello, '--runtime', 'node', '--policy', 'sometimes']),
      zf(['deploy', 'x', hello, '--runtime', 'node', '--format', 'soap']),
      zf(['deploy', 'x', hello, '--runtime', 'node', '--public', '--rate-limit', '100001']),
    ]);
    expect(noPath.code).toBe(2);
    expectOneLine(noPath, /no such file or directory/);
    expect(notArchive.code).toBe(2);
    expectOneLine(notArchive, /is not a \.tar\.gz, \.tar or \.zip archive/);
    expect(noRuntime.code).toBe(1);
    expectOneLine(noRuntime, /^zfaas: runtime nort not found$/);
    expect(badEnv.code).toBe(2);
    expectOneLine(badEnv, /invalid --env "NOEQUALS"/);
    expect(badPolicy.code).toBe(2);
    expect(badPolicy.stderr).toMatch(/Allowed choices are none, runtime, function/);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr).toMatch(/Allowed choices are auto, json, lambda, lambda-v1, openwhisk, openfaas, gcf/);
    expect(badRate.code).toBe(1);
    expectOneLine(badRate, /rateLimit: expected a whole number of web requests per second from 1 to 100000 \(unset: 50\), got "100001"/);
  });
});

describe('invoke', () => {
  it('takes params from --params, key=value pairs, a file and stdin', async () => {
    const pf = join(work, 'params.json');
    await writeFile(pf, '{"from": "file"}');
    const [params, pairs, file, piped, dash] = await Promise.all([
      zf(['invoke', 'echo', '--params', '{"a": [1, 2]}']),
      zf(['invoke', 'echo', 'n=3', 's=abc', 'b=true', 'o={"x":null}']),
      zf(['invoke', 'echo', '--file', pf, 'extra=1']),
      zf(['invoke', 'echo'], { input: '{"from": "stdin"}' }),
      zf(['invoke', 'echo', '-', 'k=v'], { input: '{"from": "dash"}' }),
    ]);
    expect(JSON.parse(params.stdout)).toEqual({ a: [1, 2] });
    expect(JSON.parse(pairs.stdout)).toEqual({ n: 3, s: 'abc', b: true, o: { x: null } });
    expect(JSON.parse(file.stdout)).toEqual({ from: 'file', extra: 1 });
    expect(JSON.parse(piped.stdout)).toEqual({ from: 'stdin' });
    expect(JSON.parse(dash.stdout)).toEqual({ from: 'dash', k: 'v' });
    // Pretty JSON for people.
    expect(params.stdout).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}\n');
  });

  it('--async prints the call number; call and calls show it', async () => {
    const r = await zf(['invoke', 'echo', '--async', 'x=1']);
    expect(r.code).toBe(0);
    const n = Number(r.stdout.trim());
    expect(Number.isInteger(n) && n > 0).toBe(true);
    const done = await waitFor('async call to finish', async () => {
      const c = json<CallJson>(await zf(['call', String(n), '--json']));
      return c.status === 'DONE' ? c : undefined;
    });
    expect(JSON.parse(done.result)).toEqual({ x: 1 });
    const human = await zf(['call', String(n)]);
    expect(human.stdout).toMatch(/^status:\s+DONE$/m);
    expect(human.stdout).toMatch(/^function:\s+echo@1$/m);
    expect(human.stdout).toMatch(/result:\n\{\n {2}"x": 1\n\}/);
  });

  it('exits 3 on ERROR and 4 on TIMEOUT with the error on stderr; logs shows what the function printed', async () => {
    const bad = await packFiles({
      'index.js': `module.exports = async (p) => {
  if (p.sleep) await new Promise((r) => setTimeout(r, p.sleep));
  if (p.fail) { console.log('about to fail'); throw new Error('boom ' + p.fail); }
  return p;
};
`,
    });
    await writeFile(join(work, 'bad.tar.gz'), bad);
    expect((await zf(['deploy', 'bad', join(work, 'bad.tar.gz'), '--runtime', 'node', '--timeout', '5'])).code).toBe(0);

    const [err, slow] = await Promise.all([zf(['invoke', 'bad', 'fail=yes']), zf(['invoke', 'bad', 'sleep=12000'])]);
    expect(err.code).toBe(3);
    expect(err.stdout).toBe('');
    expect(err.stderr).toMatch(/^zfaas: call \d+ ended in ERROR: .*boom yes/s);
    expect(slow.code).toBe(4);
    expect(slow.stderr).toMatch(/^zfaas: call \d+ ended in TIMEOUT: /);

    const failed = json<CallJson[]>(await zf(['calls', '--function', 'bad', '--status', 'error', '--json']));
    expect(failed).toHaveLength(1);
    const [logs, logsJson] = await Promise.all([
      zf(['logs', String(failed[0]!.callNum)]),
      zf(['logs', String(failed[0]!.callNum), '--json']),
    ]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('about to fail');
    expect(logs.stdout).toContain('boom yes');
    const lj = json<{ logs: string; error: string; status: string }>(logsJson);
    expect(lj.status).toBe('ERROR');
    expect(lj.logs + lj.error).toContain('about to fail');
  });

  it('refuses bad params and unknown functions', async () => {
    const [badJson, badPair, twoWays, badStdin, unknown, noVersion] = await Promise.all([
      zf(['invoke', 'echo', '--params', '{nope']),
      zf(['invoke', 'echo', 'novalue']),
      zf(['invoke', 'echo', '--params', '{}', '--file', 'x.json']),
      zf(['invoke', 'echo'], { input: 'not json' }),
      zf(['invoke', 'ghost']),
      zf(['invoke', 'echo@7']),
    ]);
    expect(badJson.code).toBe(2);
    expectOneLine(badJson, /^zfaas: --params is not valid JSON/);
    expect(badPair.code).toBe(2);
    expectOneLine(badPair, /expected key=value, got "novalue"/);
    expect(twoWays.code).toBe(2);
    expect(badStdin.code).toBe(2);
    expectOneLine(badStdin, /the params on stdin is not valid JSON/);
    expect(unknown.code).toBe(1);
    expectOneLine(unknown, /^zfaas: function ghost not found$/);
    expect(noVersion.code).toBe(1);
    expectOneLine(noVersion, /^zfaas: function echo has no version 7$/);
  });
});

describe('listings', () => {
  it('calls: newest first, filtered, paged, as a table and JSON', async () => {
    const [p1, echoRun, table, badStatus] = await Promise.all([
      zf(['calls', '--limit', '3', '--json']),
      zf(['calls', '--function', 'echo', '--status', 'done', '--json']),
      zf(['calls', '--limit', '2']),
      zf(['calls', '--status', 'sleepy']),
    ]);
    const page1 = json<CallJson[]>(p1);
    expect(page1).toHaveLength(3);
    const nums = page1.map((c) => c.callNum);
    expect([...nums].sort((a, b) => b - a)).toEqual(nums);
    const page2 = json<CallJson[]>(await zf(['calls', '--limit', '3', '--before', String(nums[2]), '--json']));
    expect(page2.length).toBeGreaterThan(0);
    expect(Math.max(...page2.map((c) => c.callNum))).toBeLessThan(nums[2]!);

    const echoDone = json<CallJson[]>(echoRun);
    expect(echoDone.length).toBeGreaterThanOrEqual(5);
    expect(echoDone.every((c) => c.funcName === 'echo' && c.status === 'DONE')).toBe(true);

    expect(table.stdout).toMatch(/^CALL\s+FUNCTION\s+STATUS\s+NODE\s+DURATION/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stderr).toMatch(/^more: zfaas calls --before \d+/);

    expect(badStatus.code).toBe(2);
  });

  it('call N: unknown is 404 with its message, not-a-number is a usage error', async () => {
    const [missing, nan, noLogs] = await Promise.all([zf(['call', '99999']), zf(['call', 'abc']), zf(['logs', '99999'])]);
    expect(missing.code).toBe(1);
    expectOneLine(missing, /^zfaas: call 99999 not found$/);
    expect(nan.code).toBe(2);
    expectOneLine(nan, /call number must be a whole number/);
    expect(noLogs.code).toBe(1);
  });

  it('functions and nodes, as tables and JSON', async () => {
    const [ft, fj, nt, nj] = await Promise.all([zf(['functions']), zf(['functions', '--json']), zf(['nodes']), zf(['nodes', '--json'])]);
    expect(ft.stdout).toMatch(/^NAME\s+VERSION\s+RUNTIME/);
    expect(ft.stdout).toMatch(/^hello\s+2\s+node\s/m);
    expect(json<{ functionName: string }[]>(fj).map((f) => f.functionName)).toEqual(
      expect.arrayContaining(['hello', 'greet', 'echo', 'bad', 'big']),
    );
    expect(nt.stdout).toMatch(/^NODE\s+STATE\s+RUNNING/);
    const nodes = json<{ id: string; state: string }[]>(nj);
    expect(nodes).toHaveLength(1);
    expect(nodes[0]!.state).toBe('alive');
    expect(nt.stdout).toContain(nodes[0]!.id);
  });

  it('delete removes a function; its calls stay readable', async () => {
    const before = json<CallJson[]>(await zf(['calls', '--function', 'big', '--json']));
    const d = await zf(['delete', 'big']);
    expect(d.code).toBe(0);
    expect(d.stdout).toBe('deleted function big\n');
    expect(json<{ functionName: string }[]>(await zf(['functions', '--json'])).map((f) => f.functionName)).not.toContain('big');
    // A runtime in use cannot go.
    const [gone, again, kept, inUse] = await Promise.all([
      zf(['invoke', 'big']),
      zf(['delete', 'big']),
      zf(['call', String(before[0]!.callNum), '--json']),
      zf(['delete-runtime', 'node']),
    ]);
    expect(gone.code).toBe(1);
    expectOneLine(gone, /function big not found/);
    expect(again.code).toBe(1);
    expect(json<CallJson>(kept).funcName).toBe('big');
    expect(inUse.code).toBe(1);
    expectOneLine(inUse, /used by \d+ function\(s\)/);
  });
});

describe('configuration and failures to connect', () => {
  let fake: Server;
  let fakeUrl: string;
  const seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    // A stand-in API: refuses every token on /runtimes and answers something that is not zfaas elsewhere.
    fake = createServer((req, res) => {
      seen.push(req.headers);
      if (req.url?.startsWith('/runtimes')) res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad token"}');
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>');
    });
    const port = await freePort();
    await new Promise<void>((r) => fake.listen(port, '127.0.0.1', r));
    fakeUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await new Promise((r) => fake?.close(r));
  });

  it('an unreachable API exits 69 with one line', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const [flag, env] = await Promise.all([zf(['--api', dead, 'functions']), zf(['invoke', 'hello'], { api: dead })]);
    for (const r of [flag, env]) {
      expect(r.code).toBe(69);
      expectOneLine(r, new RegExp(`^zfaas: cannot reach the zfaas API at ${dead} \\(connection refused\\)`));
    }
  });

  it('reads the API and token from the config file; ZFAAS_API and --api win over it; the token is sent as a bearer', async () => {
    const cfg = join(work, 'config.json');
    const env = { ZFAAS_CONFIG: cfg };
    expect((await zf(['config', 'set', 'api', fakeUrl], { env, api: null })).code).toBe(0);
    expect((await zf(['config', 'set', 'token', 'sekret'], { env, api: null })).code).toBe(0);
    expect(JSON.parse(await readFile(cfg, 'utf8'))).toEqual({ api: fakeUrl, token: 'sekret' });

    const [shown, refused, odd, envWins, flagWins] = await Promise.all([
      zf(['config', '--json'], { env, api: null }),
      zf(['runtimes'], { env, api: null }),
      zf(['functions'], { env, api: null }),
      // ZFAAS_API beats the file, --api beats ZFAAS_API (both lead to the real API here).
      zf(['functions', '--json'], { env, api: p.api }),
      zf(['--api', p.api, 'functions', '--json'], { env, api: fakeUrl }),
    ]);
    expect(json(shown)).toEqual({ api: fakeUrl, apiFrom: 'file', token: 'set', file: cfg });
    expect(refused.code).toBe(77);
    expectOneLine(refused, /^zfaas: bad token$/);
    expect(seen.map((h) => h.authorization)).toEqual(['Bearer sekret', 'Bearer sekret']);
    // Not a zfaas API: said so, not a crash.
    expect(odd.code).toBe(1);
    expectOneLine(odd, /unexpected reply .* is --api pointing at a zfaas API/);
    expect(json<unknown[]>(envWins).length).toBeGreaterThan(0);
    expect(json<unknown[]>(flagWins).length).toBeGreaterThan(0);

    // --token beats ZFAAS_TOKEN, which beats the file's token; without any, no header at all.
    // (One request each: had --token lost to ZFAAS_TOKEN, "fromenv" would be there twice.)
    seen.length = 0;
    await Promise.all([
      zf(['--api', fakeUrl, 'runtimes', '--token', 'flagged'], { env: { ...env, ZFAAS_TOKEN: 'fromenv' }, api: null }),
      zf(['runtimes'], { env: { ...env, ZFAAS_TOKEN: 'fromenv' }, api: null }),
    ]);
    expect(seen.map((h) => h.authorization).sort()).toEqual(['Bearer flagged', 'Bearer fromenv']);
    seen.length = 0;
    expect((await zf(['config', 'unset', 'token'], { env, api: null })).code).toBe(0);
    await zf(['runtimes'], { env, api: null });
    expect(seen.map((h) => h.authorization)).toEqual([undefined]);
  });

  it('a bad API address or config file is one line', async () => {
    const badUrl = await zf(['--api', 'ftp://x', 'functions']);
    expect(badUrl.code).toBe(2);
    expectOneLine(badUrl, /only http and https/);
    const cfg = join(work, 'broken.json');
    await writeFile(cfg, '{oops');
    const broken = await zf(['functions'], { env: { ZFAAS_CONFIG: cfg }, api: null });
    expect(broken.code).toBe(1);
    expectOneLine(broken, /config file .* is not valid JSON/);
  });
});

// The seed's dice archive through the CLI, as the README shows it.
describe('the seed session through the CLI', () => {
  it('deploys dice on the seed runtime and rolls four dice', async () => {
    const d = await zf(['deploy', 'dice', join(ROOT, 'runtimes/python/dice/python.tar.gz'), '--runtime', 'pythonruntime']);
    expect(d.code).toBe(0);
    const r = await zf(['invoke', 'dice', '--params', '{"roll":"4d6"}']);
    expect(r.code).toBe(0);
    const rolls = JSON.parse(r.stdout) as number[];
    expect(rolls).toHaveLength(4);
    expect(rolls.every((n) => Number.isInteger(n) && n >= 1 && n <= 6)).toBe(true);
    // And the same call is in the API's own record.
    const calls = await http<CallJson[]>('GET', `${p.api}/calls?format=list&funcName=dice`);
    expect(calls.body[0]?.status).toBe('DONE');
  });
});
