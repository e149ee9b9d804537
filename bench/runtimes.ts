// The built-in runtimes side by side (npm run bench:runtimes), in one `zfaas up` (4 miniworkers): for the
// same echo function in each language (node, python, java, go; go's compiled at deploy), the warm call's p50 (one caller), the warm calls per second (16
// callers), the cold call under policy none (a fresh container per call: median of BENCH_COLD), the
// deploy (upload to a built version: go's compiles there) and the image's size, each beside node's in
// the same run.
// BENCH_WARM (default 500 calls), BENCH_SECONDS (default 5), BENCH_COLD (default 5); BENCH_RUNTIMES (a
// comma-separated list; node, the baseline, always runs first).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { packFiles } from '../test/helpers/archives.js';
import { startUp, upload, type Platform } from '../test/helpers/platform.js';

const run = promisify(execFile);
const WARM = Number(process.env.BENCH_WARM ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const COLD = Number(process.env.BENCH_COLD ?? 5);
const CLIENTS = 16;

const ECHO: Record<string, Record<string, string>> = {
  node: { 'index.js': 'module.exports = (p) => ({ echo: p });\n' },
  python: { 'handler.py': 'def handler(p):\n    return {"echo": p}\n' },
  java: {
    'Echo.java':
      'import java.util.Map;\npublic class Echo { public Map<String, Object> handleRequest(Map<String, Object> p) { return Map.of("echo", p); } }\n',
  },
  go: { 'main.go': 'package main\n\nfunc Handler(p map[string]any) (map[string]any, error) { return map[string]any{"echo": p}, nil }\n' },
};

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

async function main(): Promise<void> {
  const p = await startUp(['--miniworkers', '4', '--policy', 'function'], { ZFAAS_LOG_LEVEL: 'warn' });
  const rows: Record<string, string | number>[] = [];
  try {
    let base: { p50: number; rps: number; cold: number; deploy: number } | undefined;
    const only = process.env.BENCH_RUNTIMES?.split(',').map((r) => r.trim());
    for (const rt of Object.keys(ECHO).filter((r) => r === 'node' || !only || only.includes(r))) {
      const arc = await packFiles(ECHO[rt]!);
      const t0 = process.hrtime.bigint();
      const deployed = await upload(`${p.api}/registerFunction/${rt}/warm-${rt}`, arc, `${rt}.tar.gz`);
      const deployMs = Number(process.hrtime.bigint() - t0) / 1e6;
      if (deployed.status !== 201) throw new Error(`${rt}: deploy answered ${deployed.status} ${JSON.stringify(deployed.body)}`);
      await upload(`${p.api}/registerFunction/${rt}/cold-${rt}`, arc, `${rt}.tar.gz`, { policy: 'none' });
      for (let i = 0; i < 50; i++) await call(p, `warm-${rt}`);
      const xs: number[] = [];
      for (let i = 0; i < WARM; i++) xs.push(await call(p, `warm-${rt}`));
      const rps = await perSecond(p, `warm-${rt}`);
      const cold: number[] = [];
      for (let i = 0; i < COLD; i++) cold.push(await call(p, `cold-${rt}`));
      const size = Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', `zfaas/${rt}:latest`])).stdout.trim());
      const m = { p50: median(xs), rps, cold: median(cold), deploy: deployMs };
      base ??= m;
      rows.push({
        runtime: rt,
        'warm p50': `${m.p50.toFixed(2)} ms (x${(m.p50 / base.p50).toFixed(2)})`,
        'warm calls/s': `${m.rps.toFixed(0)} (x${(m.rps / base.rps).toFixed(2)})`,
        'cold (policy none)': `${m.cold.toFixed(0)} ms (x${(m.cold / base.cold).toFixed(2)})`,
        deploy: `${m.deploy.toFixed(0)} ms (x${(m.deploy / base.deploy).toFixed(2)})`,
        image: `${(size / 1e6).toFixed(0)} MB`,
      });
    }
    console.table(rows);
  } finally {
    await p.proc.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
