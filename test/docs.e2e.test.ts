// The documentation's examples, run as written against `zfaas up`: the README's first function with the
// CLI, the seed's curl session (from examples/, as it says) and the same function as a web API, and the
// Lambda-style web function of docs/functions.md. Each fenced block runs in bash with `set -e`; `curl`
// is the real curl told to fail on an HTTP error and pointed at this platform's port (the blocks say
// localhost:3000), `zfaas` the built CLI with this platform as its API. Where a block holds a placeholder
// (a batch id, a key shown once), the test puts the real one in its place, and says so.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TEST_BACKUP_KEY, freePort, startUp, tempDir, waitHealthy, zfaas, type Platform } from './helpers/platform.js';

let p: Platform;
let work: string;

beforeAll(async () => {
  p = await startUp();
  work = await tempDir('zfaas-docs-');
});

afterAll(async () => {
  await p?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The fenced bash blocks of a markdown file, in order, each with the heading it stands under. */
async function blocks(file: string): Promise<Array<{ heading: string; code: string }>> {
  const md = await readFile(join(ROOT, file), 'utf8');
  const out: Array<{ heading: string; code: string }> = [];
  let heading = '';
  let code: string[] | undefined;
  for (const line of md.split('\n')) {
    if (code) {
      if (line.startsWith('```')) {
        out.push({ heading, code: code.join('\n') });
        code = undefined;
      } else code.push(line);
    } else if (line.startsWith('#')) heading = line.replace(/^#+ /, '');
    else if (line.trim() === '```bash') code = [];
  }
  return out;
}

/** Runs a block in bash from `cwd`; resolves with its exit code and output. $LAST holds curl's last answer. */
function run(
  code: string,
  cwd: string,
  on: Pick<Platform, 'api' | 'port'> = p,
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const prelude = [
    'set -euo pipefail',
    `LAST='${join(work, 'last-answer')}'`,
    `curl() { command curl -sS --fail-with-body "\${@//localhost:3000/127.0.0.1:${on.port}}" | tee "$LAST"; echo; }`,
    `zfaas() { node '${CLI}' "$@"; }`,
  ].join('\n');
  return new Promise((res) => {
    const child = spawn('bash', ['-c', `${prelude}\n${code}`], {
      cwd,
      env: { ...process.env, ZFAAS_API: on.api, ZFAAS_CONFIG: join(work, 'no-config.json'), ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.on('exit', (c) => res({ code: c, out }));
  });
}

describe("the README's examples", () => {
  it('a first function with the CLI: init, deploy, invoke, calls, logs', async () => {
    const [cli] = (await blocks('README.md')).filter((b) => b.heading === 'A first function');
    expect(cli?.code).toContain('zfaas init hello');
    const r = await run(cli!.code, work);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/deployed hello version 1/);
    expect(r.out).toContain('"hello":"ana"');
    expect(r.out).toContain('greeting ana');
  });

  it("the seed's curl session from examples/, and the same function as a web API", async () => {
    const [seed, web] = (await blocks('README.md')).filter((b) => b.heading === 'A first function').slice(1);
    expect(seed?.code).toContain('localhost:3000/registerRuntime');
    const s = await run(seed!.code, join(ROOT, 'examples'));
    expect(s.code, s.out).toBe(0);
    expect(s.out).toMatch(/"funcName":"dice"/);
    expect(s.out).toContain('"pythonruntime"');
    const w = await run(web!.code, join(ROOT, 'examples'));
    expect(w.code, w.out).toBe(0);
    expect(w.out).toMatch(/^\[\d,\d\]/); // two dice
    expect(w.out).toMatch(/"status":"DONE"/);
  });
});

describe("docs/functions.md's examples", () => {
  it('a function in the Lambda convention answers its web path in its own form', async () => {
    await mkdir(join(work, 'lambda'));
    const init = await run('zfaas init hello --template lambda', join(work, 'lambda'));
    expect(init.code, init.out).toBe(0);
    const [deploy] = (await blocks('docs/functions.md')).filter((b) => b.code.includes('--format lambda'));
    const r = await run(deploy!.code, join(work, 'lambda'));
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/^HTTP\/1\.1 200 OK/m);
    expect(r.out).toMatch(/x-zfaas-status: DONE/i);
  });
});

describe("docs/triggers.md's examples", () => {
  it('a batch: started from a JSON array and from JSON lines, its progress, results and the list', async () => {
    const fn = join(work, 'square');
    await mkdir(fn);
    await writeFile(join(fn, 'index.js'), 'module.exports = async (p) => p.n * p.n;\n');
    for (let v = 1; v <= 2; v++) {
      const d = await run('zfaas deploy square ./square --runtime node', work);
      expect(d.code, d.out).toBe(0);
    }
    await writeFile(join(work, 'items.jsonl'), '{"n":4}\n{"n":5}\n');
    const [batch] = (await blocks('docs/triggers.md')).filter((b) => b.code.includes('/batch/square'));
    const [first, ...rest] = batch!.code.split('\n');
    const started = await run(first!, work);
    expect(started.code, started.out).toBe(0);
    const id = (JSON.parse(started.out) as { batchId: string }).batchId;
    // the page's batch id stands for the one just started
    const r = await run(rest.join('\n').replaceAll('3fd0956c6afd', id), work);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`"funcName":"square","version":2`);
    expect(r.out).toMatch(/"items":\[\{"index":0,/);
  });
});

describe("docs/teams-and-security.md's examples", () => {
  const TOKEN = 'docs-test-operator-token-0123456789';
  let teams: Platform;
  beforeAll(async () => {
    teams = await startUp(['--miniworkers', '1'], { ZFAAS_TOKEN: TOKEN });
  });
  afterAll(async () => {
    await teams?.stop();
  });

  it('a namespace, a developer key, and the functions that key sees', async () => {
    const [block] = (await blocks('docs/teams-and-security.md')).filter((b) => b.code.includes('/namespaces/team-a/keys'));
    // The page makes a token for a new API; this API already has one. The key is the one just shown.
    const code = block!.code
      .replace('$(openssl rand -base64 24)', `'${TOKEN}'`)
      .replace(
        /^KEY=zfk_\.\.\..*$/m,
        'KEY=$(node -e \'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).key)\' "$LAST")',
      );
    expect(code).not.toContain('zfk_...');
    const r = await run(code, work, teams);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('"role":"developer"');
    expect(r.out.trim().split('\n').at(-1)).toBe('[]'); // team-a has no functions yet
  });
});

describe("docs/operations.md's examples", () => {
  it('a backup of a running zfaas up over its own socket, restored into a new folder', async () => {
    const dir = join(work, 'ops');
    await mkdir(dir);
    const port = await freePort();
    // as the page has it: zfaas up --data ./data, its DB service on its default socket
    const up = zfaas(['up', '--port', String(port), '--data', join(dir, 'data'), '--miniworkers', '1']);
    try {
      const api = `http://127.0.0.1:${port}`;
      await waitHealthy(api, 1, up);
      const [block] = (await blocks('docs/operations.md')).filter((b) => b.code.includes('zfaas restore'));
      const lines = block!.code.split('\n');
      const backup = lines.find((l) => l.startsWith('zfaas backup --db ipc://'));
      const restore = lines.find((l) => l.startsWith('zfaas restore'));
      // the page's dated file stands for today's (the lines with CURVE or a service that keeps running are not run)
      const code = ['D=$(date +%F)', backup!.replace('$(date +%F)', '$D'), restore!.replace('2026-12-01', '$D')].join('\n');
      const r = await run(code, dir, { api, port }, { ZFAAS_BACKUP_KEY: TEST_BACKUP_KEY });
      expect(r.code, r.out).toBe(0);
      expect((await readdir(join(dir, 'data-restored', 'db'))).length).toBeGreaterThan(0);
    } finally {
      await up.stop();
    }
  });
});
