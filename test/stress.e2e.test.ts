// A randomized stress run of the whole system, driven by fast-check: each run draws a scenario from the
// seed (one or two nodes, the built-in loaders, runtimes registered the seed's way with a run command and
// one with a slow dependencies step, all three policies, calls from 0 to a few seconds that succeed, fail,
// fail and then succeed on a retry, time out or are cancelled, 1 to 4 times the cluster's capacity of
// callers, and a miniworker, a node, the API, the DB service or a container killed at random moments),
// carries it out against the real services, Docker engine, ZeroMQ and LevelDB, and checks the invariants
// of test/helpers/stress/check.ts. A failure prints its seed: ZFAAS_STRESS_SEED=N runs the same scenarios.
// ZFAAS_STRESS_RUNS sets how many runs (default 3); ZFAAS_STRESS_MINUTES=60 runs them for an hour instead;
// ZFAAS_STRESS_KEEP=1 keeps each run's folder (data and every process's log) and says where.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { check } from './helpers/stress/check.js';
import { runScenario, type Observations } from './helpers/stress/run.js';
import { describeScenario, scenarioArb, type Scenario } from './helpers/stress/scenario.js';

const SEED = process.env.ZFAAS_STRESS_SEED ? Number(process.env.ZFAAS_STRESS_SEED) : Math.floor(Math.random() * 2 ** 31);
const MINUTES = Number(process.env.ZFAAS_STRESS_MINUTES ?? 0);
const RUNS = Number(process.env.ZFAAS_STRESS_RUNS ?? 3);
const CALLS = Number(process.env.ZFAAS_STRESS_CALLS ?? 60);

interface Row {
  run: number;
  cluster: string;
  callers: number;
  calls: number;
  perSecond: number;
  peak: string;
  faults: string;
  stopS: string;
  ok: boolean;
}

function rowOf(run: number, s: Scenario, ob: Observations, ok: boolean): Row {
  return {
    run,
    cluster: `${s.nodes}x${s.miniworkers} max ${s.maxContainers}`,
    callers: s.callers,
    calls: ob.finals.size,
    perSecond: Math.round((ob.made.length / (ob.loadMs / 1000)) * 10) / 10,
    peak: Object.values(ob.peaks).join('/'),
    faults: ob.faults.map((f) => f.kind).join(',') || '-',
    stopS: Object.values(ob.stopMs)
      .map((ms) => (ms / 1000).toFixed(1))
      .join('/'),
    ok,
  };
}

it(
  'keeps every invariant under random load, runtimes, policies and faults',
  async () => {
    console.log(
      `stress: seed ${SEED} (ZFAAS_STRESS_SEED=${SEED} runs the same scenarios)${MINUTES ? `, for ${MINUTES} min` : `, ${RUNS} runs`}`,
    );
    const rows: Row[] = [];
    let run = 0;
    const arb = scenarioArb({ calls: CALLS, faults: 3, long: MINUTES > 0 });
    const one = async (s: Scenario): Promise<void> => {
      run++;
      console.log(`stress run ${run} (seed ${SEED}):\n${describeScenario(s)}`);
      const ob = await runScenario(s, { log: (l) => console.log(`stress run ${run}: ${l}`) });
      const problems = check(s, ob);
      rows.push(rowOf(run, s, ob, problems.length === 0));
      if (problems.length) {
        const shown = problems.slice(0, 40).join('\n');
        throw new Error(`stress run ${run} broke ${problems.length} invariant(s) (seed ${SEED}):\n${shown}`);
      }
    };
    try {
      if (MINUTES > 0) {
        // The long mode draws its scenarios from the seed and starts none after the time is up: a run under
        // way always ends, with its services stopped and its containers checked (fast-check's time limit
        // would leave it running).
        const deadline = Date.now() + MINUTES * 60_000;
        for (const s of fc.sample(arb, { seed: SEED, numRuns: 5000 })) {
          if (Date.now() >= deadline) break;
          await one(s);
        }
      } else {
        // a real run takes a minute: no shrinking
        await fc.assert(fc.asyncProperty(arb, one), { seed: SEED, endOnFailure: true, numRuns: RUNS });
      }
    } finally {
      console.table(rows);
      console.log(`stress: seed ${SEED}`);
    }
    expect(rows.length).toBeGreaterThan(0);
  },
  (MINUTES > 0 ? MINUTES * 60 + 600 : RUNS * 420) * 1000,
);
