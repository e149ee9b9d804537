// A neighbour's latency while hostile functions run (issue 6 item 3): a warm neighbour function is called
// by one client, first on a quiet node, then while attacker clients keep invoking hostile functions (infinite
// loops, memory hogs, fork bombs, disk fillers, output floods; per-call and warm containers alike), each kind
// alone and then all together. Prints a table line per phase: the p99 under attack against the quiet p99
// measured in the same run (goal: at most 2 times), and writes JSON to bench/results/.
//   npm run bench:neighbour          ZFAAS_BENCH_QUICK=1 for a smoke run; ZFAAS_BENCH_ATTACKERS=N (default 2)
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, hostname, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { packFiles } from '../test/helpers/archives.js';
import { http, labelledContainers, ROOT, startUp, upload, waitFor, type Platform } from '../test/helpers/platform.js';

const QUICK = process.env.ZFAAS_BENCH_QUICK === '1';
const N = QUICK ? 300 : 2000;
const ATTACKERS = Number(process.env.ZFAAS_BENCH_ATTACKERS ?? 2);
const GOAL = 2;

interface Latency {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function stats(xs: number[]): Latency {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1]! };
}

// The hostile functions: name, code, settings, params. Each is deployed for policy none and policy function.
const HOSTILE: { name: string; files: Record<string, string>; fields: Record<string, string>; params: unknown; runtime?: string }[] = [
  { name: 'spin', files: { 'index.js': 'module.exports = () => { for (;;) {} };' }, fields: { timeout: '2' }, params: {} },
  {
    name: 'hog',
    files: { 'index.js': 'module.exports = () => { const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1)); };' },
    fields: { memory: '64' },
    params: {},
  },
  {
    name: 'forkbomb',
    files: {
      'index.js':
        "const { spawn } = require('child_process');\nmodule.exports = async () => { spawn('/bin/sh', ['-c', ':(){ :|:& };:'], { stdio: 'ignore' }).on('error', () => {}); await new Promise((r) => setTimeout(r, 1500)); throw new Error('bomb'); };",
    },
    fields: { pids: '32', timeout: '5' },
    params: {},
  },
  {
    name: 'filler',
    files: {
      'index.js':
        "const fs = require('fs');\nmodule.exports = () => { const b = Buffer.alloc(1 << 20); const fd = fs.openSync('/tmp/fill', 'w'); try { for (;;) fs.writeSync(fd, b); } finally { fs.closeSync(fd); fs.unlinkSync('/tmp/fill'); } };",
    },
    fields: {},
    params: {},
  },
  {
    name: 'flood',
    files: {
      'index.js':
        "const fs = require('fs');\nmodule.exports = () => { const b = Buffer.alloc(1 << 20, 120); for (;;) { try { fs.writeSync(2, b); } catch (e) { if (e.code !== 'EAGAIN') throw e; } } };",
    },
    fields: { timeout: '30' },
    params: {},
  },
];

async function deploy(
  p: Platform,
  name: string,
  files: Record<string, string>,
  fields: Record<string, string>,
  runtime = 'node',
): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields);
  if (r.status !== 201) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

async function neighbourCalls(p: Platform, n: number): Promise<Latency> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    const r = await fetch(`${p.api}/function/neighbour`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ n: i }),
    });
    const body = (await r.json()) as { twice?: number };
    xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    if (r.status !== 200 || body.twice !== 2 * i) throw new Error(`the neighbour answered wrongly: ${r.status} ${JSON.stringify(body)}`);
  }
  return stats(xs);
}

interface Phase {
  name: string;
  latency: Latency;
  attacks: Record<string, number>;
  neighbourContainers: number;
}

async function main(): Promise<void> {
  console.error(`neighbour benchmark: ${N} neighbour calls per phase; attacks by ${ATTACKERS} clients, each kind alone, then all together`);
  const p = await startUp(['--miniworkers', String(ATTACKERS + 2)]);
  const phases: Phase[] = [];
  let quiet: Latency;
  try {
    await deploy(p, 'neighbour', { 'index.js': 'module.exports = (p) => ({ twice: p.n * 2 });' }, { policy: 'function' });
    const targets = new Map<string, { fn: string; params: unknown }[]>();
    for (const h of HOSTILE) {
      const list: { fn: string; params: unknown }[] = [];
      for (const policy of ['none', 'function']) {
        const fn = `${h.name}-${policy === 'none' ? 'cold' : 'warm'}`;
        await deploy(p, fn, h.files, { ...h.fields, policy }, h.runtime);
        list.push({ fn, params: h.params });
      }
      targets.set(h.name, list);
    }
    await waitFor('warm containers', async () => {
      const n = (await http<{ warm: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body[0];
      return n && Object.keys(n.warm).length >= 1 + HOSTILE.length ? true : undefined;
    });
    await neighbourCalls(p, 100); // warm-up
    quiet = await neighbourCalls(p, N);
    const neighbourContainers = async (): Promise<number> => (await labelledContainers({ 'zfaas.function': 'neighbour' })).length;

    const attackWith = async (name: string, list: { fn: string; params: unknown }[]): Promise<void> => {
      const attacks: Record<string, number> = {};
      let attacking = true;
      let next = 0;
      const loops = Array.from({ length: ATTACKERS }, async () => {
        while (attacking) {
          const t = list[next++ % list.length]!;
          const r = await http<{ status?: string }>('POST', `${p.api}/function/${t.fn}`, t.params);
          const key = `${t.fn} ${r.status === 200 ? 'DONE' : (r.body.status ?? r.status)}`;
          attacks[key] = (attacks[key] ?? 0) + 1;
        }
      });
      await new Promise((r) => setTimeout(r, 2000)); // let the attacks get going
      const latency = await neighbourCalls(p, N);
      attacking = false;
      await Promise.all(loops);
      phases.push({ name, latency, attacks, neighbourContainers: await neighbourContainers() });
      console.error(`  ${name}: p99 ${latency.p99.toFixed(2)} ms (quiet ${quiet.p99.toFixed(2)} ms)`);
    };
    for (const [name, list] of targets) await attackWith(name, list);
    await attackWith('all together', [...targets.values()].flat());
  } finally {
    await p.stop();
  }

  const f = (x: number): string => `${x.toFixed(2)} ms`;
  const all = phases[phases.length - 1]!;
  const rows = [
    ['neighbour p50, quiet | all attacks', `${f(quiet.p50)} | ${f(all.latency.p50)}`, '-', '-', '-', '-'],
    ...phases.map((ph) => {
      const ratio = ph.latency.p99 / quiet.p99;
      return [
        `neighbour p99 during ${ph.name === 'all together' ? 'all attacks together' : `${ph.name} attacks`}`,
        f(ph.latency.p99),
        f(quiet.p99),
        ratio.toFixed(2),
        `<= ${GOAL}`,
        ratio <= GOAL ? 'yes' : 'NO',
      ];
    }),
  ];
  const head = ['scenario', 'under attack', 'quiet p99 (same run)', 'ratio', 'goal', 'met'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  const machine = `${hostname()}: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`;
  console.log(`\nzfaas neighbour benchmark, ${new Date().toISOString()}\n${machine}\n`);
  console.log([line(head), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
  for (const ph of phases)
    console.log(`  ${ph.name}: neighbour containers after it: ${ph.neighbourContainers}; attack calls: ${JSON.stringify(ph.attacks)}`);
  const dir = join(ROOT, 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const file = join(dir, `neighbour-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, JSON.stringify({ machine, quick: QUICK, attackers: ATTACKERS, quiet, phases, goal: GOAL }, null, 2));
  console.log(`JSON: ${file}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
