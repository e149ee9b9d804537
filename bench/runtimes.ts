// The built-in runtimes and a container-image function side by side (npm run bench:runtimes), in one
// `zfaas up` (4 miniworkers): the same echo in each language (node, python, java, go; go's compiled at
// deploy) and as an image whose own HTTP server (node's http module, on zfaas/node:latest) answers through
// zfaas-bridge. For each: the warm call's p50 (one caller), the warm calls per second (16 callers), the
// cold call under policy none (a fresh container per call: median of BENCH_COLD), the deploy (upload to a
// built version: go's compiles there) and the image's size, each beside node's in the same run.
// BENCH_WARM (default 500 calls), BENCH_SECONDS (default 5), BENCH_COLD (default 5); BENCH_RUNTIMES (a
// comma-separated list of node, python, java, go, image; node, the baseline, always runs first).
import Docker from 'dockerode';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packFiles } from '../test/helpers/archives.js';
import { ROOT, startUp, upload, type Platform } from '../test/helpers/platform.js';

const run = promisify(execFile);
const WARM = Number(process.env.BENCH_WARM ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const COLD = Number(process.env.BENCH_COLD ?? 5);
const CLIENTS = 16;
const IMAGE = 'zfaas-bench/image-echo:1';

const ECHO: Record<string, Record<string, string>> = {
  node: { 'index.js': 'module.exports = (p) => ({ echo: p });\n' },
  python: { 'handler.py': 'def handler(p):\n    return {"echo": p}\n' },
  java: {
    'Echo.java':
      'import java.util.Map;\npublic class Echo { public Map<String, Object> handleRequest(Map<String, Object> p) { return Map.of("echo", p); } }\n',
  },
  go: { 'main.go': 'package main\n\nfunc Handler(p map[string]any) (map[string]any, error) { return map[string]any{"echo": p}, nil }\n' },
};

const SERVER = `const http = require('node:http');
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.stringify({ echo: JSON.parse(Buffer.concat(chunks).toString() || '{}') });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
}).listen(Number(process.env.PORT));
`;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function call(p: Platform, fn: string): Promise<number> {
  const t = process.hrtime.bigint();
  const r = await fetch(`${p.api}/function/${fn}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"i":1}' });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${fn}: ${r.status} ${text.slice(0, 300)}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function perSecond(p: Platform, fn: string): Promise<number> {
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    [...Array(CLIENTS).keys()].map(async () => {
      while (Date.now() < end) {
        await call(p, fn);
        n++;
      }
    }),
  );
  return n / SECONDS;
}

// The image of the HTTP-image function, built on this engine (and removed after the run).
async function buildImage(docker: Docker): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'zfaas-bench-image-'));
  try {
    await writeFile(join(dir, 'server.js'), SERVER);
    await writeFile(join(dir, 'Dockerfile'), 'FROM zfaas/node:latest\nCOPY server.js /app/server.js\nCMD ["node", "/app/server.js"]\n');
    const stream = await docker.buildImage(
      { context: dir, src: ['server.js', 'Dockerfile'] },
      { t: IMAGE, labels: { 'zfaas.bench': 'image' } },
    );
    await new Promise<void>((ok, fail) => docker.modem.followProgress(stream, (e: Error | null) => (e ? fail(e) : ok())));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// Deploys one function of a kind under `policy`; resolves once its version is built (go compiles then).
async function deploy(p: Platform, kind: string, name: string, policy: 'function' | 'none'): Promise<void> {
  let status: number;
  let body: unknown;
  if (kind === 'image') {
    const r = await fetch(`${p.api}/registerImageFunction/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: IMAGE, policy }),
    });
    [status, body] = [r.status, await r.text()];
  } else {
    const r = await upload(`${p.api}/registerFunction/${kind}/${name}`, await packFiles(ECHO[kind]!), `${kind}.tar.gz`, { policy });
    [status, body] = [r.status, r.body];
  }
  if (status !== 201) throw new Error(`${name}: deploy answered ${status} ${JSON.stringify(body)}`);
}

async function main(): Promise<void> {
  const only = process.env.BENCH_RUNTIMES?.split(',').map((r) => r.trim());
  const kinds = [...Object.keys(ECHO), 'image'].filter((k) => k === 'node' || !only || only.includes(k));
  const docker = new Docker();
  if (kinds.includes('image')) {
    await run('bash', [join(ROOT, 'runtimes', 'image', 'build-bridge.sh')]);
    await buildImage(docker);
  }
  const p = await startUp(['--miniworkers', '4', '--policy', 'function'], { ZFAAS_LOG_LEVEL: 'warn' });
  const rows: Record<string, string | number>[] = [];
  try {
    let base: { p50: number; rps: number; cold: number; deploy: number } | undefined;
    for (const kind of kinds) {
      const t0 = process.hrtime.bigint();
      await deploy(p, kind, `warm-${kind}`, 'function');
      const deployMs = Number(process.hrtime.bigint() - t0) / 1e6;
      await deploy(p, kind, `cold-${kind}`, 'none');
      for (let i = 0; i < 50; i++) await call(p, `warm-${kind}`);
      const xs: number[] = [];
      for (let i = 0; i < WARM; i++) xs.push(await call(p, `warm-${kind}`));
      const rps = await perSecond(p, `warm-${kind}`);
      const cold: number[] = [];
      for (let i = 0; i < COLD; i++) cold.push(await call(p, `cold-${kind}`));
      const image = kind === 'image' ? IMAGE : `zfaas/${kind}:latest`;
      const size = Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', image])).stdout.trim());
      const m = { p50: median(xs), rps, cold: median(cold), deploy: deployMs };
      base ??= m;
      rows.push({
        function: kind === 'image' ? 'HTTP image (zfaas-bridge)' : `${kind} runtime`,
        'warm p50': `${m.p50.toFixed(2)} ms (x${(m.p50 / base.p50).toFixed(2)})`,
        'warm calls/s': `${m.rps.toFixed(0)} (x${(m.rps / base.rps).toFixed(2)})`,
        'cold (policy none)': `${m.cold.toFixed(0)} ms (x${(m.cold / base.cold).toFixed(2)})`,
        deploy: `${m.deploy.toFixed(0)} ms (x${(m.deploy / base.deploy).toFixed(2)})`,
        image: `${(size / 1e6).toFixed(0)} MB`,
      });
    }
    console.table(rows);
  } finally {
    await p.stop(); // its processes, then its data folder
    await docker
      .getImage(IMAGE)
      .remove({ force: true })
      .catch(() => undefined);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
