// Correctness under load, measured: one node under the stress run's heaviest mix (every runtime kind under
// every policy, 4 times the node's capacity of callers, short calls with failures, retries, timeouts and
// cancels mixed in, no faults) and the seed's session (a runtime registered with a run command, 12 calls
// of 2 s at once). Prints the calls per second the node sustained and its peak containers against its
// limit, and the session's time against the ideal 2 s x 12 / miniworkers; the invariants of the stress run
// are checked too. Run: `npm run bench:stress` (ZFAAS_BENCH_QUICK=1 for a smaller mix).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packFiles } from '../test/helpers/archives.js';
import { http, labelledContainers, ROOT, sleep, startUp, upload, type CallView } from '../test/helpers/platform.js';
import { check } from '../test/helpers/stress/check.js';
import { runScenario } from '../test/helpers/stress/run.js';
import { KINDS, POLICIES, type CallPlan, type FnPlan, type Scenario } from '../test/helpers/stress/scenario.js';

const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const MINIWORKERS = 4;
const LIMIT = 16;

// Calls of 0-250 ms in every function, one in ten failing or failing once (its retry succeeds), one in
// twenty timing out or cancelled: the most work per second the stress run's mix can ask of one node.
function heaviest(calls: number): Scenario {
  const functions: FnPlan[] = [];
  for (const kind of KINDS)
    for (const policy of POLICIES) functions.push({ name: `h-${kind}-${policy}`, kind, policy, timeoutS: 5, retries: 1, retry: true });
  const plan: CallPlan[] = Array.from({ length: calls }, (_, i) => ({
    fn: i % functions.length,
    kind: i % 20 === 7 ? 'timeout' : i % 20 === 13 ? 'cancel' : i % 10 === 3 ? 'fail' : i % 10 === 5 ? 'flaky' : 'ok',
    ms: (i * 37) % 250,
    failUntil: 1,
    wait: i % 2 === 0,
    cancelAfterMs: 100,
  }));
  return { nodes: 1, miniworkers: MINIWORKERS, maxContainers: LIMIT, functions, calls: plan, callers: 4 * MINIWORKERS * 2, faults: [] };
}

// The seed's session with `zfaas up` as it comes: 12 calls of 2 s at once through POST /invokeFunction.
async function seedSession(): Promise<{ seconds: number; ideal: number; peak: number; done: number }> {
  const p = await startUp(['--miniworkers', String(MINIWORKERS)]);
  try {
    const node = await p.nodeId();
    await http('POST', `${p.api}/registerRuntime`, { image: 'pythonruntime', path: '/ws', dependencies: 'true', run: 'python3 test.py' });
    const script = 'import json,sys,time\np=json.load(sys.stdin)\ntime.sleep(2)\nprint(json.dumps(p))\n';
    const r = await upload(`${p.api}/registerFunction/pythonruntime/sleep2`, await packFiles({ 'test.py': script }), 'fn.tar.gz');
    if (r.status !== 201) throw new Error(`deploy: ${r.status}`);
    let peak = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        peak = Math.max(peak, (await labelledContainers({ 'zfaas.node': node })).length);
        await sleep(200);
      }
    })();
    const t0 = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'sleep2', params: { i }, wait: true }),
      ),
    );
    const seconds = (Date.now() - t0) / 1000;
    watching = false;
    await watch;
    return { seconds, ideal: (2 * 12) / MINIWORKERS, peak, done: answers.filter((a) => a.body.status === 'DONE').length };
  } finally {
    await p.stop();
  }
}

async function main(): Promise<void> {
  console.error('the seed session: 12 calls of 2 s at once, a run-command runtime, 4 miniworkers');
  const seed = await seedSession();
  const calls = QUICK ? 200 : 1200;
  console.error(`the heaviest mix: ${calls} calls, ${4 * MINIWORKERS * 2} callers, one node, limit ${LIMIT}`);
  const s = heaviest(calls);
  const ob = await runScenario(s, { log: (l) => console.error(l) });
  const problems = check(s, ob);
  const perSecond = ob.made.length / (ob.loadMs / 1000);
  const peak = Math.max(...Object.values(ob.peaks));
  const rows = [
    {
      scenario: 'seed session: 12 x 2 s calls, run command, 4 miniworkers',
      value: `${seed.seconds.toFixed(1)} s (${seed.done}/12 DONE, peak ${seed.peak} containers)`,
      baseline: `ideal ${seed.ideal.toFixed(1)} s`,
      ratio: Math.round((seed.seconds / seed.ideal) * 100) / 100,
    },
    {
      scenario: `heaviest mix, 1 node: ${ob.made.length} calls, ${s.callers} callers`,
      value: `${perSecond.toFixed(1)} calls/s`,
      baseline: '-',
      ratio: 0,
    },
    {
      scenario: 'heaviest mix: peak containers on the engine',
      value: String(peak),
      baseline: `limit ${LIMIT}`,
      ratio: Math.round((peak / LIMIT) * 100) / 100,
    },
    { scenario: 'heaviest mix: invariants broken', value: String(problems.length), baseline: '0', ratio: 0 },
  ];
  console.table(rows);
  for (const p of problems.slice(0, 20)) console.error(p);
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, `stress-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
    JSON.stringify({ seed, perSecond, peak, problems }, null, 2),
  );
  if (problems.length) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
