// The soak (issue 6): mixed load for ZFAAS_SOAK_MINUTES (default 30) on db + api + two instances run as
// separate processes, with one of them killed (SIGKILL) and restarted every ZFAAS_SOAK_FAULT_S seconds.
// Prints calls accepted / finished / lost (must be 0) and the memory of each process over time, and writes
// JSON to bench/results/. Run: `npm run bench:soak` (ZFAAS_SOAK_MINUTES=2 for a short one).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packFiles } from '../test/helpers/archives.js';
import { rssTree } from './rss.js';
import { freePort, http, ROOT, sleep, tempDir, upload, waitHealthy, zfaas, type CallView, type Proc } from '../test/helpers/platform.js';

const MINUTES = Number(process.env.ZFAAS_SOAK_MINUTES ?? 30);
const FAULT_S = Number(process.env.ZFAAS_SOAK_FAULT_S ?? 60);
const CLIENTS = 8;

// Every call, newest first, a page at a time (the API serves at most 100,000 per page).
async function allCalls(url: string): Promise<CallView[]> {
  const out: CallView[] = [];
  let before: number | undefined;
  for (;;) {
    const r = await http<CallView[]>('GET', `${url}/calls?format=list&limit=100000${before ? `&before=${before}` : ''}`);
    if (r.status !== 200) throw new Error(`GET /calls: ${r.status} ${JSON.stringify(r.body)}`);
    out.push(...r.body);
    if (r.body.length < 100000) return out;
    before = r.body[r.body.length - 1]!.callNum;
  }
}

async function main(): Promise<void> {
  const data = await tempDir('zfaas-soak-');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  const brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  const procs: Record<string, Proc> = {};
  const start: Record<string, () => Proc> = {
    db: () => zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]),
    api: () => zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]),
    n1: () =>
      zfaas([
        'instance',
        '--broker',
        brokerAddr,
        '--db',
        dbAddr,
        '--data',
        join(data, 'n1'),
        '--node-id',
        'n1',
        '--miniworkers',
        '3',
        '--policy',
        'function',
      ]),
    n2: () =>
      zfaas([
        'instance',
        '--broker',
        brokerAddr,
        '--db',
        dbAddr,
        '--data',
        join(data, 'n2'),
        '--node-id',
        'n2',
        '--miniworkers',
        '3',
        '--policy',
        'runtime',
      ]),
  };
  for (const [k, f] of Object.entries(start)) procs[k] = f();
  const accepted = new Set<number>();
  const samples: { t: number; rss: Record<string, number> }[] = [];
  const faults: { t: number; killed: string }[] = [];
  const t0 = Date.now();
  try {
    await waitHealthy(url, 2, procs.api);
    const fns: { name: string; runtime: string; files: Record<string, string> }[] = [
      { name: 'quick', runtime: 'node', files: { 'index.js': 'module.exports = (p) => ({ n: p.n });' } },
      {
        name: 'slow',
        runtime: 'node',
        files: { 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r({ n: p.n }), 300));' },
      },
      { name: 'py', runtime: 'python', files: { 'handler.py': 'def handler(e):\n    return {"n": e["n"]}\n' } },
    ];
    for (const f of fns) {
      const r = await upload(`${url}/registerFunction/${f.runtime}/${f.name}`, await packFiles(f.files), `${f.name}.tar.gz`);
      if (r.status !== 201) throw new Error(`deploy ${f.name}: ${r.status}`);
    }
    const end = t0 + MINUTES * 60_000;
    let n = 0;
    // Each client keeps one call in flight: it submits, then follows its call to the end (through
    // restarts), so the load stays at what the platform can serve and every accepted call is followed.
    const clients = Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < end) {
        const i = n++;
        const funcName = ['quick', 'quick', 'slow', 'py'][i % 4]!;
        let callNum: number | undefined;
        try {
          const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName, params: { n: i } });
          if (r.status === 202) {
            callNum = r.body.callNum;
            accepted.add(callNum);
          }
        } catch {
          /* the API is down: nothing was accepted */
        }
        if (callNum === undefined) {
          await sleep(200);
          continue;
        }
        while (Date.now() < end) {
          const c = await http<CallView>('GET', `${url}/call/${callNum}`).catch(() => null);
          if (c && ['DONE', 'ERROR', 'TIMEOUT'].includes(c.body.status)) break;
          await sleep(50);
        }
      }
    });
    const chaos = (async () => {
      const order = ['n1', 'api', 'n2', 'db'];
      for (let k = 0; Date.now() + FAULT_S * 1000 < end; k++) {
        await sleep(FAULT_S * 1000);
        const victim = order[k % order.length]!;
        procs[victim]!.child.kill('SIGKILL');
        await procs[victim]!.stop();
        faults.push({ t: Math.round((Date.now() - t0) / 1000), killed: victim });
        await sleep(1000);
        procs[victim] = start[victim]!();
      }
    })();
    const sampler = (async () => {
      while (Date.now() < end) {
        const rss: Record<string, number> = {};
        for (const [k, p] of Object.entries(procs)) rss[k] = Math.round(await rssTree(p.child.pid));
        samples.push({ t: Math.round((Date.now() - t0) / 1000), rss });
        await sleep(Math.min(30_000, MINUTES * 6000));
      }
    })();
    await Promise.all([...clients, chaos, sampler]);
    await waitHealthy(url, 2, procs.api);
    // Let everything accepted finish, then count.
    const deadline = Date.now() + 180_000;
    let finished = 0;
    let stuck: number[] = [];
    while (Date.now() < deadline) {
      const all = await allCalls(url);
      const byNum = new Map(all.map((c) => [c.callNum, c.status]));
      stuck = [...accepted].filter((c) => !['DONE', 'ERROR', 'TIMEOUT'].includes(byNum.get(c) ?? ''));
      finished = accepted.size - stuck.length;
      if (stuck.length === 0) break;
      await sleep(2000);
    }
    const all = await allCalls(url);
    const byStatus: Record<string, number> = {};
    const errors: Record<string, number> = {};
    for (const c of all) {
      if (!accepted.has(c.callNum)) continue;
      byStatus[c.status] = (byStatus[c.status] ?? 0) + 1;
      if (c.status !== 'DONE') {
        const why = (c.error ?? '').replace(/\d+/g, 'N').slice(0, 120);
        errors[why] = (errors[why] ?? 0) + 1;
      }
    }
    const report = {
      minutes: MINUTES,
      faultEverySeconds: FAULT_S,
      accepted: accepted.size,
      finished,
      lost: stuck.length,
      byStatus,
      errors,
      faults,
      memoryMiB: samples,
    };
    console.log(`\nzfaas soak: ${MINUTES} min, a SIGKILL every ${FAULT_S} s (${faults.map((f) => f.killed).join(', ') || 'none'})`);
    console.log(
      `| accepted | finished | lost | DONE | ERROR | TIMEOUT |\n|---|---|---|---|---|---|\n| ${accepted.size} | ${finished} | ${stuck.length} | ${byStatus.DONE ?? 0} | ${byStatus.ERROR ?? 0} | ${byStatus.TIMEOUT ?? 0} |`,
    );
    for (const [why, k] of Object.entries(errors)) console.log(`  ${k} x ${why}`);
    console.log('\nmemory (MiB, process and children) over time:');
    console.log(
      `| t (s) | ${Object.keys(start).join(' | ')} |\n|---|${Object.keys(start)
        .map(() => '---')
        .join('|')}|`,
    );
    for (const s of samples)
      console.log(
        `| ${s.t} | ${Object.keys(start)
          .map((k) => s.rss[k] ?? '-')
          .join(' | ')} |`,
      );
    const dir = join(ROOT, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(file, JSON.stringify(report, null, 2));
    console.log(`\nJSON: ${file}`);
    if (stuck.length) process.exitCode = 1;
  } finally {
    await Promise.all(Object.values(procs).map((p) => p.stop()));
    await rm(data, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
