// The invariants a stress run must keep, held against what it observed (run.ts). Each broken one is a line
// that says which call or node and what was seen. Pure: no service is asked anything here.
//
// - Every accepted call reaches exactly one final state, with its own result: it is final, read again
//   later it has not changed, a waiting caller was answered with that same record, and a DONE result is
//   the call's own (its token) from the run the record counts (`attempt` = `attempts`).
// - Its attempts and history agree with the runs that happened: history numbers its failed runs 1, 2, ...;
//   without a fault during its life it ran exactly as its plan says (a flaky call fails its first runs and
//   then succeeds, a failing one fails every run its retries allow, a slow one times out, each run once).
// - No call runs more often than its retry rule allows: retry=false never runs again after losing its node.
// - No node ever held more containers than its limit, no miniworker more than one job, and the
//   miniworkers of a killed node were gone within a second (run.ts and the services' logs say).
// - After the stop nothing of the run is left: no container, no process, no socket.
import type { CallRecord, Made, Observations } from './run.js';
import type { Scenario } from './scenario.js';

const FINAL = ['DONE', 'ERROR', 'TIMEOUT'];

export function check(s: Scenario, ob: Observations): string[] {
  const out: string[] = [];
  const say = (callNum: number, what: string): void => void out.push(`call ${callNum}: ${what}`);
  const byNum = new Map<number, Made>(ob.made.map((m) => [m.callNum, m]));
  const planOf = (c: CallRecord): { plan: Scenario['calls'][number]; index: number } | undefined => {
    const index = Number(
      String(c.params?.tok ?? '')
        .split('-')
        .pop(),
    );
    const plan = s.calls[index];
    return plan ? { plan, index } : undefined;
  };

  for (const [callNum, c] of ob.finals) {
    if (!FINAL.includes(c.status)) {
      say(callNum, `not final: ${c.status}${c.error ? ` (${c.error})` : ''}`);
      continue;
    }
    const again = ob.rereads.get(callNum);
    if (!again || again.status !== c.status || again.result !== c.result || again.attempts !== c.attempts)
      say(callNum, `changed after it was final: ${c.status}/${c.attempts} then ${again?.status}/${again?.attempts}`);
    const p = planOf(c);
    if (!p) {
      say(callNum, `has no plan (params ${JSON.stringify(c.params)})`);
      continue;
    }
    const { plan } = p;
    const fn = s.functions[plan.fn]!;
    const m = byNum.get(callNum);
    const tok = c.params?.tok;

    // A waiting caller got the same record the store keeps.
    if (m?.answer && FINAL.includes(m.answer.status)) {
      const a = m.answer;
      if (a.status !== c.status || a.result !== c.result || a.attempts !== c.attempts || (a.error ?? '') !== (c.error ?? ''))
        say(callNum, `its caller was answered ${a.status} attempts ${a.attempts}, the record says ${c.status} attempts ${c.attempts}`);
    }

    // Its own result, from the run the record counts.
    if (c.status === 'DONE') {
      let r: { tok?: string; attempt?: number } | undefined;
      try {
        r = JSON.parse(c.result) as { tok?: string; attempt?: number };
      } catch {
        say(callNum, `DONE with a result that is not its function's: ${c.result.slice(0, 100)}`);
      }
      if (r && r.tok !== tok) say(callNum, `DONE with the result of ${r.tok}, not its own ${tok}`);
      if (r && r.attempt !== c.attempts) say(callNum, `DONE by run ${r.attempt}, but the record counts ${c.attempts} attempts`);
    }

    // History: its failed runs in the order they ran (a run lost with its node has no outcome, so no entry),
    // each one of the attempts the record counts, no more than its retries.
    const h = c.history ?? [];
    if (h.some((x, i) => x.attempt < 1 || x.attempt > c.attempts || (i > 0 && x.attempt <= h[i - 1]!.attempt)))
      say(callNum, `history is out of order: ${h.map((y) => y.attempt).join(',')} of ${c.attempts} attempts`);
    if (h.length > fn.retries) say(callNum, `history holds ${h.length} failed runs, its function retries ${fn.retries}`);
    if (c.attempts < h.length) say(callNum, `${c.attempts} attempts but ${h.length} failed runs in its history`);

    // Runs the nodes started for it (the node logs each one).
    const runs = ob.runs.get(callNum) ?? [];
    // A call no caller holds (its caller lost the API's answer and asked again) has no known window: any
    // fault may have touched it.
    const touched = m
      ? ob.faults.some((f) => f.at <= (m.finalSeenAt || Date.now()) && f.until >= m.submittedAt - 1000)
      : ob.faults.length > 0;
    if (!fn.retry && runs.length > fn.retries + 1)
      say(callNum, `ran ${runs.length} times; its function has retry=false and ${fn.retries} retries`);
    if (touched) continue;

    // Untouched by any fault: it went exactly as planned.
    const cancelled = c.error === 'cancelled by request';
    if (plan.kind === 'cancel') {
      if (!cancelled && c.status !== 'DONE') say(callNum, `a cancelled call ended ${c.status}: ${c.error}`);
      continue;
    }
    if (runs.length !== c.attempts) say(callNum, `ran ${runs.length} times but the record counts ${c.attempts} attempts`);
    const want = expected(plan, fn.retries);
    if (c.status !== want.status) say(callNum, `ended ${c.status} (${c.error ?? ''}), its plan (${plan.kind}) says ${want.status}`);
    if (c.attempts !== want.attempts)
      say(callNum, `counts ${c.attempts} attempts, its plan (${plan.kind}, retries ${fn.retries}) says ${want.attempts}`);
    if (h.length !== want.attempts - 1) say(callNum, `history holds ${h.length} failed runs, its plan says ${want.attempts - 1}`);
    if (c.status === 'ERROR' && !String(c.error).includes('planned failure')) say(callNum, `failed with another error: ${c.error}`);
  }

  for (const n of ob.unfinished) out.push(`call ${n}: still not final when the run stopped waiting`);
  for (const [id, peak] of Object.entries(ob.peaks))
    if (peak > s.maxContainers) out.push(`node ${id}: peak ${peak} containers, limit ${s.maxContainers}`);
  out.push(...ob.problems, ...ob.brokenLines);
  if (ob.left.containers) out.push(`${ob.left.containers} containers left after the stop`);
  for (const p of ob.left.processes) out.push(`process left after the stop: ${p}`);
  for (const f of ob.left.sockets) out.push(`socket left after the stop: ${f}`);
  return out;
}

// How a call's plan ends when nothing goes wrong around it.
function expected(plan: Scenario['calls'][number], retries: number): { status: string; attempts: number } {
  switch (plan.kind) {
    case 'ok':
      return { status: 'DONE', attempts: 1 };
    case 'fail':
      return { status: 'ERROR', attempts: retries + 1 };
    case 'timeout':
      return { status: 'TIMEOUT', attempts: retries + 1 };
    case 'flaky':
      return retries >= plan.failUntil ? { status: 'DONE', attempts: plan.failUntil + 1 } : { status: 'ERROR', attempts: retries + 1 };
    case 'cancel':
      return { status: 'ERROR', attempts: 1 };
  }
}
