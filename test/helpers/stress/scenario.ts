// What one randomized stress run does, drawn by fast-check from its seed (so a run is reproduced by its
// seed): the cluster (one or two nodes, their miniworkers and container limit), the functions (each
// runtime kind under each policy, with or without retries), the calls (durations, failures, timeouts,
// cancels, blocking or not), how many callers keep calls going at once, and the faults injected at random
// moments. Pure data: test/helpers/stress/run.ts carries it out against the real services.
import fc from 'fast-check';
import type { Policy } from '../../../common/model.js';

// The runtime kinds a user meets: the built-in loaders, a runtime registered the seed's way (a run
// command, no loader), and one whose dependencies step is slow.
export const KINDS = ['node', 'python', 'seed', 'slowdeps'] as const;
export type Kind = (typeof KINDS)[number];
export const POLICIES: readonly Policy[] = ['none', 'runtime', 'function'];

export interface FnPlan {
  name: string;
  kind: Kind;
  policy: Policy;
  timeoutS: number;
  retries: number; // runs after a failed one (0: none)
  retry: boolean; // may it run again when its node (or miniworker) died under it
  maxContainers?: number; // its own limit per node
}

export type CallKind = 'ok' | 'fail' | 'flaky' | 'timeout' | 'cancel';

export interface CallPlan {
  fn: number; // index into functions
  kind: CallKind;
  ms: number; // how long the function works
  failUntil: number; // flaky: it fails while ZFAAS_ATTEMPT <= this
  wait: boolean; // the caller waits for the finished call (and its answer is checked against the record)
  cancelAfterMs: number; // cancel: DELETE /call/N this long after it was accepted
}

export const FAULTS = ['miniworker', 'node', 'api', 'db', 'container'] as const;
export type FaultKind = (typeof FAULTS)[number];

export interface FaultPlan {
  kind: FaultKind;
  atMs: number; // after the load starts
  node: number; // which node (for miniworker, node, container)
  downMs: number; // a killed process is started again after this long
}

export interface Scenario {
  nodes: number;
  miniworkers: number;
  maxContainers: number;
  functions: FnPlan[];
  calls: CallPlan[];
  callers: number; // calls kept going at once
  faults: FaultPlan[];
}

// A node takes miniworkers x 2 calls at once (instance.ts).
export const capacityOf = (s: Pick<Scenario, 'nodes' | 'miniworkers'>): number => s.nodes * s.miniworkers * 2;

// A function's timeout leaves room for a cold start on a busy two-core machine above the longest planned
// work, so that only the calls planned to time out do.
const fnArb = (i: number, long: boolean): fc.Arbitrary<FnPlan> =>
  fc
    .record({
      kind: fc.constantFrom(...KINDS),
      policy: fc.constantFrom(...POLICIES),
      retries: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 })),
      retry: fc.constantFrom(true, true, false), // a third of the functions say retry=false
      maxContainers: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined, freq: 3 }),
    })
    .map((f) => ({ ...f, name: `st${i}-${f.kind}-${f.policy}`, timeoutS: long ? 7 : 5 }));

const callArb = (fns: number, long: boolean): fc.Arbitrary<CallPlan> =>
  fc.record({
    fn: fc.nat(fns - 1),
    kind: fc.constantFrom<CallKind>('ok', 'ok', 'ok', 'ok', 'fail', 'flaky', 'timeout', 'cancel'),
    ms: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 300 }), fc.integer({ min: 300, max: long ? 3000 : 1500 })),
    failUntil: fc.integer({ min: 1, max: 2 }),
    wait: fc.boolean(),
    cancelAfterMs: fc.integer({ min: 0, max: 1500 }),
  });

// `calls`: how many calls a run makes; `faults`: at most how many faults it injects.
export function scenarioArb(o: { calls: number; faults: number; long?: boolean }): fc.Arbitrary<Scenario> {
  return fc
    .record({
      nodes: fc.integer({ min: 1, max: 2 }),
      miniworkers: fc.integer({ min: 2, max: 3 }),
      maxContainers: fc.integer({ min: 3, max: 8 }),
      fnCount: fc.integer({ min: 3, max: 6 }),
      load: fc.integer({ min: 1, max: 4 }), // callers, in units of the cluster's capacity
    })
    .chain((base) =>
      fc.record({
        nodes: fc.constant(base.nodes),
        miniworkers: fc.constant(base.miniworkers),
        maxContainers: fc.constant(base.maxContainers),
        functions: fc.tuple(...Array.from({ length: base.fnCount }, (_, i) => fnArb(i, o.long ?? false))),
        calls: fc.array(callArb(base.fnCount, o.long ?? false), { minLength: o.calls, maxLength: o.calls }),
        callers: fc.integer({ min: 1, max: base.load * capacityOf(base) }),
        faults: fc
          .array(
            fc.record({
              kind: fc.constantFrom(...FAULTS),
              atMs: fc.integer({ min: 500, max: 15_000 }),
              node: fc.nat(base.nodes - 1),
              downMs: fc.integer({ min: 200, max: 2500 }),
            }),
            { maxLength: o.faults },
          )
          .map((fs) => fs.sort((a, b) => a.atMs - b.atMs)),
      }),
    );
}

// A scenario in one line per part, for the log of a run and of a failure.
export function describeScenario(s: Scenario): string {
  const fns = s.functions.map(
    (f) =>
      `${f.name}${f.retries ? ` retries=${f.retries}` : ''}${f.retry ? '' : ' retry=false'}${f.maxContainers ? ` max=${f.maxContainers}` : ''}`,
  );
  const kinds = new Map<string, number>();
  for (const c of s.calls) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
  return [
    `${s.nodes} node(s) x ${s.miniworkers} miniworkers, maxContainers ${s.maxContainers}, ${s.callers} callers (capacity ${capacityOf(s)})`,
    `functions: ${fns.join(', ')}`,
    `calls: ${s.calls.length} (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')})`,
    `faults: ${s.faults.map((f) => `${f.kind}${['miniworker', 'node', 'container'].includes(f.kind) ? `@n${f.node}` : ''}+${f.atMs}ms`).join(', ') || 'none'}`,
  ].join('\n');
}
