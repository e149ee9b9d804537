// Carries one stress scenario out against the real services (scenario.ts says what it is): starts them,
// registers the runtimes and functions, keeps `callers` calls going until every planned call was made,
// injects the faults at their moments, watches the engine and the process table all along, waits until
// every accepted call is final, stops everything and looks at what is left. What it saw is returned as
// observations, which check.ts holds against the invariants.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { killIfStill, running } from '../cluster.js';
import { http, labelledContainers, sleep, upload, type CallView } from '../platform.js';
import { archiveOf, runtimeOf, SEED_RUNTIMES } from './functions.js';
import type { CallPlan, FaultPlan, Scenario } from './scenario.js';
import { Services } from './services.js';

const docker = new Docker();

export interface CallRecord extends CallView {
  createdAt?: string;
  version?: number;
  history?: { attempt: number; status: string; error?: string }[];
  deadLetter?: string;
  params?: { tok?: string };
}

export interface Made {
  index: number; // into scenario.calls
  tok: string;
  callNum: number;
  submittedAt: number; // when the request was sent (the call may have been created from then on)
  finalSeenAt: number; // when this harness first saw it final
  answer?: CallRecord; // a waiting caller's answer, when it came with the finished call
  cancelStatus?: number; // the answer to DELETE /call/N
}

export interface FaultDone {
  kind: FaultPlan['kind'];
  node?: string;
  at: number;
  until: number; // when the killed service was started again (or the fault was over)
  note?: string;
}

export interface Observations {
  runId: string;
  made: Made[];
  finals: Map<number, CallRecord>; // every call of this run the store holds, final, as read at the end
  rereads: Map<number, CallRecord>; // the same, read again some seconds later
  runs: Map<number, { attempt: number; node: string }[]>; // runs the nodes started, from their logs
  faults: FaultDone[];
  peaks: Record<string, number>; // the most containers seen on the engine for each node
  problems: string[]; // invariants broken while it ran (containers over the limit, orphaned miniworkers...)
  brokenLines: string[]; // log lines of the services that say an invariant broke
  left: { containers: number; processes: string[]; sockets: string[] };
  loadMs: number;
  stopMs: Record<string, number>;
  unfinished: number[]; // accepted calls still not final when the run gave up waiting
}

export interface RunOptions {
  settleMs?: number; // how long to wait for every accepted call to be final after the load (default 150 s)
  log?(line: string): void;
}

export async function runScenario(s: Scenario, o: RunOptions = {}): Promise<Observations> {
  const runId = `st${randomBytes(3).toString('hex')}`;
  const dir = join(tmpdir(), `zfaas-stress-${runId}`);
  await mkdir(dir, { recursive: true });
  const log = o.log ?? (() => undefined);
  const problems: string[] = [];
  const svc = await Services.start({ dir, runId, nodes: s.nodes, miniworkers: s.miniworkers, maxContainers: s.maxContainers });
  try {
    return await drive(s, svc, { runId, dir, problems, log, settleMs: o.settleMs ?? 150_000 });
  } catch (e) {
    await svc.stop().catch(() => undefined);
    throw e;
  } finally {
    if (process.env.ZFAAS_STRESS_KEEP) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function drive(
  s: Scenario,
  svc: Services,
  c: { runId: string; dir: string; problems: string[]; log(line: string): void; settleMs: number },
): Promise<Observations> {
  const url = svc.url;
  for (const rt of SEED_RUNTIMES) {
    const r = await http('POST', `${url}/registerRuntime`, rt);
    if (r.status !== 201) throw new Error(`registerRuntime ${rt.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }
  for (const f of s.functions) {
    const fields: Record<string, string> = {
      policy: f.policy,
      timeout: String(f.timeoutS),
      retries: String(f.retries),
      retry: String(f.retry),
    };
    if (f.retries) fields.retryBackoff = '100ms';
    if (f.maxContainers) fields.maxContainers = String(f.maxContainers);
    const r = await upload(`${url}/registerFunction/${runtimeOf(f.kind)}/${f.name}`, await archiveOf(f.kind), 'fn.tar.gz', fields);
    if (r.status !== 201) throw new Error(`deploy ${f.name}: ${r.status} ${JSON.stringify(r.body)}`);
  }

  const made: Made[] = [];
  const faults: FaultDone[] = [];
  const peaks: Record<string, number> = Object.fromEntries(svc.nodeIds.map((id) => [id, 0]));
  let loading = true;
  const t0 = Date.now();

  // The engine, every 200 ms: no node ever holds more containers than its limit.
  const watch = (async () => {
    while (loading) {
      for (const id of svc.nodeIds) {
        const n = (await labelledContainers({ 'zfaas.node': id }).catch(() => [])).length;
        peaks[id] = Math.max(peaks[id]!, n);
        if (n > s.maxContainers) c.problems.push(`node ${id} held ${n} containers at +${Date.now() - t0} ms (limit ${s.maxContainers})`);
      }
      await sleep(200);
    }
  })();

  // Faults at their moments, while the load lasts.
  const faulting = Promise.all(
    s.faults.map(async (f) => {
      await sleep(f.atMs);
      if (!loading) return;
      faults.push(await inject(f, svc, c.problems));
    }),
  );

  // The callers: each keeps one call going until the plan is done.
  let next = 0;
  const callers = Array.from({ length: Math.max(1, s.callers) }, async () => {
    while (next < s.calls.length) {
      const index = next++;
      const m = await makeCall(url, s, index, c.runId);
      if (m) made.push(m);
    }
  });
  await Promise.all(callers);
  const loadMs = Date.now() - t0;
  loading = false;
  await Promise.all([watch, faulting]);
  c.log(`load done in ${(loadMs / 1000).toFixed(1)} s: ${made.length} calls made`);

  // Every call of this run the store holds (also those whose caller lost the API's answer), final.
  const unfinished: number[] = [];
  const finals = await readFinals(url, c.runId, made, c.settleMs, unfinished);
  await sleep(3000);
  const rereads = await readFinals(url, c.runId, made, 10_000, []);
  const slowest = [...made].sort((a, b) => b.finalSeenAt - b.submittedAt - (a.finalSeenAt - a.submittedAt)).slice(0, 5);
  for (const m of slowest) {
    const f = finals.get(m.callNum);
    const at = (t?: string): string => (t ? `+${Date.parse(t) - t0}` : '-');
    c.log(
      `slow call ${m.callNum} (${s.functions[s.calls[m.index]!.fn]!.name}, ${s.calls[m.index]!.kind}): ${m.finalSeenAt - m.submittedAt} ms, ` +
        `${f?.status} attempts ${f?.attempts}, created ${at(f?.createdAt)} started ${at(f?.startedAt)} finished ${at(f?.finishedAt)} ms`,
    );
  }
  const stopMs = await svc.stop();

  const logs = await readLogs(c.dir);
  const runs = new Map<number, { attempt: number; node: string }[]>();
  const brokenLines: string[] = [];
  for (const [file, text] of logs) {
    for (const line of text.split('\n')) {
      if (line.includes('invariant broken')) brokenLines.push(`${file}: ${line.slice(0, 300)}`);
      if (!line.includes('"run starts"')) continue;
      try {
        const j = JSON.parse(line) as { callNum: number; attempt: number; replica?: number };
        if (j.replica) continue; // a redundant call's second run
        const list = runs.get(j.callNum) ?? [];
        list.push({ attempt: j.attempt, node: file });
        runs.set(j.callNum, list);
      } catch {
        /* a line cut short by a kill */
      }
    }
  }
  const left = {
    containers: (await Promise.all(svc.nodeIds.map((id) => labelledContainers({ 'zfaas.node': id })))).flat().length,
    processes: await svc.leftProcesses(),
    sockets: (await readdir(tmpdir())).filter((f) => svc.nodeIds.some((id) => f.startsWith(`zfaas-${id}-`))),
  };
  return {
    runId: c.runId,
    made,
    finals,
    rereads,
    runs,
    faults,
    peaks,
    problems: c.problems,
    brokenLines,
    left,
    loadMs,
    stopMs,
    unfinished,
  };
}

const isFinal = (st: string | undefined): boolean => st === 'DONE' || st === 'ERROR' || st === 'TIMEOUT';

function paramsOf(p: CallPlan, tok: string, timeoutS: number): Record<string, unknown> {
  switch (p.kind) {
    case 'fail':
      return { tok, ms: p.ms, fail: true };
    case 'flaky':
      return { tok, ms: p.ms, failUntil: p.failUntil };
    case 'timeout':
      return { tok, ms: timeoutS * 1000 + 1000 };
    case 'cancel':
      return { tok, ms: Math.max(p.ms, 800) };
    default:
      return { tok, ms: p.ms };
  }
}

// One call, from its submission to its final state; undefined when it could not be made at all.
async function makeCall(url: string, s: Scenario, index: number, runId: string): Promise<Made | undefined> {
  const p = s.calls[index]!;
  const fn = s.functions[p.fn]!;
  const tok = `${runId}-${index}`;
  const body = { funcName: fn.name, params: paramsOf(p, tok, fn.timeoutS), ...(p.wait ? { wait: true } : {}) };
  let callNum: number | undefined;
  let answer: CallRecord | undefined;
  const submittedAt = Date.now();
  for (let attempt = 0; attempt < 600 && callNum === undefined; attempt++) {
    try {
      const r = await http<CallRecord>('POST', `${url}/invokeFunction`, body);
      if (r.status === 200 || r.status === 202) {
        callNum = r.body.callNum;
        if (r.status === 200) answer = r.body;
        break;
      }
      if (r.status < 500 && r.status !== 429) throw new Error(`invokeFunction ${fn.name}: ${r.status} ${JSON.stringify(r.body)}`);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // the API is down (or went down while it answered): again
    }
    await sleep(200);
  }
  if (callNum === undefined) return undefined;
  const m: Made = { index, tok, callNum, submittedAt, finalSeenAt: 0, ...(answer ? { answer } : {}) };
  if (p.kind === 'cancel') {
    void sleep(p.cancelAfterMs).then(async () => {
      for (let i = 0; i < 50; i++) {
        try {
          m.cancelStatus = (await http('DELETE', `${url}/call/${callNum}`)).status;
          if (m.cancelStatus < 500) return;
        } catch {
          /* the API is down: again */
        }
        await sleep(200);
      }
    });
  }
  if (answer && isFinal(answer.status)) {
    m.finalSeenAt = Date.now();
    return m;
  }
  // Until it is final: long polls, again when the API is away.
  for (let i = 0; i < 2000; i++) {
    try {
      const r = await http<CallRecord>('GET', `${url}/call/${callNum}?wait=20`);
      if (r.status === 200 && isFinal(r.body.status)) break;
    } catch {
      await sleep(200);
    }
  }
  m.finalSeenAt = Date.now();
  return m;
}

async function readFinals(
  url: string,
  runId: string,
  made: Made[],
  timeoutMs: number,
  unfinished: number[],
): Promise<Map<number, CallRecord>> {
  const end = Date.now() + timeoutMs;
  const out = new Map<number, CallRecord>();
  for (;;) {
    try {
      const r = await http<CallRecord[]>('GET', `${url}/calls?format=list&limit=100000`);
      if (r.status === 200) {
        out.clear();
        for (const call of r.body) if (String(call.params?.tok ?? '').startsWith(`${runId}-`)) out.set(call.callNum, call);
        for (const m of made) if (!out.has(m.callNum)) out.set(m.callNum, { callNum: m.callNum, status: 'MISSING' } as CallRecord);
        const open = [...out.values()].filter((x) => !isFinal(x.status));
        if (open.length === 0 || Date.now() > end) {
          unfinished.push(...open.map((x) => x.callNum));
          // The list holds what the store has; each call is read on its own as a client would.
          for (const n of out.keys()) {
            const one = await http<CallRecord>('GET', `${url}/call/${n}`);
            if (one.status === 200) out.set(n, one.body);
          }
          return out;
        }
      }
    } catch {
      /* the API is not back yet */
    }
    if (Date.now() > end) return out;
    await sleep(500);
  }
}

async function readLogs(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await readdir(dir)) if (f.endsWith('.log')) out.set(f.slice(0, -4), await readFile(join(dir, f), 'utf8'));
  return out;
}

async function inject(f: FaultPlan, svc: Services, problems: string[]): Promise<FaultDone> {
  const at = Date.now();
  const node = svc.nodeIds[f.node % svc.nodeIds.length]!;
  switch (f.kind) {
    case 'db':
    case 'api':
      await svc.kill(f.kind, f.downMs);
      return { kind: f.kind, at, until: Date.now() };
    case 'node': {
      const workers = await svc.miniworkerPids(node);
      const killed = svc.kill(node, f.downMs);
      // Its miniworkers are gone within a second of their instance.
      await sleep(1200);
      const still = (await Promise.all(workers.map(async (w) => ((await running(w)) ? w : 0)))).filter(Boolean);
      if (still.length) problems.push(`node ${node} was killed and ${still.length} of its miniworkers still ran 1.2 s later`);
      await killed;
      return { kind: 'node', node, at, until: Date.now() };
    }
    case 'miniworker': {
      const workers = await svc.miniworkerPids(node);
      const pid = workers[Math.floor(Math.random() * workers.length)];
      const killed = pid !== undefined && (await killIfStill(pid, 'miniworker/main.js'));
      return { kind: 'miniworker', node, at, until: Date.now(), note: killed ? `pid ${pid}` : 'none running' };
    }
    case 'container': {
      const running = await docker.listContainers({ filters: { label: ['zfaas=true', `zfaas.node=${node}`] } }).catch(() => []);
      const victim = running[Math.floor(Math.random() * running.length)];
      if (victim)
        await docker
          .getContainer(victim.Id)
          .kill()
          .catch(() => undefined);
      return { kind: 'container', node, at, until: Date.now(), note: victim ? victim.Names[0] : 'none running' };
    }
  }
}
