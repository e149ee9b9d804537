// The DB service alone: ZFAAS_BENCH_PAIRS (default 10,000) createCall + finishCall pairs, the warm path's
// two writes, with 16 pairs in flight, on a real LevelDB in a temp dir. Prints pairs per second, the CPU
// time of this whole process per pair (process.cpuUsage: the service, LevelDB's threads and the clients)
// and the latency of a pair. Scenarios: through local() (the DB in the API's process, as in `zfaas up`);
// the same while one reader loops over listCalls of 5,000 calls (does a big read hold up the writes? the
// reader's CPU is counted too);
// over the ZMQ socket (the DB as its own service; the client's CPU is counted too).
//   npm run bench:db
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { DbServer } from '../db/server.js';
import { DbClient } from '../db/client.js';
import { freePort, tempDir } from '../test/helpers/platform.js';
import type { CallOutcome } from '../common/model.js';

const PAIRS = Number(process.env.ZFAAS_BENCH_PAIRS ?? 10_000);
const IN_FLIGHT = 16;
const WARMUP = 1_000;

const outcome: CallOutcome = { status: 'DONE', result: '[3,3,1,6]', logs: '', durationMs: 2 };

interface Row {
  scenario: string;
  pairsPerS: number;
  cpuMsPerPair: number;
  p50: number;
  p99: number;
}

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

// `pairs` createCall + callIntent(outcome) pairs, IN_FLIGHT at a time; the latency of each pair in ms.
async function pairs(db: DbClient, pairs: number): Promise<number[]> {
  const latencies: number[] = [];
  let left = pairs;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (left > 0) {
        left--;
        const t = performance.now();
        const call = await db.request('createCall', { funcName: 'dice', version: 1, params: { roll: '4d6' } });
        const done = await db.request('callIntent', {
          callNum: call.callNum,
          intent: { kind: 'outcome', outcome, ran: false, node: 'n1' },
        });
        if (!done.changed) throw new Error(`call ${call.callNum} was not finished`);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return latencies;
}

async function scenario(name: string, db: DbClient, reader?: DbClient): Promise<Row> {
  await pairs(db, WARMUP);
  let reading = reader !== undefined;
  const reads = (async () => {
    while (reading && reader) await reader.request('listCalls', { limit: 5_000 });
  })();
  const cpu = process.cpuUsage();
  const start = performance.now();
  const latencies = await pairs(db, PAIRS);
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  reading = false;
  await reads;
  latencies.sort((a, b) => a - b);
  return {
    scenario: name,
    pairsPerS: Math.round((PAIRS / wallMs) * 1000),
    cpuMsPerPair: (used.user + used.system) / 1000 / PAIRS,
    p50: pct(latencies, 0.5),
    p99: pct(latencies, 0.99),
  };
}

async function withServer<T>(run: (server: DbServer, bind: string) => Promise<T>): Promise<T> {
  const dir = await tempDir('zfaas-bench-db-');
  const bind = `tcp://127.0.0.1:${await freePort()}`;
  const server = new DbServer({ bind, dataDir: dir, log: pino({ level: 'silent' }) });
  await server.start();
  try {
    return await run(server, bind);
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  rows.push(await withServer((server) => scenario('local()', new DbClient(server))));
  rows.push(await withServer((server) => scenario('local(), listCalls reader', new DbClient(server), new DbClient(server))));
  rows.push(
    await withServer(async (_server, bind) => {
      const client = new DbClient(bind, 30_000);
      try {
        return await scenario('ZMQ socket', client);
      } finally {
        client.close();
      }
    }),
  );
  console.log(`${PAIRS} createCall + finishCall pairs, ${IN_FLIGHT} in flight (a pair is one call's two writes)`);
  console.table(
    rows.map((r) => ({
      scenario: r.scenario,
      'calls/s': r.pairsPerS,
      'CPU ms/call': r.cpuMsPerPair.toFixed(3),
      'p50 ms': r.p50.toFixed(2),
      'p99 ms': r.p99.toFixed(2),
    })),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
