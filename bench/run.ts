// The benchmark: starts zfaas, runs each scenario next to its baseline measured in the same run on the same
// machine, prints a table and writes JSON to bench/results/. Run: `npm run bench` (after `npm run build`).
//   ZFAAS_BENCH_QUICK=1  fewer samples (a smoke run)
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packFiles } from '../test/helpers/archives.js';
import { startEcho } from './echo.js';
import { residentTree, rssTree } from './rss.js';
import { http, ROOT, sleep, startUp, tempDir, upload, waitFor, type Platform } from '../test/helpers/platform.js';

const run = promisify(execFile);
const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const N_COLD = QUICK ? 5 : 15;
const N_WARM = QUICK ? 500 : 3000;
const LOAD_S = QUICK ? 3 : 8;
const WARM_LOAD_S = QUICK ? 1 : 3;
const CLIENTS = 16;
const IMAGE = 'zfaas/node:latest';
const FN_SOURCE = "module.exports = (p) => ({ hello: (p && p.name) || 'world' });\n";
const WEB_SOURCE =
  "export const handler = async (e) => ({ statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'hello ' + (e.queryStringParameters?.name ?? 'world') });\n";

interface Latency {
  n: number;
  p50: number;
  p99: number;
  mean: number;
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

function stats(xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { n: s.length, p50: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function timeN(n: number, f: (i: number) => Promise<void>, warmup = 0): Promise<Latency> {
  for (let i = 0; i < warmup; i++) await f(-1 - i);
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await f(i);
    xs.push(ms(t));
  }
  return stats(xs);
}

async function post(url: string, body: string): Promise<string> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${text.slice(0, 200)}`);
  return text;
}

// Requests per second with `clients` concurrent loops for `seconds`, after the same load for WARM_LOAD_S
// unmeasured: the rate once warm, with the containers that load makes (bench:burst measures it from zero).
async function throughput(url: string, body: string, clients: number, seconds: number): Promise<number> {
  await load(url, body, clients, WARM_LOAD_S);
  return (await load(url, body, clients, seconds)) / seconds;
}

// Calls answered by `clients` concurrent loops in `seconds`.
async function load(url: string, body: string, clients: number, seconds: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        await post(url, body);
        done++;
      }
    }),
  );
  return done;
}

async function docker(args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

async function deploy(p: Platform, name: string, fields: Record<string, string>): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': FN_SOURCE }), `${name}.tar.gz`, fields);
  if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

interface NodeView {
  stems: Record<string, number>;
  containers: Record<string, number>;
  warm: Record<string, number>;
}

async function warmContainers(p: Platform): Promise<NodeView> {
  return (await http<NodeView[]>('GET', `${p.api}/nodes`)).body[0]!;
}

interface Row {
  scenario: string;
  value: string;
  baseline: string;
  ratio: number;
  goal: string;
  met: boolean;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const fnDir = await tempDir('zfaas-bench-fn-');
  await writeFile(join(fnDir, 'index.js'), FN_SOURCE);
  await run('chmod', ['-R', 'a+rX', fnDir]);
  const body = JSON.stringify({ name: 'bench' });
  const params = body;

  console.error('baselines: express echo');
  const echo = await startEcho();
  const echoLat = await timeN(N_WARM, () => post(echo.url, body).then(() => undefined), 200);
  const echoRps = await throughput(echo.url, body, CLIENTS, LOAD_S);
  echo.stop();
  raw.echo = { latency: echoLat, rps: echoRps };

  console.error('baselines: docker run --rm, docker exec, the seed (docker CLI from a shell)');
  const once = ['node', '/opt/zfaas/loader.js', '--once'];
  const common = [
    '--network',
    'none',
    '--user',
    '1000:1000',
    '--label',
    'zfaas.bench=1',
    '-v',
    `${fnDir}:/ws:ro`,
    '-w',
    '/ws',
    '-e',
    `ZFAAS_PARAMS=${params}`,
  ];
  const dockerRun = await timeN(N_COLD, () => docker(['run', '--rm', ...common, IMAGE, ...once]).then(() => undefined), 1);
  const cname = `zfaas-bench-${process.pid}`;
  await docker(['run', '-d', '--name', cname, ...common, IMAGE, 'sleep', 'infinity']);
  const dockerExec = await timeN(N_COLD, () => docker(['exec', '-e', `ZFAAS_PARAMS=${params}`, cname, ...once]).then(() => undefined), 1);
  await docker(['rm', '-f', cname]);
  const seed = await timeN(N_COLD, () =>
    run('sh', [
      '-c',
      `echo '${params}' | docker run --rm -i --label zfaas.bench=1 -v ${fnDir}:/ws:ro -w /ws ${IMAGE} node /opt/zfaas/loader.js --once`,
    ]).then(() => undefined),
  );
  raw.docker = { run: dockerRun, exec: dockerExec, seed };

  console.error('zfaas: a node with policy none; functions choose none, runtime or function for themselves');
  const p = await startUp(['--policy', 'none', '--miniworkers', '4']);
  let p2: Platform | undefined;
  try {
    await sleep(3000);
    const idleRss = await rssTree(p.proc.child.pid!);
    const idleResident = await residentTree(p.proc.child.pid!);

    await deploy(p, 'cold', { policy: 'none' });
    const cold = await timeN(N_COLD, () => post(`${p.api}/function/cold`, body).then(() => undefined), 1);

    // Six functions with policy=runtime deployed, then called one after the other: their node keeps stem
    // cells for them although its own policy is none, and the pool grows with the demand.
    for (let i = 0; i < 6; i++) await deploy(p, `fresh${i}`, { policy: 'runtime' });
    const firsts: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = process.hrtime.bigint();
      await post(`${p.api}/function/fresh${i}`, body);
      firsts.push(ms(t));
    }
    const first = stats(firsts);

    await deploy(p, 'warm', { policy: 'function' });
    await waitFor('the preloaded container', async () => ((await warmContainers(p)).warm['warm@1'] ?? 0) >= 1 || undefined, 30_000);
    const warm = await timeN(N_WARM, () => post(`${p.api}/function/warm`, body).then(() => undefined), 200);
    const warmRps = await throughput(`${p.api}/function/warm`, body, CLIENTS, LOAD_S);
    const check = JSON.parse(await post(`${p.api}/function/warm`, body)) as { hello: string };
    if (check.hello !== 'bench') throw new Error('warm function answered wrongly');

    // The same work as a web function: a GET with a query, a small text answer, in the Lambda form.
    const web = await upload(`${p.api}/registerFunction/node/web`, await packFiles({ 'index.mjs': WEB_SOURCE }), 'web.tar.gz', {
      policy: 'function',
      format: 'lambda',
      handler: 'index.handler',
    });
    if (web.status !== 201) throw new Error(`deploy web: ${web.status}`);
    await waitFor('the preloaded web container', async () => ((await warmContainers(p)).warm['web@1'] ?? 0) >= 1 || undefined, 30_000);
    const get = async (): Promise<void> => {
      const r = await fetch(`${p.api}/function/web/hello?name=bench`);
      const text = await r.text();
      if (r.status !== 200 || text !== 'hello bench') throw new Error(`web call: ${r.status} ${text.slice(0, 200)}`);
    };
    const webWarm = await timeN(N_WARM, get, 200);
    await p.stop();

    console.error('zfaas: out of the box (no --policy)');
    p2 = await startUp(['--miniworkers', '4']);
    const q = p2;
    await waitFor('a stem cell', async () => ((await warmContainers(q)).stems.node ?? 0) >= 1 || undefined, 30_000);
    const outFirst: number[] = [];
    const outSecond: number[] = [];
    for (let i = 0; i < N_COLD; i++) {
      await deploy(q, `plain${i}`, {});
      for (const times of [outFirst, outSecond]) {
        const t = process.hrtime.bigint();
        await post(`${q.api}/function/plain${i}`, body);
        times.push(ms(t));
      }
    }
    const defaultFirst = stats(outFirst);
    const defaultSecond = stats(outSecond);
    raw.zfaas = { idleRssMiB: idleRss, idleResidentMiB: idleResident, cold, first, warm, warmRps, webWarm, defaultFirst, defaultSecond };

    const row = (scenario: string, v: number, base: number, unit: string, baseName: string, goal: number, higherIsBetter = false): void => {
      const ratio = v / base;
      rows.push({
        scenario,
        value: `${v.toFixed(unit === 'req/s' ? 0 : 2)} ${unit}`,
        baseline: `${baseName} ${base.toFixed(unit === 'req/s' ? 0 : 2)} ${unit}`,
        ratio,
        goal: `${higherIsBetter ? '>=' : '<='} ${goal}`,
        met: higherIsBetter ? ratio >= goal : ratio <= goal,
      });
    };
    row('warm call p50 (policy function, 1 client)', warm.p50, echoLat.p50, 'ms', 'express echo', 3);
    row('warm call p99 (policy function, 1 client)', warm.p99, echoLat.p99, 'ms', 'express echo', 2.5);
    row(`warm throughput (${CLIENTS} clients)`, warmRps, echoRps, 'req/s', 'express echo', 0.35, true);
    row('warm web call p50 (GET with a query, Lambda form)', webWarm.p50, warm.p50, 'ms', 'warm JSON call', 1.1);
    row('cold call p50 (policy none)', cold.p50, dockerRun.p50, 'ms', 'docker run --rm', 1.15);
    row('first calls of 6 new functions, policy runtime, on a none node (median)', first.p50, cold.p50, 'ms', 'cold call', 0.5);
    row('out of the box: first call of a new function', defaultFirst.p50, cold.p50, 'ms', 'cold call', Infinity);
    row('out of the box: its second call', defaultSecond.p50, echoLat.p50, 'ms', 'express echo', Infinity);
    row('cold call vs docker exec', cold.p50, dockerExec.p50, 'ms', 'docker exec', Infinity);
    row('cold call vs the seed (docker CLI per call)', cold.p50, seed.p50, 'ms', 'seed docker run', Infinity);
    // The goal is 300 MB (286 MiB) resident for the group: its distinct pages, each counted once. Summed RSS
    // counts the node binary and libraries once per process, so it is shown beside it.
    const footprint = idleResident ?? idleRss;
    const footprintText =
      idleResident === undefined
        ? `${idleRss.toFixed(0)} MiB summed RSS`
        : `${idleResident.toFixed(0)} MiB (summed RSS ${idleRss.toFixed(0)} MiB)`;
    rows.push({
      scenario: 'idle footprint api+db+instance+4 miniworkers',
      value: footprintText,
      baseline: '-',
      ratio: NaN,
      goal: '<= 300 MB (286 MiB)',
      met: footprint <= 286,
    });
  } finally {
    await p.stop();
    await p2?.stop();
    await rm(fnDir, { recursive: true, force: true });
  }

  const machine = `${hostname()}: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, docker ${(await docker(['version', '-f', '{{.Server.Version}}'])).trim()}`;
  const table = formatTable(rows);
  console.log(`\nzfaas benchmark, ${new Date().toISOString()}\n${machine}\n\n${table}`);
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ machine, quick: QUICK, rows, raw }, null, 2));
  console.log(`\nJSON: ${file}`);
}

function formatTable(rows: Row[]): string {
  const head = ['scenario', 'zfaas', 'baseline (same run)', 'ratio', 'goal', 'met'];
  const body = rows.map((r) => [
    r.scenario,
    r.value,
    r.baseline,
    Number.isNaN(r.ratio) ? '-' : r.ratio.toFixed(2),
    r.goal === '<= Infinity' ? '-' : r.goal,
    r.goal === '<= Infinity' ? '' : r.met ? 'yes' : 'NO',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
