// Builds at deploy: a function's dependencies step runs when it is deployed, once, on one node, and every
// node runs the built tree it stored in the DB service. Real processes (the DB service, the API, a node;
// later a second node with an empty data folder in place of the first) and real Docker. The step writes a
// random stamp into the tree and prints it; the function returns the stamp it finds, so a call that ran
// the step again would return another one.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { runCli } from './helpers/cli-run.js';
import {
  freePort,
  http,
  instanceProc,
  labelledContainers,
  tempDir,
  upload,
  waitFor,
  waitHealthy,
  zfaas,
  type CallView,
  type Proc,
} from './helpers/platform.js';

interface Version {
  version: number;
  build?: { state: string; node?: string; digest?: string; error?: string; log?: string };
}

let data: string;
let url: string;
let brokerAddr: string;
let dbAddr: string;
let db: Proc;
let api: Proc;
const nodes: Record<string, Proc> = {};
// Node ids of this run alone: other suites on this machine name their nodes n1, n2 too.
const first = `build-${process.pid}-a`;
const second = `build-${process.pid}-b`;

// A python runtime whose dependencies step is `deps`.
async function runtime(name: string, deps: string): Promise<void> {
  const r = await http('POST', `${url}/registerRuntime`, {
    name,
    image: 'zfaas/python:latest',
    path: '/ws',
    dependencies: deps,
    run: 'python3 main.py',
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

// The stamp is read through a symlink the step made, which the built tree keeps as a link.
const STAMP_STEP =
  'head -c 8 /dev/urandom | od -An -tx1 | tr -d " \\n" > stamp.txt && ln -s stamp.txt link.txt && echo "built stamp $(cat stamp.txt)"';
const main = 'import os\nprint("stamp=" + (open("link.txt").read() if os.path.islink("link.txt") else "none"))\n';

// A function's folder on disk, as `zfaas deploy` takes it.
async function folder(files: Record<string, string>): Promise<string> {
  const dir = join(data, `src-${Math.random().toString(16).slice(2)}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const deploy = (name: string, dir: string, rt: string) =>
  runCli(['deploy', name, dir, '--runtime', rt], { env: { ZFAAS_API: url }, fetchFn: fetch });

const stampOf = (log: string | undefined): string | undefined => /built stamp ([0-9a-f]{16})/.exec(log ?? '')?.[1];

beforeAll(async () => {
  data = await tempDir();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
  api = zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr]);
  nodes[first] = instanceProc({ broker: brokerAddr, db: dbAddr, data, id: first, miniworkers: 1, policy: 'none' });
  await waitHealthy(url, 1, api);
  await runtime('stamped', STAMP_STEP);
});

afterAll(async () => {
  await Promise.all([...Object.values(nodes).map((p) => p.stop()), api?.stop(), db?.stop()]);
  for (const id of Object.keys(nodes)) expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
  await rm(data, { recursive: true, force: true });
});

let built: string; // the stamp the build at deploy made

it('runs the step at deploy: `zfaas deploy` waits for it, and the first call runs on what it built', async () => {
  const r = await deploy('stamp', await folder({ 'main.py': main }), 'stamped');
  expect(r.code, r.notes.join('\n')).toBe(0);
  expect(r.printed.join('\n')).toMatch(new RegExp(`deployed stamp version 1 .*built in [\\d.]+s on ${first}`));
  const v = (await http<Version>('GET', `${url}/functions/stamp?version=1`)).body;
  expect(v.build).toMatchObject({ state: 'ready', node: first });
  built = stampOf(v.build?.log) ?? '';
  expect(built).toMatch(/^[0-9a-f]{16}$/);
  const call = await http<string>('POST', `${url}/function/stamp`, {});
  expect(call.status).toBe(200);
  expect(String(call.body).trim()).toBe(`stamp=${built}`); // the step did not run again for the call
});

it('answers a curl deploy when the build has ended, and holds calls made meanwhile until it is ready', async () => {
  await runtime('slow-step', `sleep 3 && ${STAMP_STEP}`);
  const archive = await packFiles({ 'main.py': main });
  const r = await upload<Version>(`${url}/registerFunction/slow-step/slow?wait=false`, archive, 'slow.tar.gz');
  expect(r.status).toBe(201);
  expect(r.body.build?.state).toBe('building');
  // Made while the step runs: it waits in the API and then runs on the built tree.
  const call = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'slow', params: {}, wait: true });
  expect(call.body.status, JSON.stringify(call.body)).toBe('DONE');
  const v = (await http<Version>('GET', `${url}/functions/slow`)).body;
  expect(v.build?.state).toBe('ready');
  expect(call.body.result.trim()).toBe(`stamp=${stampOf(v.build?.log)}`);
  // Waiting (the default), a deploy answers with the build ended.
  const again = await upload<Version>(`${url}/registerFunction/slow-step/slow`, archive, 'slow.tar.gz');
  expect(again.status).toBe(201);
  expect(again.body).toMatchObject({ version: 2, build: { state: 'ready' } });
});

it("reports a failing step in the tool's own words: at deploy (non-zero exit, its log), and in every call", async () => {
  await runtime('broken', 'echo "npm ERR! 404 left-pad is not in this registry" && exit 3');
  const r = await deploy('broken', await folder({ 'main.py': main }), 'broken');
  expect(r.code).toBe(1);
  const said = r.notes.join('\n');
  expect(said).toMatch(/npm ERR! 404 left-pad is not in this registry/); // the build's log
  expect(said).toMatch(/its build failed .*dependencies step failed \(exit 3\): npm ERR! 404 left-pad/);
  expect(said).not.toMatch(/TAR_BAD_ARCHIVE/);
  // The REST form: 422 saying the same.
  const curl = await upload<{ error: string }>(`${url}/registerFunction/broken/broken`, await packFiles({ 'main.py': main }), 'b.tar.gz');
  expect(curl.status).toBe(422);
  expect(curl.body.error).toMatch(/dependencies step failed \(exit 3\): npm ERR! 404 left-pad/);
  // Its calls end at once in ERROR, the function at fault, saying what failed.
  const call = await http<CallView & { fault?: string }>('POST', `${url}/invokeFunction`, { funcName: 'broken', params: {}, wait: true });
  expect(call.body).toMatchObject({ status: 'ERROR', fault: 'function' });
  expect(call.body.error).toMatch(/cannot run: its build failed at deploy: dependencies step failed \(exit 3\): npm ERR! 404 left-pad/);
  const web = await http<{ error: string }>('POST', `${url}/function/broken`, {});
  expect(web.status).toBe(500);
  expect(web.body.error).toMatch(/npm ERR! 404 left-pad/);
});

it("says what pip said when a function's requirements cannot be fetched (its containers reach no registry)", async () => {
  const files = { 'main.py': 'def main(params):\n    return 1\n', 'requirements.txt': 'requests\n' };
  const r = await upload<{ error: string }>(`${url}/registerFunction/python/offline`, await packFiles(files), 'offline.tar.gz');
  expect(r.status).toBe(422);
  expect(r.body.error).toMatch(/dependencies step failed \(exit 1\): .*No matching distribution found for requests/s);
  expect(r.body.error).not.toMatch(/TAR_BAD_ARCHIVE|could not be unpacked/);
  const v = (await http<Version>('GET', `${url}/functions/offline`)).body;
  expect(v.build?.state).toBe('failed');
  expect(v.build?.log).toMatch(/Could not find a version that satisfies the requirement requests/);
});

it('runs a built version on a node that joined later, with an empty data folder, without building it again', async () => {
  await nodes[first]!.stop();
  delete nodes[first];
  nodes[second] = instanceProc({ broker: brokerAddr, db: dbAddr, data, id: second, miniworkers: 1, policy: 'none' });
  await waitFor('the second node alone', async () => {
    const list = (await http<{ id: string; state: string }[]>('GET', `${url}/nodes`)).body;
    return list.some((n) => n.id === second && n.state === 'alive') && !list.some((n) => n.id === first && n.state === 'alive')
      ? true
      : undefined;
  });
  const call = await http<CallView>('POST', `${url}/invokeFunction`, { funcName: 'stamp', params: {}, wait: true });
  expect(call.body).toMatchObject({ status: 'DONE', node: second });
  expect(call.body.result.trim()).toBe(`stamp=${built}`);
});
