// A steady load on several APIs at once, as clients of a service with no single point of failure send it:
// each caller prefers one API and, when it does not answer (connection refused or cut, no answer in time,
// a 5xx), tries the next with the same Idempotency-Key, so a call is made once however often it is sent.
// Also what the test reads from it: the longest pause in answers, and how many times each call's function
// ran, from the run logs the function `RECORDER` returns.
import { requestOver, type Answer } from './swarm-hosts.js';
import { sleep } from './platform.js';

// A node function that records each run in its container (warm containers run one call after another):
// it answers with its param, the container's random id and every param that container ran so far.
export const RECORDER = `const box = require('crypto').randomUUID();
const runs = [];
module.exports = async (p) => {
  runs.push(p.i);
  await new Promise((r) => setTimeout(r, p.ms));
  return { i: p.i, box, runs: runs.slice() };
};
`;
export interface Recorded {
  i: number;
  box: string;
  runs: number[];
}

export interface Accepted {
  i: number;
  callNum: number;
  sync: boolean;
  at: number; // when it was answered (ms since the epoch)
}

export interface FailoverLoad {
  accepted: Accepted[];
  answers: number[]; // when each answer carrying a call came (ms since the epoch)
  errors: { at: number; api: string; error: string }[];
  sentAfter(t: number): number | undefined; // the first answer to a call first sent after t
  stop(): Promise<void>;
}

// `callers` callers of `funcName` with {i, ms}: all but one send blocking calls (wait up to 30 s), one sends
// queued calls (answered 202 at once). Caller k starts with API k mod the number of APIs.
export function failoverLoad(o: {
  sockets: string[];
  token: string;
  funcName: string;
  callers: number;
  ms: number;
  firstI: number;
}): FailoverLoad {
  const accepted: Accepted[] = [];
  const answers: number[] = [];
  const errors: FailoverLoad['errors'] = [];
  const firstSent = new Map<number, number>();
  let stopped = false;
  let next = o.firstI;
  const caller = async (k: number): Promise<void> => {
    const sync = k !== 0;
    let api = k % o.sockets.length;
    while (!stopped) {
      const i = next++;
      firstSent.set(i, Date.now());
      for (;;) {
        let r: Answer | undefined;
        let error = '';
        try {
          r = await requestOver(o.sockets[api]!, 'POST', '/invokeFunction', {
            token: o.token,
            body: { funcName: o.funcName, params: { i, ms: o.ms }, ...(sync ? { wait: 30 } : {}) },
            headers: { 'idempotency-key': `load-${i}` },
            timeoutMs: 45_000,
          });
        } catch (e) {
          error = e instanceof Error ? e.message : String(e);
        }
        const callNum = (r?.json as { callNum?: unknown } | undefined)?.callNum;
        if (r && r.status < 500 && typeof callNum === 'number') {
          accepted.push({ i, callNum, sync, at: Date.now() });
          answers.push(Date.now());
          break;
        }
        errors.push({ at: Date.now(), api: o.sockets[api]!, error: error || `${r?.status} ${JSON.stringify(r?.json).slice(0, 160)}` });
        if (stopped) return; // sent with its key: if it was made, the store has it
        api = (api + 1) % o.sockets.length;
        await sleep(200);
      }
      if (!sync) await sleep(300);
    }
  };
  const all = Promise.all(Array.from({ length: o.callers }, (_, k) => caller(k)));
  return {
    accepted,
    answers,
    errors,
    sentAfter: (t) => {
      const after = accepted.filter((a) => (firstSent.get(a.i) ?? 0) > t).map((a) => a.at);
      return after.length ? Math.min(...after) : undefined;
    },
    stop: async () => {
      stopped = true;
      await all;
    },
  };
}

// The longest time without an answer within [from, to]: from the last answer before `from` (or `from`) to
// the next, and so on, to `to`.
export function longestPause(answers: number[], from: number, to: number): number {
  const t = [...answers].sort((a, b) => a - b);
  let prev = from;
  for (const a of t) if (a <= from) prev = a;
  let longest = 0;
  for (const a of t) {
    if (a <= from || a > to) continue;
    longest = Math.max(longest, a - prev);
    prev = a;
  }
  return Math.max(longest, to - prev);
}

// How many times each param ran, from the recorders' answers: each container's longest run log (every
// answer of a container holds a prefix of its later ones), all containers added up. A run whose container
// never answered again (lost with its host) is not seen.
export function runsByParam(results: Recorded[]): Map<number, number> {
  const longest = new Map<string, number[]>();
  for (const r of results) if ((longest.get(r.box)?.length ?? -1) < r.runs.length) longest.set(r.box, r.runs);
  const count = new Map<number, number>();
  for (const runs of longest.values()) for (const i of runs) count.set(i, (count.get(i) ?? 0) + 1);
  return count;
}
