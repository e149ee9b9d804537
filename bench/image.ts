// A container-image function beside the node runtime (npm run bench:image), in one `zfaas up` (4
// miniworkers): the same echo, once as a node function (the loader calls the handler) and once as an image
// whose own HTTP server (node's http module, on zfaas/node:latest) answers through zfaas-bridge. For each:
// the warm web call's p50 (one caller), warm calls per second (16 callers), the cold call under policy none
// (a fresh container per call: median of BENCH_COLD) and the image's size, each with its ratio to node's.
// BENCH_WARM (default 500 calls), BENCH_SECONDS (default 5), BENCH_COLD (default 5).
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

async function main(): Promise<void> {
  const docker = new Docker();
  await run('bash', [join(ROOT, 'runtimes', 'image', 'build-bridge.sh')]);
  await buildImage(docker);
  const p = await startUp(['--miniworkers', '4', '--policy', 'function'], { ZFAAS_LOG_LEVEL: 'warn' });
  const rows: Record<string, string | number>[] = [];
  try {
    const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ echo: p });\n' });
    await upload(`${p.api}/registerFunction/node/warm-node`, arc, 'node.tar.gz');
    await upload(`${p.api}/registerFunction/node/cold-node`, arc, 'node.tar.gz', { policy: 'none' });
    for (const [name, policy] of [
      ['warm-image', 'function'],
      ['cold-image', 'none'],
    ]) {
      const r = await fetch(`${p.api}/registerImageFunction/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: IMAGE, policy }),
      });
      if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${await r.text()}`);
    }
    let base: { p50: number; rps: number; cold: number; size: number } | undefined;
    for (const [kind, image] of [
      ['node', 'zfaas/node:latest'],
      ['image', IMAGE],
    ] as const) {
      for (let i = 0; i < 50; i++) await call(p, `warm-${kind}`);
      const xs: number[] = [];
      for (let i = 0; i < WARM; i++) xs.push(await call(p, `warm-${kind}`));
      const rps = await perSecond(p, `warm-${kind}`);
      const cold: number[] = [];
      for (let i = 0; i < COLD; i++) cold.push(await call(p, `cold-${kind}`));
      const size = Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', image])).stdout.trim());
      const m = { p50: median(xs), rps, cold: median(cold), size };
      base ??= m;
      rows.push({
        function: kind === 'node' ? 'node runtime' : 'HTTP image (zfaas-bridge)',
        'warm p50': `${m.p50.toFixed(2)} ms (x${(m.p50 / base.p50).toFixed(2)})`,
        'warm calls/s': `${m.rps.toFixed(0)} (x${(m.rps / base.rps).toFixed(2)})`,
        'cold (policy none)': `${m.cold.toFixed(0)} ms (x${(m.cold / base.cold).toFixed(2)})`,
        image: `${(m.size / 1e6).toFixed(0)} MB`,
      });
    }
    console.table(rows);
  } finally {
    await p.proc.stop();
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
