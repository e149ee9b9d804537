// Issue 3: the preload policies and the warm path, against the real Docker engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, labelledContainers, startUp, upload, waitCall, waitFor, type CallView, type Platform } from './helpers/platform.js';

interface NodeView {
  id: string;
  warm: Record<string, number>;
  stems: Record<string, number>;
  containers: Record<string, number>;
  miniworkers: number;
  settings: { miniworkers: number; stemCells: number; idleTtlMs: number };
}

let p: Platform;
let nodeId: string;

const node = async (): Promise<NodeView> => (await http<NodeView[]>('GET', `${p.api}/nodes`)).body[0]!;
const deploy = async (
  name: string,
  files: Record<string, string>,
  fields: Record<string, string> = {},
  runtime = 'node',
): Promise<void> => {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};
const containersOf = (fn: string): Promise<string[]> => labelledContainers({ 'zfaas.node': nodeId, 'zfaas.function': fn });

beforeAll(async () => {
  // The node keeps stem cells (policy runtime); functions choose `function` or `none` for themselves.
  p = await startUp(['--policy', 'runtime', '--miniworkers', '3']);
  nodeId = await p.nodeId();
});

afterAll(async () => {
  await p?.stop();
  if (nodeId) expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
});

describe('policy function', () => {
  it('starts a container holding the function at deploy, and calls reuse that one process', async () => {
    await deploy(
      'counter',
      { 'index.js': 'let n = 0; module.exports = () => { console.log("call", n + 1); return { n: ++n, pid: process.pid }; };' },
      { policy: 'function' },
    );
    await waitFor('the preloaded container', async () => ((await node()).warm['counter@1'] ?? 0) >= 1 || undefined, 30_000);
    const before = await containersOf('counter');
    expect(before).toHaveLength(1);
    const a = await http<{ n: number; pid: number }>('POST', `${p.api}/function/counter`, {});
    const b = await http<{ n: number; pid: number }>('POST', `${p.api}/function/counter`, {});
    // Same process, state kept between calls: no container and no process was started for the second.
    expect(b.body.pid).toBe(a.body.pid);
    expect(b.body.n).toBe(a.body.n + 1);
    expect(await containersOf('counter')).toEqual(before);
  });

  it("keeps the function's prints as the call's logs, apart from its result", async () => {
    const r = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'counter', params: {}, wait: true });
    expect(r.body.status).toBe('DONE');
    expect(JSON.parse(r.body.result)).toHaveProperty('n');
    expect(r.body.logs).toMatch(/call \d+/);
    expect(r.body.result).not.toContain('call ');
  });

  it('a warm call past its timeout is TIMEOUT, its container is removed, and the next call gets a new one', async () => {
    await deploy(
      'sleepy',
      { 'index.js': 'module.exports = (p) => p.ms ? new Promise((r) => setTimeout(() => r("late"), p.ms)) : "quick";' },
      { policy: 'function', timeout: '1' },
    );
    expect((await http('POST', `${p.api}/function/sleepy`, {})).body).toBe('quick');
    const slow = await http<{ status: string }>('POST', `${p.api}/function/sleepy`, { ms: 20_000 });
    expect(slow.status).toBe(504);
    expect(slow.body.status).toBe('TIMEOUT');
    expect((await http('POST', `${p.api}/function/sleepy`, {})).body).toBe('quick');
  });

  it('a process that dies mid-call (process.exit) is ERROR, and the function recovers', async () => {
    await deploy(
      'quitter',
      { 'index.js': 'module.exports = (p) => { if (p.die) process.exit(7); return "alive"; };' },
      { policy: 'function' },
    );
    const r = await http<{ status: string; error: string }>('POST', `${p.api}/function/quitter`, { die: true });
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/exited/);
    expect((await http('POST', `${p.api}/function/quitter`, {})).body).toBe('alive');
  });

  it('a quick function under more callers than containers: a call behind one whose process dies runs in another, once, even with retry=false', async () => {
    await deploy(
      'quickdie',
      { 'index.js': 'module.exports = (p) => p.die ? new Promise(() => setTimeout(() => process.exit(3), 30)) : { n: p.n };' },
      { policy: 'function', retry: 'false' },
    );
    const call = (params: object) => http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'quickdie', params, wait: true });
    // 16 callers, each call after the one before: enough calls for the node to know the function is quick.
    const callers = async (n: number, die?: number): Promise<CallView[]> => {
      const out: CallView[] = [];
      await Promise.all(
        Array.from({ length: 16 }, async (_, c) => {
          for (let i = 0; i < n; i++) out.push((await call(c === 0 && i === die ? { die: true } : { n: c * 1000 + i })).body);
        }),
      );
      return out;
    };
    await callers(4);
    let behind = false;
    for (let round = 0; round < 3 && !behind; round++) {
      const out = await callers(12, 6);
      const died = out.filter((c) => c.status !== 'DONE');
      expect(
        died.map((c) => [c.status, c.attempts]),
        JSON.stringify(died),
      ).toEqual([['ERROR', 1]]);
      expect(died[0]!.error).toMatch(/exited \(code 3\)/);
      for (const c of out.filter((x) => x.status === 'DONE'))
        expect([c.attempts, JSON.parse(c.result)]).toEqual([1, { n: expect.any(Number) }]);
      expect(new Set(out.map((c) => c.callNum)).size).toBe(out.length);
      // The node says when a call that waited behind the one that died goes back to its queue.
      behind = /before it answered the call ahead/.test(p.proc.output());
    }
    expect(behind).toBe(true);
  });

  it('a warm container has the same sandbox: non-root, no network, memory limit', async () => {
    await deploy(
      'probe',
      {
        'index.js': `const fs = require('fs'), os = require('os');
          const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return null; } };
          module.exports = () => ({ uid: process.getuid(), ifaces: Object.keys(os.networkInterfaces()), mem: read('/sys/fs/cgroup/memory.max') ?? read('/sys/fs/cgroup/memory/memory.limit_in_bytes') });`,
      },
      { policy: 'function', memory: '96' },
    );
    const r = await http<{ uid: number; ifaces: string[]; mem: string }>('POST', `${p.api}/function/probe`, {});
    expect(r.body).toEqual({ uid: 1000, ifaces: ['lo'], mem: String(96 * 1024 * 1024) });
  });
});

describe('policy runtime (stem cells)', () => {
  it('gives a new function a waiting container of its runtime, with the function and its limits put in', async () => {
    // A quiet node: a node stem cell ready and no container starting (whose miniworker would be busy).
    await waitFor(
      'a node stem cell on a quiet node',
      async () => {
        const n = await node();
        return ((n.stems.node ?? 0) >= 1 && (n.containers.starting ?? 0) === 0 && (n.containers.busy ?? 0) === 0) || undefined;
      },
      30_000,
    );
    const stems = await labelledContainers({ 'zfaas.node': nodeId, 'zfaas.role': 'stem' });
    expect(stems.length).toBeGreaterThanOrEqual(1);
    await deploy(
      'adopted',
      {
        'index.js': `module.exports = () => ({ mem: require('fs').readFileSync('/sys/fs/cgroup/memory/memory.limit_in_bytes', 'utf8').trim(), env: process.env.GREETING });`,
      },
      { memory: '128', env: 'GREETING=hola' },
    );
    const r = await http<{ mem: string; env: string }>('POST', `${p.api}/function/adopted`, {});
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ mem: String(128 * 1024 * 1024), env: 'hola' });
    // The call ran in one of the stem cells that were waiting (no container was created for it).
    expect(await containersOf('adopted')).toEqual([]);
    // ...and the pool starts another stem cell to replace it.
    await waitFor('a replacement stem cell', async () => ((await node()).stems.node ?? 0) >= 1 || undefined, 30_000);
  });

  it('a runtime whose stem cells cannot start is tried again later, not at once and forever', async () => {
    // A loader that exits at once: every stem cell of this runtime fails to start.
    expect(
      (
        await http('POST', `${p.api}/registerRuntime`, {
          name: 'brokenloader',
          image: 'zfaas/node:latest',
          path: '/ws',
          run: 'node index.js',
          loader: 'false',
        })
      ).status,
    ).toBe(201);
    await deploy('orphan', { 'index.js': 'module.exports = () => 1;' }, {}, 'brokenloader');
    const failures = (): number =>
      p.proc
        .output()
        .split('\n')
        .filter((l) => l.includes('a stem cell did not start') && l.includes('"runtime":"brokenloader"')).length;
    const before = failures();
    const r = await http<{ status: string }>('POST', `${p.api}/function/orphan`, {});
    expect(r.status).toBe(500); // its call cannot run either: it ends in ERROR
    await waitFor('the first stem cell failure', async () => (failures() > before ? true : undefined), 20_000);
    const first = failures();
    await new Promise((res) => setTimeout(res, 5000));
    // Retried after 1 s, 2 s, 4 s...: at most 3 more attempts in 5 s (at once and forever, there were dozens).
    expect(failures() - first).toBeLessThanOrEqual(3);
    expect(p.proc.output()).toContain('a stem cell did not start; trying again later');
  });

  it('runs a python function with the built-in loader (handler(event))', async () => {
    await deploy(
      'pyhello',
      { 'handler.py': 'def handler(event):\n    print("debug line")\n    return {"hi": event.get("name")}\n' },
      {},
      'python',
    );
    const r = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'pyhello', params: { name: 'zoe' }, wait: true });
    expect(r.body.status).toBe('DONE');
    expect(JSON.parse(r.body.result)).toEqual({ hi: 'zoe' });
    expect(r.body.logs).toContain('debug line');
  });
});

describe('runtimes registered the seed way (a run command) in every policy', () => {
  beforeAll(async () => {
    const rt = await http('POST', `${p.api}/registerRuntime`, {
      name: 'shell',
      image: 'zfaas/python:latest',
      path: '/ws',
      dependencies: '',
      run: 'python3 main.py',
    });
    expect(rt.status).toBe(201);
  });
  for (const policy of ['none', 'runtime', 'function']) {
    it(`policy ${policy}: params on stdin and in ZFAAS_PARAMS, stdout is the result`, async () => {
      const name = `seedstyle-${policy}`;
      await deploy(
        name,
        {
          'main.py':
            'import json, os, sys\np = json.load(sys.stdin)\nprint(json.dumps({"stdin": p, "env": json.loads(os.environ["ZFAAS_PARAMS"])}))\n',
        },
        { policy },
        'shell',
      );
      for (let i = 0; i < 2; i++) {
        const r = await http<{ stdin: unknown; env: unknown }>('POST', `${p.api}/function/${name}`, { i });
        expect(r.status).toBe(200);
        expect(r.body).toEqual({ stdin: { i }, env: { i } });
      }
    });
  }
});

describe('pools change at run time without losing a job', () => {
  it('resizes the miniworkers while calls are in flight, and every call ends DONE', async () => {
    await deploy(
      'work',
      { 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r(p.i * 2), 150));' },
      { policy: 'function' },
    );
    const nums: number[] = [];
    for (let i = 0; i < 24; i++)
      nums.push((await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'work', params: { i } })).body.callNum);
    expect((await http('PUT', `${p.api}/node/${nodeId}`, { miniworkers: 1 })).status).toBe(202);
    await waitFor('one miniworker', async () => (await node()).miniworkers === 1 || undefined, 30_000);
    expect((await http('PUT', `${p.api}/node/${nodeId}`, { miniworkers: 4 })).status).toBe(202);
    for (const [i, n] of nums.entries()) {
      const c = await waitCall(p.api, n);
      expect(c.status).toBe('DONE');
      expect(JSON.parse(c.result)).toBe(i * 2);
    }
    await waitFor('four miniworkers', async () => (await node()).miniworkers === 4 || undefined, 30_000);
  });

  it('removes idle function containers after the idle TTL', async () => {
    await http('POST', `${p.api}/function/counter`, {});
    await waitFor('counter warm', async () => ((await node()).warm['counter@1'] ?? 0) > 0 || undefined, 10_000);
    expect((await http('PUT', `${p.api}/node/${nodeId}`, { idleTtlS: 1 })).status).toBe(202);
    await waitFor('idle containers reaped', async () => ((await node()).warm['counter@1'] ?? 0) === 0 || undefined, 30_000);
    // A call after that still works, in a new container (its count starts again).
    expect((await http<{ n: number }>('POST', `${p.api}/function/counter`, {})).body.n).toBe(1);
    await http('PUT', `${p.api}/node/${nodeId}`, { idleTtlS: 600 });
  });

  it('refuses bad settings and unknown nodes', async () => {
    expect((await http('PUT', `${p.api}/node/${nodeId}`, { miniworkers: 0 })).status).toBe(400);
    expect((await http('PUT', `${p.api}/node/${nodeId}`, { bogus: 1 })).status).toBe(400);
    expect((await http('PUT', `${p.api}/node/nope`, { miniworkers: 2 })).status).toBe(404);
    expect((await fetch(`${p.api}/node/${nodeId}`, { method: 'PUT', body: 'miniworkers=2' })).status).toBe(400);
  });
});
