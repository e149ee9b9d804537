// zfaas backup and zfaas restore against real processes: `zfaas up` runs a function and ~200 calls, then
// `zfaas backup` copies its DB service (over the socket `zfaas up` keeps in its data folder) while more
// calls are being made, into a file encrypted under the backup key and only its owner may read; `zfaas
// restore` refuses it under another key, then makes a new folder of it with the right one, and a new
// `zfaas db` with a `zfaas api` (no built-in runtimes: what it lists came from the backup) and an instance
// on that folder serve every call, function and runtime of the backup, and run new calls. The times of
// backup and restore and the file's size are printed.
import { spawn } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import {
  CLI,
  freePort,
  http,
  sleep,
  tempDir,
  upload,
  waitCall,
  waitFor,
  waitHealthy,
  zfaas,
  type CallView,
  type Proc,
} from './helpers/platform.js';

let data: string;
let up: Proc | undefined;
const procs: Proc[] = [];
let api: string;
let dbAddr: string;
let keyFile: string;
const KEY = 'backup-e2e-key-5b0f2e8c71a94d3690b2c4e1f7a8d6c5';

// A CLI command run to its end: exit code, stdout, stderr, and how long it took.
async function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((res) => child.once('exit', (c) => res(c)));
  return { code, stdout, stderr, ms: Date.now() - t0 };
}

async function invoke(url: string, n: number): Promise<number> {
  const r = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'echo', params: { n } });
  expect(r.status).toBe(202);
  return r.body.callNum;
}

beforeAll(async () => {
  data = await tempDir('zfaas-backup-e2e-');
  keyFile = join(data, 'backup.key');
  await writeFile(keyFile, `${KEY}\n`, { mode: 0o600 });
  const port = await freePort();
  dbAddr = `ipc://${join(data, 'live', 'run', 'db.sock')}`; // where zfaas up keeps its DB service's socket
  api = `http://127.0.0.1:${port}`;
  up = zfaas(['up', '--port', String(port), '--data', join(data, 'live'), '--miniworkers', '2']);
  await waitHealthy(api, 1, up);
});

afterAll(async () => {
  for (const p of procs.reverse()) await p.stop();
  await up?.stop();
  await rm(data, { recursive: true, force: true });
});

it('backs up a running platform while calls are made, and a restored one serves every call, function and runtime of it', async () => {
  const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ n: p.n, twice: p.n * 2 });' });
  expect((await upload(`${api}/registerFunction/node/echo`, arc, 'echo.tar.gz')).status).toBe(201);
  const first: number[] = [];
  for (let n = 1; n <= 200; n++) first.push(await invoke(api, n));
  for (const c of first) expect((await waitCall(api, c)).status).toBe('DONE');

  // More calls all along the backup.
  let making = true;
  let more = 0;
  const maker = (async () => {
    while (making) {
      await invoke(api, 1000 + more);
      more++;
    }
  })();
  await sleep(300);
  const file = join(data, 'zfaas.backup');
  const backup = await run(['backup', '--db', dbAddr, '--out', file, '--backup-key-file', keyFile]);
  making = false;
  await maker;
  expect(backup.code, backup.stderr).toBe(0);
  expect(backup.stderr).toMatch(/backup of .* as of .*: \d+ entries/);
  const size = (await stat(file)).size;
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  expect((await readFile(file)).includes(Buffer.from('"funcName":"echo"'))).toBe(false); // no record in the clear

  // Under another key: refused, saying so, and nothing made.
  const otherKey = join(data, 'other.key');
  await writeFile(otherKey, 'another-key-of-at-least-32-characters-0000');
  const wrongKey = await run(['restore', '--data', join(data, 'never'), file, '--backup-key-file', otherKey]);
  expect(wrongKey.code).toBe(1);
  expect(wrongKey.stderr).toMatch(/was encrypted with another backup key/);
  await expect(stat(join(data, 'never'))).rejects.toThrow();

  // Not into a folder that holds a store: exit 2.
  const refused = await run(['restore', '--data', join(data, 'live', 'db'), file, '--backup-key-file', keyFile]);
  expect(refused.code).toBe(2);
  expect(refused.stderr.trim().split('\n')).toHaveLength(1);

  const restoredDb = join(data, 'restored', 'db');
  const restore = await run(['restore', '--data', restoredDb, file, '--backup-key-file', keyFile]);
  expect(restore.code, restore.stderr).toBe(0);
  expect(restore.stdout).toMatch(/^restored \d+ entries/);
  const entries = Number(/(\d+) entries/.exec(backup.stderr)![1]);
  expect(restore.stdout).toContain(`restored ${entries} entries`);

  // The original's own view, to compare with.
  const listed = async (url: string, path: string): Promise<unknown> => (await http('GET', `${url}${path}`)).body;
  const functions = await listed(api, '/functions?detail=true');
  const runtimes = await listed(api, '/runtimes?detail=true');
  const before = await Promise.all(first.map(async (c) => (await http<CallView>('GET', `${api}/call/${c}`)).body));
  const dbAddr2 = `tcp://127.0.0.1:${await freePort()}`;
  const broker2 = `tcp://127.0.0.1:${await freePort()}`;
  const port2 = await freePort();
  const api2 = `http://127.0.0.1:${port2}`;
  procs.push(zfaas(['db', '--bind', dbAddr2, '--data', restoredDb]));
  const apiProc = zfaas(['api', '--port', String(port2), '--db', dbAddr2, '--broker-bind', broker2, '--no-builtins']);
  procs.push(apiProc);
  await waitFor(
    'the restored api',
    async () => ((await http('GET', `${api2}/functions`)).status === 200 ? true : undefined),
    60_000,
    apiProc,
  );

  expect(await listed(api2, '/functions?detail=true')).toEqual(functions);
  expect(await listed(api2, '/runtimes?detail=true')).toEqual(runtimes);

  // Every call of the backup: 1..K, K at least the 200 made before it, each as it was.
  const t0 = Date.now();
  let k = 0;
  for (;;) {
    const r = await http<CallView & { params: { n: number } }>('GET', `${api2}/call/${k + 1}`);
    if (r.status === 404) break;
    expect(r.status).toBe(200);
    expect(r.body.callNum).toBe(k + 1);
    expect(r.body.funcName).toBe('echo');
    if (k < 200) {
      expect(r.body).toEqual(before[k]);
      expect(JSON.parse(r.body.result)).toEqual({ n: k + 1, twice: (k + 1) * 2 });
    } else expect(r.body.params.n).toBe(1000 + k - 200);
    k++;
  }
  expect(k).toBeGreaterThanOrEqual(200);
  expect(k).toBeLessThanOrEqual(200 + more);
  const readMs = Date.now() - t0;

  // An instance on the restored platform runs a new call of the restored function.
  procs.push(zfaas(['instance', '--broker', broker2, '--db', dbAddr2, '--data', join(data, 'restored', 'instance'), '--miniworkers', '1']));
  await waitHealthy(api2, 1, apiProc);
  const fresh = await invoke(api2, 7);
  expect(fresh).toBe(k + 1);
  const ran = await waitCall(api2, fresh);
  expect(ran.status).toBe('DONE');
  expect(JSON.parse(ran.result)).toEqual({ n: 7, twice: 14 });

  console.log(
    `backup: ${entries} entries (${k} calls in it, ${200 + more} made by its end) in ${backup.ms} ms, file ${(size / 1024).toFixed(1)} KiB; ` +
      `restore in ${restore.ms} ms (each a whole CLI process); ${k} calls read back in ${readMs} ms\n  ${backup.stderr.trim()}\n  ${restore.stdout.trim()}`,
  );
});
