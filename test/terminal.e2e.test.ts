// `zfaas up` as a person sees it in a terminal: readable log lines (not JSON), nothing printed by node
// for each miniworker it starts, and JSON lines again with --log-format json. The terminal is a pseudo-
// terminal that util-linux's `script` makes; the zfaas process inside it is stopped by its own pid.
import { killIfStill } from './helpers/cluster.js';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import { CLI, TEST_BACKUP_KEY, TEST_SECRETS_KEY, freePort, tempDir, waitFor } from './helpers/platform.js';

interface InTerminal {
  output: () => string;
  stop: () => Promise<void>;
}

const started: InTerminal[] = [];
afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});

// `zfaas up ARGS` on a pseudo-terminal; the shell prints its pid, then becomes zfaas (exec).
async function upInTerminal(args: string[]): Promise<InTerminal & { api: string }> {
  const [port, dbPort, brokerPort] = [await freePort(), await freePort(), await freePort()];
  const data = await tempDir();
  const cmd = [process.execPath, CLI, 'up', '--port', port, '--data', data, '--miniworkers', 3, ...args]
    .concat(['--db-bind', `tcp://127.0.0.1:${dbPort}`, '--broker-bind', `tcp://127.0.0.1:${brokerPort}`])
    .map((a) => `'${String(a)}'`)
    .join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env, ZFAAS_SECRETS_KEY: TEST_SECRETS_KEY, ZFAAS_BACKUP_KEY: TEST_BACKUP_KEY };
  delete env.ZFAAS_LOG_FORMAT; // the terminal alone decides
  const child = spawn('script', ['-qfec', `echo "pid=$$"; exec ${cmd}`, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const t = {
    api: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      const pid = /pid=(\d+)/.exec(out)?.[1];
      // Only while that pid is still this zfaas (its data folder is on its command line).
      if (!pid || !(await killIfStill(Number(pid), data, 'SIGINT'))) child.kill('SIGTERM');
      await exited;
      await rm(data, { recursive: true, force: true });
    },
  };
  started.push(t);
  return t;
}

// Every miniworker has started (and said whatever node says when one starts).
async function miniworkersUp(t: InTerminal & { api: string }, n: number): Promise<void> {
  await waitFor(
    `${n} miniworkers`,
    async () => {
      const nodes = (await (await fetch(`${t.api}/nodes`).catch(() => undefined))?.json().catch(() => undefined)) as
        Array<{ miniworkers: number }> | undefined;
      return nodes?.[0] && nodes[0].miniworkers >= n ? true : undefined;
    },
    60_000,
  );
}

const lines = (out: string): string[] =>
  out
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('pid='));

it('prints readable logs on a terminal, and nothing for each miniworker it starts', async () => {
  const t = await upInTerminal([]);
  await miniworkersUp(t, 3);
  // pino-pretty's form, [time] LEVEL (name): message; it prints from a worker thread, so a moment later.
  const up = /\[\d\d:\d\d:\d\d\.\d{3}\] \S*INFO\S* \(zfaas\): \S*zfaas is up: http:\/\/127\.0\.0\.1:\d+/;
  await waitFor('the pretty line saying zfaas is up', async () => (up.test(t.output()) ? true : undefined), 20_000);
  const out = t.output();
  expect(out).not.toContain('expose_wasm');
  expect(out).not.toContain('Warning:');
  expect(lines(out).filter((l) => l.startsWith('{'))).toEqual([]);
});

it('prints JSON lines on a terminal with --log-format json', async () => {
  const t = await upInTerminal(['--log-format', 'json']);
  await miniworkersUp(t, 3);
  await waitFor('the line saying zfaas is up', async () => (t.output().includes('zfaas is up') ? true : undefined), 20_000);
  const all = lines(t.output());
  for (const l of all) expect(() => JSON.parse(l) as unknown, l).not.toThrow();
});
