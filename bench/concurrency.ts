// Several calls per container against one call per container (npm run bench:concurrency): `zfaas up`
// (policy function, 4 miniworkers), then for a function that waits on I/O (it sleeps SLEEP_MS), CALLS calls
// from CALLERS callers at once through its web path, from no container: once deployed with
// containerConcurrency 1 (the baseline, measured in the same run) and once with containerConcurrency N.
// Printed: the calls per second, the containers made (cold starts) and the most held at once, the p50 and
// p99 of a call, and the ratio of each scenario to the baseline. The function runs on the built-in node
// runtime.
// BENCH_CALLS (default 200), BENCH_CALLERS (default 32), BENCH_SLEEP_MS (default 50), BENCH_CONC (default 8).
import { packFiles } from '../test/helpers/archives.js';
import { startUp, upload, type Platform } from '../test/helpers/platform.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const CALLERS = Number(process.env.BENCH_CALLERS ?? 32);
const SLEEP_MS = Number(process.env.BENCH_SLEEP_MS ?? 50);
const CONC = Number(process.env.BENCH_CONC ?? 8);
const SRC = `module.exports = async (p) => {\n  await new Promise((r) => setTimeout(r, ${SLEEP_MS}));\n  return { n: p.n };\n};\n`;

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

// The sum of a metric's samples for the function.
async function metric(p: Platform, name: string, fn: string): Promise<number> {
  const text = await (await fetch(`${p.api}/metrics`)).text();
  let n = 0;
  for (const l of text.split('\n'))
    if (l.startsWith(`${name}{`) && l.includes(`function="${fn}`)) n += Number(l.slice(l.lastIndexOf(' ') + 1));
  return n;
}

interface Row {
  scenario: string;
  calls: number;
  failed: number;
  'calls/s': number;
  'containers made': number;
  'most at once': number;
  'p50 ms': number;
  'p99 ms': number;
}

async function scenario(p: Platform, conc: number): Promise<Row> {
  const name = `io-wait-${conc}`;
  const r = await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': SRC }), `${name}.tar.gz`, {
    containerConcurrency: String(conc),
  });
  if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  let next = 0;
  let failed = 0;
  let peak = 0;
  let done = false;
  const times: number[] = [];
  const watch = (async () => {
    while (!done) {
      peak = Math.max(peak, await metric(p, 'zfaas_warm_containers', name));
      await new Promise((res) => setTimeout(res, 100));
    }
  })();
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (next < CALLS) {
        const n = next++;
        const t = Date.now();
        const res = await fetch(`${p.api}/function/${name}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ n }),
        }).catch(() => null);
        if (!res || res.status !== 200) failed++;
        await res?.text();
        times.push(Date.now() - t);
      }
    }),
  );
  const seconds = (Date.now() - t0) / 1000;
  done = true;
  await watch;
  return {
    scenario: `containerConcurrency ${conc}`,
    calls: CALLS,
    failed,
    'calls/s': Math.round(CALLS / seconds),
    'containers made': await metric(p, 'zfaas_cold_starts_total', name),
    'most at once': peak,
    'p50 ms': quantile(times, 0.5),
    'p99 ms': quantile(times, 0.99),
  };
}

async function main(): Promise<void> {
  const p = await startUp(['--miniworkers', '4', '--policy', 'function'], { ZFAAS_LOG_LEVEL: 'warn' });
  try {
    const base = await scenario(p, 1);
    const rows = [base, await scenario(p, CONC)];
    const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');
    console.log(`${CALLS} calls from ${CALLERS} callers, a function that sleeps ${SLEEP_MS} ms, from no container`);
    console.table(
      rows.map((r) => ({
        ...r,
        'calls/s vs baseline': ratio(r['calls/s'], base['calls/s']),
        'containers vs baseline': ratio(r['containers made'], base['containers made']),
      })),
    );
  } finally {
    await p.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
