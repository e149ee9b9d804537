// A burst from nothing (npm run bench:burst): `zfaas up` (policy function, 4 miniworkers), then for a new
// function with no container anywhere, CALLERS callers start at once and call in a loop for BURST_S
// seconds. Beside it, in the same run, the same load on the same function once warm (its steady p99).
// Printed per scenario (minWarm 0, then minWarm N): how long until the p99 of each 500 ms window is back
// under 2x the steady p99 (and stays there), the containers made (cold starts, by kind) and the most
// containers held at once.
// BENCH_CALLERS (default 200), BENCH_BURST_S (default 8), BENCH_MIN_WARM (default 8).
import { packFiles } from '../test/helpers/archives.js';
import { startUp, upload, waitFor, type Platform } from '../test/helpers/platform.js';

const CALLERS = Number(process.env.BENCH_CALLERS ?? 200);
const BURST_S = Number(process.env.BENCH_BURST_S ?? 8);
const MIN_WARM = Number(process.env.BENCH_MIN_WARM ?? 8);
const WINDOW_MS = 500;
const SRC = 'module.exports = (p) => ({ n: p.n });\n';

interface Sample {
  at: number; // ms since the burst began, when the call ended
  ms: number;
}

const p99 = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.99 * s.length))] ?? NaN;
};

async function metric(p: Platform, name: string, fn: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${p.api}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const l of text.split('\n')) {
    if (!l.startsWith(`${name}{`) || !l.includes(`function="${fn}`)) continue;
    const kind = /kind="([^"]+)"/.exec(l)?.[1] ?? /function="([^"]+)"/.exec(l)?.[1] ?? '?';
    out[kind] = (out[kind] ?? 0) + Number(l.slice(l.lastIndexOf(' ') + 1));
  }
  return out;
}

// CALLERS loops calling for `seconds`; the containers of the function sampled every 250 ms.
async function load(p: Platform, fn: string, seconds: number): Promise<{ samples: Sample[]; failed: number; peak: number }> {
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  const samples: Sample[] = [];
  let failed = 0;
  let peak = 0;
  let done = false;
  const watch = (async () => {
    while (!done) {
      const warm = await metric(p, 'zfaas_warm_containers', fn);
      peak = Math.max(
        peak,
        Object.values(warm).reduce((a, b) => a + b, 0),
      );
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  await Promise.all(
    [...Array(CALLERS).keys()].map(async (i) => {
      while (Date.now() < end) {
        const t = Date.now();
        const r = await fetch(`${p.api}/function/${fn}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n: i }),
        }).catch(() => null);
        if (!r || r.status !== 200) failed++;
        await r?.text();
        samples.push({ at: Date.now() - t0, ms: Date.now() - t });
      }
    }),
  );
  done = true;
  await watch;
  return { samples, failed, peak };
}

// When the windows' p99 came back under `limit` and stayed there (ms since the burst began).
function recovered(samples: Sample[], limit: number): number | null {
  const windows = new Map<number, number[]>();
  for (const s of samples) {
    const w = Math.floor(s.at / WINDOW_MS);
    windows.set(w, [...(windows.get(w) ?? []), s.ms]);
  }
  const keys = [...windows.keys()].sort((a, b) => a - b);
  let since: number | null = null;
  for (const k of keys) {
    if (p99(windows.get(k)!) <= limit) since ??= k * WINDOW_MS;
    else since = null;
  }
  return since;
}

async function scenario(p: Platform, name: string, minWarm: number): Promise<Record<string, string | number>> {
  const fields: Record<string, string> = minWarm ? { minWarm: String(minWarm) } : {};
  await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': SRC }), `${name}.tar.gz`, fields);
  if (minWarm) {
    await waitFor(`${minWarm} warm containers of ${name}`, async () => {
      const w = await metric(p, 'zfaas_warm_containers', name);
      return Object.values(w).reduce((a, b) => a + b, 0) >= minWarm ? true : undefined;
    });
  }
  const burst = await load(p, name, BURST_S);
  const cold = await metric(p, 'zfaas_cold_starts_total', name);
  const steady = await load(p, name, 4); // the same load, warm
  const steadyP99 = p99(steady.samples.filter((s) => s.at > 1000).map((s) => s.ms));
  const back = recovered(burst.samples, 2 * steadyP99);
  return {
    scenario: minWarm ? `minWarm ${minWarm}` : 'from zero',
    callers: CALLERS,
    'burst calls': burst.samples.length,
    failed: burst.failed + steady.failed,
    'first answer after': `${Math.min(...burst.samples.map((s) => s.at))} ms`,
    'burst p99': `${p99(burst.samples.map((s) => s.ms)).toFixed(0)} ms`,
    'steady p99': `${steadyP99.toFixed(0)} ms`,
    'p99 under 2x steady after': back === null ? 'never' : `${(back / 1000).toFixed(1)} s`,
    'cold starts':
      Object.entries(cold)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ') || '0',
    'most warm at once': Math.max(burst.peak, steady.peak),
  };
}

async function main(): Promise<void> {
  const p = await startUp(['--miniworkers', '4', '--policy', 'function'], { ZFAAS_LOG_LEVEL: 'warn' });
  try {
    const rows = [await scenario(p, 'burst0', 0), await scenario(p, 'burstw', MIN_WARM)];
    console.table(rows);
  } finally {
    await p.proc.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
