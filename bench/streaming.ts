// Time to first byte of a streamed web answer: how long after a function's own first write its caller
// has that byte, through zfaas (loader -> node -> API -> caller; Node gcf, Node Lambda streaming and a
// Python generator) and, as the baseline in the same run,
// through a raw express streaming endpoint in a process of its own on this machine. Each writer says when
// it wrote (epoch ms, sub-millisecond, from the same clock as the caller's), in its first piece; the caller
// notes when the piece arrived. N calls one after another, after a warm-up; p50/p99 of the difference and
// the ratio to the baseline.
//   npm run bench:streaming        (ZFAAS_BENCH_QUICK=1 for fewer calls)
import { spawn } from 'node:child_process';
import { packFiles } from '../test/helpers/archives.js';
import { freePort, startUp, upload, type Platform } from '../test/helpers/platform.js';

const N = process.env.ZFAAS_BENCH_QUICK === '1' ? 15 : 50;
const TOKEN = 'bench-streaming-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

// The writer, the same in both: its first piece says when it was written, the rest follows 50 ms later.
const WRITER = `async (req, res) => {
  res.setHeader('content-type', 'text/plain');
  res.write(JSON.stringify({ t: performance.timeOrigin + performance.now() }) + '\\n');
  await new Promise((r) => setTimeout(r, 50));
  res.end('done\\n');
}`;

// The same writer in each streaming form zfaas runs.
const FUNCTIONS: { name: string; runtime: string; format: string; handler: string; files: Record<string, string>; label: string }[] = [
  {
    name: 'gcf',
    runtime: 'node',
    format: 'gcf',
    handler: 'index.handler',
    files: { 'index.js': `exports.handler = ${WRITER};\n` },
    label: 'Node gcf res.write',
  },
  {
    name: 'lam',
    runtime: 'node',
    format: 'lambda',
    handler: 'index.handler',
    files: {
      'index.js': `exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write(JSON.stringify({ t: performance.timeOrigin + performance.now() }) + '\\n');
  await new Promise((r) => setTimeout(r, 50));
  responseStream.end('done\\n');
});
`,
    },
    label: 'Node awslambda.streamifyResponse',
  },
  {
    name: 'py',
    runtime: 'python',
    format: 'gcf',
    handler: 'main.handler',
    files: {
      'main.py': `import json
import time


def handler(request):
    def parts():
        yield json.dumps({"t": time.time() * 1000}) + "\\n"
        time.sleep(0.05)
        yield "done\\n"
    return parts(), 200, {"content-type": "text/plain"}
`,
    },
    label: 'Python generator',
  },
];

const now = (): number => performance.timeOrigin + performance.now();

// One call: ms from the writer's first write to its arrival here.
async function firstByteLag(url: string, headers: Record<string, string>): Promise<number> {
  const r = await fetch(url, { headers });
  const reader = r.body!.getReader();
  const first = await reader.read();
  const at = now();
  let text = Buffer.from(first.value ?? []).toString('utf8');
  while (!text.includes('\n')) {
    const more = await reader.read();
    if (more.done) break;
    text += Buffer.from(more.value).toString('utf8');
  }
  while (!(await reader.read()).done);
  const { t } = JSON.parse(text.slice(0, text.indexOf('\n'))) as { t: number };
  return at - t;
}

async function measure(url: string, headers: Record<string, string>): Promise<number[]> {
  await firstByteLag(url, headers); // warm-up: a container started, a connection made
  const lags: number[] = [];
  for (let i = 0; i < N; i++) lags.push(await firstByteLag(url, headers));
  return lags.sort((a, b) => a - b);
}

const pct = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

// The baseline: express in a process of its own, the same writer.
async function baseline(): Promise<{ url: string; stop(): void }> {
  const port = await freePort();
  const code = `const express = require('express'); const app = express(); app.get('/', ${WRITER}); app.listen(${port}, '127.0.0.1', () => console.log('up'));`;
  const child = spawn(process.execPath, ['-e', code], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill() };
}

async function main(): Promise<void> {
  let p: Platform | undefined;
  const raw = await baseline();
  try {
    p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: TOKEN, ZFAAS_LOG_LEVEL: 'warn' });
    for (const f of FUNCTIONS) {
      const up = await upload(
        `${p.api}/registerFunction/${f.runtime}/${f.name}`,
        await packFiles(f.files),
        `${f.name}.tar.gz`,
        { format: f.format, handler: f.handler },
        auth,
      );
      if (up.status !== 201) throw new Error(`function ${f.name} not deployed: ${JSON.stringify(up.body)}`);
    }
    const base = await measure(raw.url, {});
    const rows: [string, number[]][] = [['raw express streaming endpoint (baseline)', base]];
    for (const f of FUNCTIONS) rows.push([`zfaas web function, ${f.label}`, await measure(`${p.api}/function/${f.name}/`, auth)]);
    console.log(`\nTime from a function's first write to that byte at its caller, ${N} calls each (ms)\n`);
    console.log('| path | p50 | p99 | p50 ratio to baseline | p99 ratio to baseline |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const [name, lags] of rows)
      console.log(
        `| ${name} | ${pct(lags, 0.5).toFixed(2)} | ${pct(lags, 0.99).toFixed(2)} | ${(pct(lags, 0.5) / pct(base, 0.5)).toFixed(1)}x | ${(pct(lags, 0.99) / pct(base, 0.99)).toFixed(1)}x |`,
      );
  } finally {
    raw.stop();
    await p?.stop();
  }
}

await main();
