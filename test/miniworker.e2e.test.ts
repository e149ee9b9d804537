// The miniworker process against the real Docker engine, spoken to over its own protocol (protocol/worker.ts)
// from a ROUTER here, and the miniworkers of a real instance killed with SIGKILL. Cases the stress run found:
// a reply that says a container is gone is true on the engine (an exec container killed under it), a
// remove that comes before its run's container exists still removes it, a shutdown leaves nothing; a killed
// instance's miniworkers are gone within a second and its next start removes what they left.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Router } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionSettingsSchema, type FunctionMeta, type Runtime } from '../common/model.js';
import { decode, encode } from '../protocol/codec.js';
import { FromWorkerSchema, type FromWorker, type ToWorker } from '../protocol/worker.js';
import { childrenOf, running } from './helpers/cluster.js';
import {
  docker,
  freePort,
  instanceProc,
  labelledContainers,
  ROOT,
  sleep,
  tempDir,
  waitFor,
  waitHealthy,
  zfaas,
  type Proc,
} from './helpers/platform.js';

const runtime: Runtime = { name: 'seedpy', image: 'pythonruntime', path: '/ws', dependencies: '', run: 'python3 test.py' };
const fn: FunctionMeta = {
  functionName: 'mw-test',
  runtimeName: 'seedpy',
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: new Date(0).toISOString(),
  settings: FunctionSettingsSchema.parse({ timeout: 10 }),
};

describe('one miniworker, spoken to directly', () => {
  const node = `mwtest-${randomBytes(3).toString('hex')}`;
  const name = `${node}-mw1`;
  let dir: string;
  let router: Router;
  let proc: ChildProcess;
  const inbox: FromWorker[] = [];
  let waiting: (() => void) | undefined;

  const send = (m: ToWorker): Promise<void> => router.send([name, ...encode(m)]);
  const next = async (type: FromWorker['type']): Promise<FromWorker> => {
    for (;;) {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0]!;
      await new Promise<void>((r) => (waiting = r));
    }
  };
  const job = (id: number, callNum: number, params: unknown): Extract<ToWorker, { type: 'run' }>['job'] => ({
    name: `zfaas-${node}-call-${id}`,
    callNum,
    params,
    fn,
    runtime,
    treeDir: dir,
    deadline: Date.now() + 10_000,
  });

  beforeAll(async () => {
    dir = await tempDir('zfaas-mw-');
    await chmod(dir, 0o755); // the function's uid reads it
    await writeFile(join(dir, 'test.py'), 'import json,sys,time\np=json.load(sys.stdin)\ntime.sleep(p.get("s",0))\nprint(json.dumps(p))\n');
    const address = `ipc://${join(tmpdir(), `zfaas-mwtest-${process.pid}.sock`)}`;
    router = new Router({ mandatory: true });
    await router.bind(address);
    void (async () => {
      for await (const [, ...frames] of router) {
        inbox.push(decode(FromWorkerSchema, frames as Buffer[]).msg);
        waiting?.();
      }
    })().catch(() => undefined);
    proc = fork(join(ROOT, 'dist', 'miniworker', 'main.js'), [address, node, name], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await next('ready');
  });

  afterAll(async () => {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    router.close();
    await rm(join(tmpdir(), `zfaas-mwtest-${process.pid}.sock`), { force: true });
    await rm(dir, { recursive: true, force: true });
    for (const id of await labelledContainers({ 'zfaas.node': node })) await docker.getContainer(id).remove({ force: true });
  });

  it('says an exec container killed under it is gone only once the engine no longer has it', async () => {
    const id = `zfaas-${node}-fn-1`;
    await send({ type: 'create', plan: { id, runtime, fn, treeDir: dir } });
    expect(await next('created')).toMatchObject({ id, ok: true });
    await send({ type: 'exec', jobId: 1, id, job: job(1, 1, { a: 1 }) });
    expect(await next('ran')).toMatchObject({ alive: true, outcome: { status: 'DONE', result: '{"a": 1}' } });
    await docker.getContainer(id).kill();
    await sleep(300);
    await send({ type: 'exec', jobId: 2, id, job: job(2, 2, { a: 2 }) });
    expect(await next('ran')).toMatchObject({ alive: false, outcome: { status: 'ERROR' } });
    expect(await labelledContainers({ 'zfaas.node': node })).toEqual([]);
  });

  it("removes a call's fresh container even when the remove comes before the engine made it", async () => {
    const run = job(3, 3, { s: 5 });
    await send({ type: 'run', jobId: 3, job: run });
    await send({ type: 'remove', id: run.name }); // at once: the create is still on its way
    expect(await next('removed')).toMatchObject({ id: run.name });
    // cut short: it would have slept 5 s and answered DONE
    expect(await next('ran')).toMatchObject({ type: 'ran', jobId: 3, outcome: { status: 'ERROR' } });
    expect(await labelledContainers({ 'zfaas.node': node })).toEqual([]);
  });

  it('leaves nothing on the engine after a shutdown in the middle of a job', async () => {
    const id = `zfaas-${node}-fn-2`;
    await send({ type: 'create', plan: { id, runtime, fn, treeDir: dir } });
    expect(await next('created')).toMatchObject({ ok: true });
    await send({ type: 'exec', jobId: 4, id, job: job(4, 4, { s: 30 }) });
    await sleep(500);
    const exited = new Promise((r) => proc.once('exit', r));
    await send({ type: 'shutdown' });
    await exited;
    expect(await labelledContainers({ 'zfaas.node': node })).toEqual([]);
  });
});

describe('a miniworker whose instance died while it was still loading', () => {
  it('exits all the same: it goes by the pid it was given and the state of its IPC channel', async () => {
    // A parent that forks a miniworker (as the instance does) and dies at once, before the child has
    // loaded its modules or set any listener: the child is reparented before it could look.
    const script = `
      const { fork } = require('node:child_process');
      const c = fork(process.argv[1], ['ipc:///nonexistent', 'orphan-node', 'orphan-mw', String(process.pid)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
      console.log(c.pid);
      process.exit(0);`;
    const parent = spawn(process.execPath, ['-e', script, join(ROOT, 'dist', 'miniworker', 'main.js')], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const out = await new Promise<string>((res) => {
      let text = '';
      parent.stdout!.on('data', (b: Buffer) => (text += b.toString()));
      parent.once('exit', () => res(text));
    });
    const child = Number(out.trim());
    expect(Number.isInteger(child) && child > 0).toBe(true);
    await waitFor('the orphaned miniworker to exit', async () => ((await running(child)) ? undefined : true), 5000);
  });
});

describe('an instance killed with SIGKILL', () => {
  let data: string;
  let db: Proc;
  let api: Proc;
  let node: Proc | undefined;
  const id = `kill9-${randomBytes(3).toString('hex')}`;

  let url: string;

  beforeAll(async () => {
    data = await tempDir();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const dbAddr = `tcp://127.0.0.1:${await freePort()}`;
    const broker = `tcp://127.0.0.1:${await freePort()}`;
    db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
    api = zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', broker]);
    const start = (): Proc => instanceProc({ broker, db: dbAddr, data, id, miniworkers: 3, policy: 'runtime' });
    // the API first: it registers the built-in runtimes, of which the node keeps stem cells from its start
    await waitHealthy(`http://127.0.0.1:${port}`, 0, api);
    node = start();
    await waitHealthy(`http://127.0.0.1:${port}`, 1, api);
    // stem cells of the built-in runtimes: containers of this node's miniworkers
    await waitFor('stem cells', async () => ((await labelledContainers({ 'zfaas.node': id })).length >= 2 ? true : undefined), 60_000);
    restart = start;
  });
  let restart: () => Proc;

  afterAll(async () => {
    await node?.stop();
    await Promise.all([api?.stop(), db?.stop()]);
    expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
    await rm(data, { recursive: true, force: true });
  });

  it('takes its miniworkers with it within a second, and its next start removes what they left', async () => {
    const workers = await childrenOf(node!.child.pid!);
    expect(workers.length).toBe(3);
    const left = await labelledContainers({ 'zfaas.node': id });
    node!.child.kill('SIGKILL');
    const t0 = Date.now();
    await waitFor(
      'its miniworkers to exit',
      async () => ((await Promise.all(workers.map(running))).some(Boolean) ? undefined : true),
      5000,
    );
    const gone = Date.now() - t0;
    console.log(`miniworkers gone ${gone} ms after their instance was killed; ${left.length} containers it held`);
    expect(gone).toBeLessThan(1000);
    await node!.stop();
    node = restart();
    await waitFor('what the killed node held to be removed', async () => {
      const now = await labelledContainers({ 'zfaas.node': id });
      return left.every((c) => !now.includes(c)) ? true : undefined;
    });
    await waitHealthy(url, 1, api);
  });

  it("removes, a moment after its start, a container of the node that an earlier life's create made late", async () => {
    // This life's stem cells are made once its first sweep (of everything of the node) is done.
    const stems = await waitFor('stem cells of this life', async () => {
      const now = await labelledContainers({ 'zfaas.node': id });
      return now.length >= 2 ? now : undefined;
    });
    // As the engine finishes a create that a killed life's miniworker sent, after that sweep.
    const late = await docker.createContainer({
      name: `zfaas-${id}-late-${randomBytes(3).toString('hex')}`,
      Image: 'pythonruntime',
      Cmd: ['true'],
      Labels: { zfaas: 'true', 'zfaas.node': id, 'zfaas.miniworker': `${id}-000000-mw1` },
    });
    await waitFor(
      'the late container to be removed',
      async () => ((await labelledContainers({ 'zfaas.node': id })).includes(late.id) ? undefined : true),
      30_000,
    );
    const now = await labelledContainers({ 'zfaas.node': id });
    expect(stems.every((c) => now.includes(c))).toBe(true);
  });
});

describe('an instance told to stop while it is still starting', () => {
  it('stops once it has started, as any stop does: exit 0, its miniworkers gone, nothing of it left on the engine', async () => {
    const data = await tempDir();
    const id = `early-${randomBytes(3).toString('hex')}`;
    // Nothing answers at the DB address: the node's start waits there (until the request fails) after it
    // has started its miniworkers.
    const dbAddr = `tcp://127.0.0.1:${await freePort()}`;
    const broker = `tcp://127.0.0.1:${await freePort()}`;
    const node = instanceProc({ broker, db: dbAddr, data, id, miniworkers: 2, policy: 'runtime' });
    try {
      const workers = await waitFor(
        'its miniworkers',
        async () => {
          const c = await childrenOf(node.child.pid!);
          return c.length >= 2 ? c : undefined;
        },
        30_000,
      );
      expect(node.output()).not.toContain('instance started');
      const exit = new Promise<{ code: number | null; signal: string | null }>((r) =>
        node.child.once('exit', (code, signal) => r({ code, signal })),
      );
      node.child.kill('SIGTERM');
      expect(await exit).toEqual({ code: 0, signal: null });
      expect(node.output()).toContain('SIGTERM received while starting');
      expect((await Promise.all(workers.map(running))).some(Boolean)).toBe(false);
      expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
    } finally {
      await node.stop();
      await rm(data, { recursive: true, force: true });
    }
  });
});
