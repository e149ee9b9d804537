// The documentation's examples, run as written against `zfaas up`: the README's first function with the
// CLI, the seed's curl session (from examples/, as it says) and the same function as a web API, and the
// Lambda-style web function of docs/functions.md. Each fenced block runs in bash with `set -e`; `curl`
// is the real curl told to fail on an HTTP error and pointed at this platform's port (the blocks say
// localhost:3000), `zfaas` the built CLI with this platform as its API.
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, startUp, tempDir, type Platform } from './helpers/platform.js';

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

/** Runs a block in bash from `cwd`; resolves with its exit code and output. */
function run(code: string, cwd: string): Promise<{ code: number | null; out: string }> {
  const prelude = [
    'set -euo pipefail',
    `curl() { command curl -sS --fail-with-body "\${@//localhost:3000/127.0.0.1:${p.port}}"; }`,
    `zfaas() { node '${CLI}' "$@"; }`,
  ].join('\n');
  return new Promise((res) => {
    const child = spawn('bash', ['-c', `${prelude}\n${code}`], {
      cwd,
      env: { ...process.env, ZFAAS_API: p.api, ZFAAS_CONFIG: join(work, 'no-config.json') },
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
