// Where the CPU of a warm call goes: starts zfaas (policy function, 4 miniworkers), keeps 16 clients
// calling a warm node function for ZFAAS_BENCH_SECONDS (default 10), and prints the CPU time (user +
// system, from /proc/PID/stat) each part spent per call: the API process (API, DB service and instance in
// one), the miniworkers, the loaders in the function's containers, their containerd-shims, dockerd, and
// this benchmark's own HTTP client. dockerd serves the whole machine, so its line includes others' work.
// The baseline, measured first in the same run: a bare express JSON echo under the same 16 clients.
//   npm run bench:cpu
import { packFiles } from '../test/helpers/archives.js';
import { docker, http, labelledContainers, startUp, upload, waitFor } from '../test/helpers/platform.js';
import { startEcho } from './echo.js';
import { treePids } from './rss.js';
import { cpuOf, parentOf, pidsNamed } from './proc.js';

const SECONDS = Number(process.env.ZFAAS_BENCH_SECONDS ?? 10);
const CLIENTS = 16;

// `CLIENTS` loops POSTing `body` to `url` until `until`; the number of answers.
async function load(url: string, body: string, until: number): Promise<number> {
  let n = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (Date.now() < until) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await res.text();
        if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`);
        n++;
      }
    }),
  );
  return n;
}

const sum = cpuOf;

// CPU ms per answer of each group of processes while `CLIENTS` clients call `url` for SECONDS.
async function measure(
  url: string,
  body: string,
  groups: [string, number[]][],
): Promise<{ rows: [string, number][]; calls: number; secs: number }> {
  const before = await Promise.all(groups.map(([, pids]) => sum(pids)));
  const t0 = Date.now();
  const calls = await load(url, body, t0 + SECONDS * 1000);
  const secs = (Date.now() - t0) / 1000;
  const after = await Promise.all(groups.map(([, pids]) => sum(pids)));
  return { rows: groups.map(([name], i) => [name, (after[i]! - before[i]!) / calls]), calls, secs };
}

function table(title: string, m: { rows: [string, number][]; calls: number; secs: number }): void {
  const rows = [...m.rows, ['total', m.rows.reduce((a, [, v]) => a + v, 0)] as [string, number]];
  const w = Math.max(...rows.map(([n]) => n.length));
  console.log(`\n${title}: ${m.calls} answers in ${m.secs.toFixed(1)} s (${(m.calls / m.secs).toFixed(0)}/s), ${CLIENTS} clients\n`);
  console.log(`| ${'part'.padEnd(w)} | CPU ms per answer |`);
  console.log(`|${'-'.repeat(w + 2)}|-------------------|`);
  for (const [n, v] of rows) console.log(`| ${n.padEnd(w)} | ${v.toFixed(3).padStart(17)} |`);
}

async function main(): Promise<void> {
  const body = JSON.stringify({ name: 'bench' });
  const echo = await startEcho();
  try {
    await load(echo.url, body, Date.now() + 2000);
    table(
      'baseline: a bare express JSON echo',
      await measure(echo.url, body, [
        ['express echo', [echo.pid]],
        ['benchmark HTTP client', [process.pid]],
      ]),
    );
  } finally {
    echo.stop();
  }

  const p = await startUp(['--policy', 'function', '--miniworkers', '4']);
  try {
    const r = await upload(
      `${p.api}/registerFunction/node/cpu`,
      await packFiles({ 'index.js': "module.exports = (p) => ({ hello: (p && p.name) || 'world' });\n" }),
      'cpu.tar.gz',
    );
    if (r.status !== 201) throw new Error(`deploy: ${r.status}`);
    await waitFor(
      'the preloaded container',
      async () => ((await http<{ warm: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body[0]!.warm['cpu@1'] ?? 0) >= 1 || undefined,
      30_000,
    );
    const url = `${p.api}/function/cpu`;
    await load(url, body, Date.now() + 3000); // every miniworker's container warm, the JIT settled

    const nodeId = await p.nodeId();
    const tree = (await treePids(p.proc.child.pid!)).pids;
    const loaders: number[] = [];
    const shims: number[] = [];
    for (const id of await labelledContainers({ 'zfaas.node': nodeId })) {
      const pid = (await docker.getContainer(id).inspect()).State.Pid;
      if (!pid) continue;
      loaders.push(...(await treePids(pid)).pids);
      shims.push(await parentOf(pid));
    }
    const groups: [string, number[]][] = [
      ['API process (API + DB service + instance)', [p.proc.child.pid!]],
      ['miniworkers', tree.filter((x) => x !== p.proc.child.pid)],
      ['loaders (in the containers)', loaders],
      ['containerd-shim', shims],
      ['dockerd (whole machine)', await pidsNamed(/(^|\/)dockerd$/)],
      ['benchmark HTTP client', [process.pid]],
    ];
    table(`zfaas warm call, ${new Date().toISOString()}`, await measure(url, body, groups));
  } finally {
    await p.stop();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
