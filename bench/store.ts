// The store under the DB service, LevelDB beside PostgreSQL, measured in one run on this machine:
//  1. the DB service alone, under warm-call-shaped writes: createCall, then the intents `started` and
//     `outcome` of the call's run, 16 calls in flight, through local() as in `zfaas up`. Calls per second,
//     the latency (p50, p99) of one call's three writes, and the CPU per call of the DB service's process
//     (this process: the service and its clients) and of the PostgreSQL server's processes.
//  2. end to end: `zfaas up` (LevelDB in its data folder) beside `zfaas up --store postgres://...`, a warm
//     call's p50 (one at a time) and the calls per second one API sustains (16 clients), with the CPU per
//     call of the zfaas process and of PostgreSQL.
// PostgreSQL is a throwaway cluster on loopback (test/helpers/postgres.ts) with its default, durable
// settings (every commit flushed to disk); a row with synchronous_commit=off shows what LevelDB's default
// (writes not synced one by one) compares with.
//   npm run bench:store          ZFAAS_BENCH_CALLS (default 5,000)   ZFAAS_BENCH_QUICK=1 (a smoke run)
import { rm } from 'node:fs/promises';
import { readdir } from 'node:fs/promises';
import { pino } from 'pino';
import { DbServer } from '../db/server.js';
import { DbClient } from '../db/client.js';
import { PgCluster } from '../test/helpers/postgres.js';
import { packFiles } from '../test/helpers/archives.js';
import { freePort, http, startUp, tempDir, upload, waitFor, type Platform } from '../test/helpers/platform.js';
import { cpuMs, cpuOf, parentOf } from './proc.js';
import type { CallOutcome } from '../common/model.js';

const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const CALLS = Number(process.env.ZFAAS_BENCH_CALLS ?? (QUICK ? 1_000 : 5_000));
const WARMUP = QUICK ? 200 : 1_000;
const IN_FLIGHT = 16;
const N_WARM = QUICK ? 300 : 2_000;
const LOAD_S = QUICK ? 3 : 8;
const CLIENTS = 16;
const FN_SOURCE = "module.exports = (p) => ({ hello: (p && p.name) || 'world' });\n";

const outcome: CallOutcome = { status: 'DONE', result: '{"hello":"bench"}', logs: '', durationMs: 2 };
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

// The PostgreSQL server's processes: the postmaster and its children (backends, writers).
async function pgPids(cluster: PgCluster | undefined): Promise<number[]> {
  if (!cluster?.pid) return [];
  const all = (await readdir('/proc')).filter((d) => /^\d+$/.test(d)).map(Number);
  const children = (await Promise.all(all.map(async (pid) => ((await parentOf(pid)) === cluster.pid ? pid : 0)))).filter((p) => p > 0);
  return [cluster.pid, ...children];
}
// CPU ms of the cluster so far (backends that ended took theirs with them: the pool keeps its connections).
const pgCpu = async (cluster: PgCluster | undefined): Promise<number> => cpuOf(await pgPids(cluster));

// `n` warm-call-shaped write sequences, IN_FLIGHT at a time; the latency of each in ms.
async function calls(db: DbClient, n: number): Promise<number[]> {
  const latencies: number[] = [];
  let left = n;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left > 0) {
        left--;
        const t = performance.now();
        const call = await db.request('createCall', { funcName: 'dice', version: 1, params: { name: 'bench' } });
        const started = await db.request('callIntent', { callNum: call.callNum, intent: { kind: 'started', node: 'n1', attempt: 1 } });
        const done = await db.request('callIntent', {
          callNum: call.callNum,
          intent: { kind: 'outcome', outcome, ran: true, node: 'n1', attempt: 1 },
        });
        if (!started.changed || !done.changed) throw new Error(`call ${call.callNum} was not run as planned`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies;
}

interface ServiceRow {
  store: string;
  'calls/s': number;
  'p50 ms': string;
  'p99 ms': string;
  'DB service CPU ms/call': string;
  'PostgreSQL CPU ms/call': string;
}

async function serviceRun(name: string, store: string | undefined, cluster?: PgCluster): Promise<ServiceRow> {
  const dir = await tempDir('zfaas-bench-store-');
  const server = new DbServer({ bind: `tcp://127.0.0.1:${await freePort()}`, dataDir: dir, store, log: pino({ level: 'silent' }) });
  await server.start();
  const db = new DbClient(server);
  try {
    await calls(db, WARMUP);
    const cpu = process.cpuUsage();
    const pg0 = await pgCpu(cluster);
    const t0 = performance.now();
    const lat = await calls(db, CALLS);
    const wall = performance.now() - t0;
    const used = process.cpuUsage(cpu);
    const pgUsed = (await pgCpu(cluster)) - pg0;
    lat.sort((a, b) => a - b);
    return {
      store: name,
      'calls/s': Math.round((CALLS / wall) * 1000),
      'p50 ms': pct(lat, 0.5).toFixed(2),
      'p99 ms': pct(lat, 0.99).toFixed(2),
      'DB service CPU ms/call': ((used.user + used.system) / 1000 / CALLS).toFixed(3),
      'PostgreSQL CPU ms/call': cluster ? (pgUsed / CALLS).toFixed(3) : '-',
    };
  } finally {
    db.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function post(url: string, body: string): Promise<void> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${text.slice(0, 200)}`);
}

interface UpRow {
  store: string;
  'warm p50 ms': string;
  'warm p99 ms': string;
  'calls/s (16 clients)': number;
  'zfaas CPU ms/call': string;
  'PostgreSQL CPU ms/call': string;
}

async function upRun(name: string, store: string | undefined, cluster?: PgCluster): Promise<UpRow> {
  const p: Platform = await startUp(['--policy', 'none', '--miniworkers', '4', ...(store ? ['--store', store] : [])]);
  try {
    const archive = await packFiles({ 'index.js': FN_SOURCE });
    const r = await upload(`${p.api}/registerFunction/node/warm`, archive, 'warm.tar.gz', { policy: 'function' });
    if (r.status !== 201) throw new Error(`deploy: ${r.status} ${JSON.stringify(r.body)}`);
    await waitFor(
      'the preloaded container',
      async () =>
        ((await http<Array<{ warm: Record<string, number> }>>('GET', `${p.api}/nodes`)).body[0]?.warm['warm@1'] ?? 0) >= 1 || undefined,
      30_000,
    );
    const url = `${p.api}/function/warm`;
    const body = JSON.stringify({ name: 'bench' });
    for (let i = 0; i < 200; i++) await post(url, body);
    const lat: number[] = [];
    for (let i = 0; i < N_WARM; i++) {
      const t = performance.now();
      await post(url, body);
      lat.push(performance.now() - t);
    }
    lat.sort((a, b) => a - b);
    const pid = p.proc.child.pid!;
    const [cpu0, pg0] = [await cpuMs(pid), await pgCpu(cluster)];
    const end = Date.now() + LOAD_S * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (Date.now() < end) {
          await post(url, body);
          done++;
        }
      }),
    );
    const [cpu1, pg1] = [await cpuMs(pid), await pgCpu(cluster)];
    return {
      store: name,
      'warm p50 ms': pct(lat, 0.5).toFixed(2),
      'warm p99 ms': pct(lat, 0.99).toFixed(2),
      'calls/s (16 clients)': Math.round(done / LOAD_S),
      'zfaas CPU ms/call': ((cpu1 - cpu0) / done).toFixed(3),
      'PostgreSQL CPU ms/call': cluster ? ((pg1 - pg0) / done).toFixed(3) : '-',
    };
  } finally {
    await p.stop();
  }
}

async function main(): Promise<void> {
  const durable = await PgCluster.start();
  const relaxed = await PgCluster.start({ settings: { synchronous_commit: 'off' } });
  try {
    console.error('1. the DB service alone');
    const service: ServiceRow[] = [];
    service.push(await serviceRun('leveldb', undefined));
    service.push(await serviceRun('postgres', await durable.database('svc'), durable));
    service.push(await serviceRun('postgres, synchronous_commit=off', await relaxed.database('svc'), relaxed));
    console.error('2. zfaas up, a warm call end to end');
    const up: UpRow[] = [];
    up.push(await upRun('leveldb (default)', undefined));
    up.push(await upRun('postgres', await durable.database('up'), durable));
    up.push(await upRun('postgres, synchronous_commit=off', await relaxed.database('up'), relaxed));
    console.log(
      `\nThe DB service alone: ${CALLS} warm-call-shaped write sequences (createCall, started, outcome), ${IN_FLIGHT} in flight, local()`,
    );
    console.table(service);
    console.log(
      `\nzfaas up, warm calls of a node function: p50/p99 of ${N_WARM} one at a time; calls/s over ${LOAD_S} s with ${CLIENTS} clients`,
    );
    console.table(up);
  } finally {
    await durable.stop();
    await relaxed.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
