// The first call of a function whose runtime has a dependencies step, now that the step runs at deploy:
// six new functions with policy `runtime` on a user-registered runtime with a dependencies command (it
// installs a module into node_modules, as npm would, without the network), each deployed (the deploy
// waits for its build) and then called once, as `zfaas deploy` and `zfaas invoke` would; against a cold
// call (policy `none`, a fresh container per call) measured in the same run. Prints the medians and their ratio (goal: at most 0.3), and writes JSON
// to bench/results/.
//   npm run bench:builds          ZFAAS_BENCH_QUICK=1 for a smoke run
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { packFiles } from '../test/helpers/archives.js';
import { http, ROOT, startUp, upload, waitFor, type Platform } from '../test/helpers/platform.js';

const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const N_COLD = QUICK ? 5 : 15;
const N_NEW = 6;
const GOAL = 0.3;

// The user's runtime: the node image and its loader, and a dependencies step that installs `greeting`.
const RUNTIME = {
  name: 'nodedeps',
  image: 'zfaas/node:latest',
  path: '/ws',
  dependencies:
    'mkdir -p node_modules/greeting && echo "module.exports = \'hi from the build\';" > node_modules/greeting/index.js && echo installed greeting',
  run: 'node /opt/zfaas/loader.js --once',
  loader: 'node /opt/zfaas/loader.js',
};
const WITH_DEPS = "module.exports = (p) => ({ greeting: require('greeting'), name: p.name });";
const PLAIN = 'module.exports = (p) => ({ hello: p.name });';

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function call(p: Platform, name: string): Promise<{ ms: number; body: string }> {
  const t0 = process.hrtime.bigint();
  const r = await fetch(`${p.api}/function/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"name":"bench"}',
  });
  const body = await r.text();
  const took = ms(t0);
  if (r.status !== 200) throw new Error(`call ${name}: ${r.status} ${body.slice(0, 300)}`);
  return { ms: took, body };
}

async function deploy(p: Platform, runtime: string, name: string, source: string, policy: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await upload<{ build?: { state: string } }>(
    `${p.api}/registerFunction/${runtime}/${name}`,
    await packFiles({ 'index.js': source }),
    `${name}.tar.gz`,
    { policy },
  );
  if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  if (runtime === RUNTIME.name && r.body.build?.state !== 'ready') throw new Error(`deploy ${name}: build ${JSON.stringify(r.body.build)}`);
  return ms(t0);
}

async function main(): Promise<void> {
  const p = await startUp(['--policy', 'none', '--miniworkers', '4']);
  try {
    const reg = await http('POST', `${p.api}/registerRuntime`, RUNTIME);
    if (reg.status !== 201) throw new Error(`register runtime: ${reg.status} ${JSON.stringify(reg.body)}`);

    console.error(`cold calls (policy none), ${N_COLD}`);
    await deploy(p, 'node', 'cold', PLAIN, 'none');
    const colds: number[] = [];
    for (let i = 0; i < N_COLD; i++) colds.push((await call(p, 'cold')).ms);

    console.error(`${N_NEW} new functions (policy runtime) on ${RUNTIME.name}: each deployed (its build runs then) and called once`);
    // The node keeps stem cells of a runtime once a function of it with policy runtime is deployed: the
    // first function's deploy starts them; the bench waits for one before that function's first call.
    const deploys: number[] = [];
    const firsts: number[] = [];
    for (let i = 0; i < N_NEW; i++) {
      deploys.push(await deploy(p, RUNTIME.name, `fresh${i}`, WITH_DEPS, 'runtime'));
      if (i === 0)
        await waitFor('a stem cell of the runtime', async () => {
          const [n] = (await http<{ stems: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body;
          return (n?.stems[RUNTIME.name] ?? 0) >= 1 || undefined;
        });
      const r = await call(p, `fresh${i}`);
      if (!r.body.includes('hi from the build')) throw new Error(`fresh${i} did not run on its built tree: ${r.body}`);
      firsts.push(r.ms);
    }

    const cold = median(colds);
    const first = median(firsts);
    const ratio = first / cold;
    const machine = `${hostname()}: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`;
    console.log(`\nzfaas builds benchmark, ${new Date().toISOString()}${QUICK ? ' (quick)' : ''}\n${machine}\n`);
    console.log(`cold call p50 (policy none, ${N_COLD} calls):                          ${cold.toFixed(1)} ms`);
    console.log(
      `first call p50 of ${N_NEW} new runtime-policy functions with a build:     ${first.toFixed(1)} ms  (each: ${firsts.map((x) => x.toFixed(0)).join(', ')})`,
    );
    console.log(`deploy p50 of those functions (waits for the build):                 ${median(deploys).toFixed(1)} ms`);
    console.log(`ratio first / cold: ${ratio.toFixed(2)} (goal at most ${GOAL}: ${ratio <= GOAL ? 'met' : 'NOT met'})`);
    const dir = join(ROOT, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `builds-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify({ machine, quick: QUICK, colds, firsts, deploys, cold, first, ratio, goal: GOAL }, null, 2));
    console.log(`JSON: ${file}`);
  } finally {
    await p.stop();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
