// Issue 6 item 3: hostile functions, each run in a per-call container (policy none) and in a warm one
// (policy function), each contained, while a neighbour function keeps answering correctly beside them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import {
  docker,
  http,
  labelledContainers,
  ROOT,
  startUp,
  upload,
  waitCall,
  waitFor,
  type CallView,
  type Platform,
} from './helpers/platform.js';

let p: Platform;
let nodeId: string;

type Policy = 'none' | 'function';
const POLICIES: Policy[] = ['none', 'function'];
const fname = (base: string, policy: Policy): string => `${base}-${policy === 'none' ? 'cold' : 'warm'}`;

const deploy = async (name: string, files: Record<string, string>, fields: Record<string, string>, runtime = 'node'): Promise<void> => {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};
const deployBoth = async (
  base: string,
  files: Record<string, string>,
  fields: Record<string, string> = {},
  runtime = 'node',
): Promise<void> => {
  for (const policy of POLICIES) await deploy(fname(base, policy), files, { ...fields, policy }, runtime);
};
const containersOf = (fn: string): Promise<string[]> => labelledContainers({ 'zfaas.node': nodeId, 'zfaas.function': fn });
const gone = async (id: string): Promise<boolean> =>
  docker
    .getContainer(id)
    .inspect()
    .then(
      () => false,
      () => true,
    );

interface Failed {
  error: string;
  status: string;
  callNum: number;
}

// The neighbour: a warm function whose every answer is checked while an attack runs.
let neighbourCalls = 0;
async function withNeighbour<T>(label: string, attack: () => Promise<T>): Promise<T> {
  let running = true;
  const pending = attack().finally(() => {
    running = false;
  });
  const wrong: string[] = [];
  let calls = 0;
  const loop = (async () => {
    do {
      const n = neighbourCalls++;
      const r = await http<{ twice: number }>('POST', `${p.api}/function/neighbour`, { n });
      calls++;
      if (r.status !== 200 || r.body.twice !== 2 * n) wrong.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    } while (running);
  })();
  const [result] = await Promise.all([pending, loop]);
  expect(wrong).toEqual([]);
  expect(calls).toBeGreaterThan(0);
  console.log(`hostile ${label}: ${JSON.stringify(summary(result))}; the neighbour answered ${calls} calls, all correct`);
  return result;
}

// What each attack call ended as, for the log: status and the start of its error.
function summary(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(summary);
  if (!x || typeof x !== 'object') return x;
  const o = x as { r?: unknown; status?: unknown; body?: unknown };
  if ('r' in o) return summary(o.r);
  if (typeof o.status !== 'number') return '...';
  const error = o.body && typeof o.body === 'object' ? (o.body as { error?: unknown }).error : undefined;
  return typeof error === 'string' ? `${o.status} ${error.slice(0, 90)}` : o.status;
}

// One hostile call per policy, side by side, with the neighbour calling all along.
const attackBoth = (base: string, params: unknown = {}): Promise<{ policy: Policy; r: Awaited<ReturnType<typeof http<Failed>>> }[]> =>
  withNeighbour(base, () =>
    Promise.all(
      POLICIES.map(async (policy) => ({ policy, r: await http<Failed>('POST', `${p.api}/function/${fname(base, policy)}`, params) })),
    ),
  );

// The warm containers of a policy-function function, once the node reports one warm (so a call uses it).
const warmIds = async (base: string): Promise<string[]> => {
  const name = fname(base, 'function');
  return waitFor(`a warm container for ${name}`, async () => {
    const nodes = (await http<{ warm: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body;
    if ((nodes[0]?.warm[`${name}@1`] ?? 0) < 1) return undefined;
    const ids = await containersOf(name);
    return ids.length === 1 ? ids : undefined;
  });
};

beforeAll(async () => {
  p = await startUp(['--miniworkers', '4']);
  nodeId = await p.nodeId();
  await deploy('neighbour', { 'index.js': 'module.exports = (p) => ({ twice: p.n * 2 });' }, { policy: 'function' });
  expect((await http('POST', `${p.api}/function/neighbour`, { n: 21 })).body).toEqual({ twice: 42 });
});

afterAll(async () => {
  await p?.stop();
  if (nodeId) expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
});

describe('hostile functions are contained, and the neighbour keeps answering', () => {
  it('an infinite loop ends in TIMEOUT and its container is gone', async () => {
    await deployBoth('spin', { 'index.js': 'module.exports = () => { for (;;) {} };' }, { timeout: '2', cpus: '0.5' });
    const [warm] = await warmIds('spin');
    for (const { policy, r } of await attackBoth('spin')) {
      expect(r.status, policy).toBe(504);
      expect(r.body.status).toBe('TIMEOUT');
      expect(r.body.error).toMatch(/timeout of 2 s/);
      expect((await waitCall(p.api, r.body.callNum)).status).toBe('TIMEOUT');
      if (policy === 'none') expect(await labelledContainers({ 'zfaas.call': String(r.body.callNum) })).toEqual([]);
    }
    expect(await gone(warm!)).toBe(true);
  });

  it('a memory hog ends in ERROR naming the memory limit (node and python)', async () => {
    await deployBoth(
      'hog',
      { 'index.js': 'module.exports = () => { const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1)); };' },
      { memory: '64', timeout: '30' },
    );
    await deploy(
      'pyhog',
      { 'handler.py': 'def handler(event):\n    a = []\n    while True:\n        a.append(bytearray(b"x" * (1 << 20)))\n' },
      { memory: '64', timeout: '30', policy: 'function' },
      'python',
    );
    const [warm] = await warmIds('hog');
    const [both, py] = await withNeighbour('hog (python)', () =>
      Promise.all([attackBoth('hog'), http<Failed>('POST', `${p.api}/function/pyhog`, {})]),
    );
    for (const { policy, r } of [...both, { policy: 'python' as const, r: py }]) {
      expect(r.status, policy).toBe(500);
      expect(r.body.status).toBe('ERROR');
      expect(r.body.error).toBe('function was killed: it exceeded its memory limit of 64 MiB');
    }
    expect(await gone(warm!)).toBe(true);
  });

  it('a fork bomb is held by the process limit; a warm container it leaves behind is removed', async () => {
    const bomb = `const { spawn } = require('child_process');
const fs = require('fs');
const read = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch { return '?'; } };
module.exports = async () => {
  let refused = 0;
  const bomb = spawn('/bin/sh', ['-c', ':(){ :|:& };:'], { stdio: 'ignore' });
  bomb.on('error', () => refused++);
  for (let i = 0; i < 200; i++) {
    try { spawn('sleep', ['600'], { stdio: 'ignore' }).on('error', () => refused++); } catch { refused++; }
  }
  await new Promise((r) => setTimeout(r, 1500));
  throw new Error('pids ' + read('/sys/fs/cgroup/pids/pids.current') + ' of ' + read('/sys/fs/cgroup/pids/pids.max') + ', ' + refused + ' spawns refused');
};`;
    await deployBoth('forkbomb', { 'index.js': bomb }, { pids: '32', timeout: '15' });
    const [warm] = await warmIds('forkbomb');
    for (const { policy, r } of await attackBoth('forkbomb')) {
      // The bomb starves its own container of CPU too: the call ends in ERROR, or TIMEOUT if it is slower.
      expect([500, 504], policy).toContain(r.status);
      if (r.body.status === 'ERROR') {
        const m = /pids (\d+) of (\d+), (\d+) spawns refused/.exec(r.body.error);
        expect(m, r.body.error).not.toBeNull();
        expect(Number(m![1])).toBeLessThanOrEqual(32);
        expect(m![2]).toBe('32');
        expect(Number(m![3])).toBeGreaterThan(0);
        if (policy === 'function')
          expect((await waitCall(p.api, r.body.callNum)).logs).toMatch(/the call left \d+ processes running; the container was removed/);
      } else expect(r.body.status).toBe('TIMEOUT');
      if (policy === 'none') expect(await labelledContainers({ 'zfaas.call': String(r.body.callNum) })).toEqual([]);
    }
    await waitFor('the warm container left with the bomb removed', async () => ((await gone(warm!)) ? true : undefined), 30_000);
  });

  it('a run-command function (docker exec per call) that leaves a process behind spends its warm container', async () => {
    expect(
      (
        await http('POST', `${p.api}/registerRuntime`, {
          name: 'hostile-sh',
          image: 'zfaas/python:latest',
          path: '/ws',
          dependencies: '',
          run: 'sh main.sh',
        })
      ).status,
    ).toBe(201);
    // With {"daemon": true} it starts a process that outlives the call, detached from the call's output.
    const fn = fname('daemon', 'function');
    await deploy(
      fn,
      { 'main.sh': 'if grep -q daemon; then nohup sleep 600 >/dev/null 2>&1 </dev/null & fi\necho ok\n' },
      { policy: 'function' },
      'hostile-sh',
    );
    const [first] = await warmIds('daemon');
    for (let i = 0; i < 2; i++) expect((await http('POST', `${p.api}/function/${fn}`, {})).body).toBe('ok');
    expect(await containersOf(fn)).toEqual([first]); // calls that leave nothing reuse the container
    const r = await http<string>('POST', `${p.api}/function/${fn}`, { daemon: true });
    expect(r.status).toBe(200);
    expect(r.body).toBe('ok');
    expect((await waitCall(p.api, Number(r.headers.get('x-zfaas-call')))).logs).toMatch(
      /the call left 1 process running; the container was removed/,
    );
    await waitFor('the container left with the daemon removed', async () => ((await gone(first!)) ? true : undefined), 30_000);
    expect((await http('POST', `${p.api}/function/${fn}`, {})).body).toBe('ok'); // in a new container
    expect(await containersOf(fn)).not.toContain(first);
  });

  it('a warm node function that leaves one process behind, right after calls that left none, spends its container', async () => {
    // Calls in quick succession: the loader looks for strays by the container's task count between full
    // looks, so a lone detached child started among quick calls must still be found at its own call.
    const fn = fname('detach', 'function');
    await deploy(
      fn,
      {
        'index.js': `const { spawn } = require('child_process');
module.exports = async (p) => {
  if (p.detach) spawn('sleep', ['600'], { detached: true, stdio: 'ignore' }).unref();
  return { ok: true };
};`,
      },
      { policy: 'function' },
    );
    const [first] = await warmIds('detach');
    for (let i = 0; i < 20; i++) expect((await http('POST', `${p.api}/function/${fn}`, {})).body).toEqual({ ok: true });
    expect(await containersOf(fn)).toEqual([first]);
    const r = await http('POST', `${p.api}/function/${fn}`, { detach: true });
    expect(r.body).toEqual({ ok: true });
    expect((await waitCall(p.api, Number(r.headers.get('x-zfaas-call')))).logs).toMatch(
      /the call left 1 process running; the container was removed/,
    );
    await waitFor('the container left with the child removed', async () => ((await gone(first!)) ? true : undefined), 30_000);
  });

  it('a disk filler runs out of its bounded /tmp and /dev/shm; nothing else is writable', async () => {
    const filler = `const fs = require('fs');
module.exports = () => {
  const out = {};
  for (const dir of ['/tmp', '/dev/shm', '/ws', '/', '/var/tmp', '/home']) {
    let mib = 0, code = 'none';
    const b = Buffer.alloc(1 << 20, 7);
    try {
      const fd = fs.openSync(dir + '/fill', 'w');
      try { for (; mib < 2048; mib++) fs.writeSync(fd, b); } finally { fs.closeSync(fd); }
    } catch (e) { code = e.code; }
    try { fs.unlinkSync(dir + '/fill'); } catch {}
    out[dir] = { mib, code };
  }
  if (Object.values(out).every((o) => o.code !== 'none')) throw new Error('disk full: ' + JSON.stringify(out));
  return out;
};`;
    await deployBoth('filler', { 'index.js': filler }, { memory: '256' });
    await warmIds('filler');
    for (const { policy, r } of await attackBoth('filler')) {
      expect(r.status, policy).toBe(500);
      const json = /disk full: (\{.*\})/.exec(r.body.error)?.[1];
      expect(json, r.body.error).toBeDefined();
      const seen = JSON.parse(json!) as Record<string, { mib: number; code: string }>;
      expect(seen['/tmp']).toEqual({ mib: 64, code: 'ENOSPC' });
      expect(seen['/dev/shm']).toEqual({ mib: 64, code: 'ENOSPC' });
      for (const dir of ['/ws', '/', '/var/tmp', '/home']) expect(seen[dir], dir).toEqual({ mib: 0, code: 'EROFS' });
    }
  });

  it('has no network unless the function allows it (no traffic is sent)', async () => {
    const probe = `const net = require('net'), os = require('os'), dns = require('dns');
const connect = (host, port) => new Promise((res) => {
  const s = net.connect({ host, port });
  s.setTimeout(5000, () => { s.destroy(); res('TIMEOUT'); });
  s.on('connect', () => { s.destroy(); res('CONNECTED'); });
  s.on('error', (e) => res(e.code));
});
module.exports = async (p) => ({
  ifaces: Object.keys(os.networkInterfaces()).sort(),
  // TEST-NET-1 (never routed): with no interface but lo the kernel refuses it before any packet exists.
  outside: p.connect ? await connect('192.0.2.1', 80) : 'not tried',
  // the API's port on the host: loopback in here is the container's own
  hostApi: p.connect ? await connect('127.0.0.1', p.port) : 'not tried',
  dns: p.connect ? await new Promise((r) => dns.lookup('example.com', (e) => r(e ? e.code : 'RESOLVED'))) : 'not tried',
});`;
    await deployBoth('net', { 'index.js': probe });
    await warmIds('net');
    await deploy('net-allowed', { 'index.js': probe }, { network: 'true', policy: 'none' });
    const [cold, warm, allowed] = await withNeighbour('network', () =>
      Promise.all([
        http('POST', `${p.api}/function/${fname('net', 'none')}`, { connect: true, port: p.port }),
        http('POST', `${p.api}/function/${fname('net', 'function')}`, { connect: true, port: p.port }),
        // network=true: only the interfaces are looked at; nothing is sent anywhere
        http<{ ifaces: string[] }>('POST', `${p.api}/function/net-allowed`, {}),
      ]),
    );
    for (const r of [cold, warm]) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ ifaces: ['lo'], outside: 'ENETUNREACH', hostApi: 'ECONNREFUSED', dns: 'EAI_AGAIN' });
    }
    expect(allowed.status).toBe(200);
    expect(allowed.body.ifaces).toContain('lo');
    expect(allowed.body.ifaces.length).toBeGreaterThan(1);
  });

  it('cannot see the Docker socket or host files, has no privileges, and cannot write outside /tmp', async () => {
    const probe = `const fs = require('fs');
const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
module.exports = (p) => ({
  sockets: ['/var/run/docker.sock', '/run/docker.sock', '/var/run/docker', '/run/containerd/containerd.sock'].filter((f) => fs.existsSync(f)),
  hostPaths: p.hostPaths.filter((f) => fs.existsSync(f)),
  shadow: attempt(() => fs.readFileSync('/etc/shadow')),
  writes: ['/ws/index.js', '/ws/new.js', '/opt/zfaas/loader.js', '/etc/passwd', '/usr/bin/evil', '/root/x', '/proc/sys/kernel/hostname', '/sys/fs/cgroup/pids/pids.max']
    .map((f) => f + ' ' + attempt(() => fs.writeFileSync(f, 'x'))),
  mkdirTree: attempt(() => fs.mkdirSync('/ws/sub')),
  chmodTree: attempt(() => fs.chmodSync('/ws/index.js', 0o777)),
  status: fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => /^(Uid|CapEff|CapPrm|CapBnd|NoNewPrivs):/.test(l)).map((l) => l.replace(/\\s+/g, ' ')),
  logDriver: 'see docker inspect',
});`;
    await deployBoth('snoop', { 'index.js': probe });
    const [id] = await warmIds('snoop');
    const hostPaths = [p.data, ROOT, `${ROOT}/package.json`, '/work', '/root/.ssh', '/etc/docker', '/var/lib/docker'];
    const answers = await withNeighbour('snoop', () =>
      Promise.all(
        POLICIES.map((policy) => http<Record<string, unknown>>('POST', `${p.api}/function/${fname('snoop', policy)}`, { hostPaths })),
      ),
    );
    expect(answers).toHaveLength(2);
    for (const r of answers) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual({
        sockets: [],
        hostPaths: [],
        shadow: 'EACCES',
        writes: [
          '/ws/index.js EROFS',
          '/ws/new.js EROFS',
          '/opt/zfaas/loader.js EROFS',
          '/etc/passwd EROFS',
          '/usr/bin/evil EROFS',
          '/root/x EACCES',
          '/proc/sys/kernel/hostname EROFS',
          '/sys/fs/cgroup/pids/pids.max EROFS',
        ],
        mkdirTree: 'EROFS',
        chmodTree: 'EROFS',
        status: [
          'Uid: 1000 1000 1000 1000',
          'CapPrm: 0000000000000000',
          'CapEff: 0000000000000000',
          'CapBnd: 0000000000000000',
          'NoNewPrivs: 1',
        ],
        logDriver: 'see docker inspect',
      });
    }
    // The warm container keeps no log of what the function prints on the host (json-file would).
    const info = await docker.getContainer(id!).inspect();
    expect(info.HostConfig.LogConfig?.Type).toBe('none');
  });

  it('output of gigabytes is cut with a clear mark, and a function writing past 16 MiB is stopped', async () => {
    const TRUNC = '\n[zfaas: output truncated]';
    const STOPPED = 'function wrote more than 16 MiB of output and was stopped';
    const MiB = 1024 * 1024;
    // A seed-style runtime: what `run` prints is the result. 10 MiB is cut at 6 MiB; 1 GiB is stopped.
    expect(
      (
        await http('POST', `${p.api}/registerRuntime`, {
          name: 'hostile-py',
          image: 'zfaas/python:latest',
          path: '/ws',
          dependencies: '',
          run: 'python3 flood.py',
        })
      ).status,
    ).toBe(201);
    await deploy(
      'stdout-flood',
      {
        'flood.py': 'import json, os, sys\nn = json.load(sys.stdin)["mib"]\nb = b"x" * (1 << 20)\nfor _ in range(n):\n    os.write(1, b)\n',
      },
      { policy: 'none', timeout: '60' },
      'hostile-py',
    );
    // Node: prints through console (captured by the warm loader), writes to fd 2 itself, or returns 40 MiB.
    await deployBoth(
      'flood',
      {
        'index.js': `const fs = require('fs');
module.exports = (p) => {
  const mib = 'x'.repeat(1 << 20);
  if (p.print) { for (let i = 0; i < p.print; i++) process.stdout.write(mib); return 'printed'; }
  // fd 2 itself, below the loader's capture (a non-blocking pipe: a determined writer retries)
  if (p.fd) { const b = Buffer.from(mib); let left = p.fd * b.length; while (left > 0) { try { left -= fs.writeSync(2, b, 0, Math.min(b.length, left)); } catch (e) { if (e.code !== 'EAGAIN') throw e; } } return 'wrote'; }
  return 'y'.repeat(p.ret * (1 << 20));
};`,
      },
      { timeout: '60' },
    );
    // Python, warm: a 40 MiB return value, or 1 GiB written by a child process below the loader's capture.
    await deploy(
      'pyflood',
      {
        'handler.py':
          'import os\ndef handler(e):\n    if e.get("fd"):\n        os.system("head -c 1073741824 /dev/zero")\n        return "wrote"\n    return "z" * (40 << 20)\n',
      },
      { policy: 'function', timeout: '60' },
      'python',
    );
    await warmIds('flood');

    const post = (fn: string, params: unknown): Promise<Awaited<ReturnType<typeof http<string>>>> =>
      http<string>('POST', `${p.api}/function/${fn}`, params);
    const [seedCut, seedGiB, printCold, printWarm, fdWarm, retCold, retWarm, pyRet, pyFd] = await withNeighbour('output floods', () =>
      Promise.all([
        post('stdout-flood', { mib: 10 }),
        post('stdout-flood', { mib: 1024 }),
        post('flood-cold', { print: 1024 }),
        post('flood-warm', { print: 1024 }),
        post('flood-warm', { fd: 1024 }),
        post('flood-cold', { ret: 40 }),
        post('flood-warm', { ret: 40 }),
        post('pyflood', {}),
        post('pyflood', { fd: true }),
      ]),
    );
    const call = (r: { headers: Headers }): Promise<CallView> => waitCall(p.api, Number(r.headers.get('x-zfaas-call')));
    // Cut at 6 MiB, with the mark.
    expect(seedCut.status).toBe(200);
    expect(seedCut.body).toBe('x'.repeat(6 * MiB) + TRUNC);
    for (const [r, ch] of [
      [retCold, 'y'],
      [retWarm, 'y'],
      [pyRet, 'z'],
    ] as const) {
      expect(r.status).toBe(200);
      expect(r.body.length).toBe(6 * MiB + TRUNC.length);
      expect(r.body.endsWith(TRUNC)).toBe(true);
      expect(r.body.startsWith(ch.repeat(1000))).toBe(true);
    }
    // Warm prints are captured in the function's own process: 1 GiB of them is a DONE call with its logs' end.
    expect(printWarm.status).toBe(200);
    expect(printWarm.body).toBe('printed');
    const warmLogs = (await call(printWarm)).logs!;
    expect(warmLogs).toMatch(/^\[\.\.\. \d+ characters of logs truncated \.\.\.\]\n/);
    expect(warmLogs.length).toBeLessThan(70 * 1024);
    // Everything that leaves the container as a stream stops at 16 MiB: ERROR, the kept output marked.
    for (const [what, r] of [
      ['seed 1 GiB', seedGiB],
      ['cold print', printCold],
      ['warm fd', fdWarm],
      ['python fd', pyFd],
    ] as const) {
      expect(r.status, what).toBe(500);
      expect((r.body as unknown as Failed).error).toBe(STOPPED);
    }
    expect((await call(seedGiB)).result).toBe('x'.repeat(6 * MiB) + TRUNC);
    const coldLogs = (await call(printCold)).logs!;
    expect(coldLogs.startsWith('[zfaas: earlier output truncated]\n')).toBe(true);
    expect(coldLogs.length).toBeLessThan(70 * 1024);
    // The platform's own memory stayed bounded through all of it.
    expect(await rssMiB(p.proc.child.pid!)).toBeLessThan(1024);
  });

  it('every call ended in a final state, and every neighbour call was DONE', async () => {
    const calls = (await http<CallView[]>('GET', `${p.api}/calls?format=list&limit=1000`)).body;
    expect(calls.length).toBeGreaterThan(20);
    expect(calls.filter((c) => !['DONE', 'ERROR', 'TIMEOUT'].includes(c.status))).toEqual([]);
    expect(calls.filter((c) => c.funcName === 'neighbour' && c.status !== 'DONE')).toEqual([]);
  });
});

/** Resident memory of a process and all its descendants (the up process and its miniworkers), in MiB. */
async function rssMiB(root: number): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises');
  const procs = new Map<number, { ppid: number; rss: number }>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = await readFile(`/proc/${name}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      procs.set(Number(name), { ppid, rss });
    } catch {
      /* gone */
    }
  }
  const inTree = (pid: number): boolean => {
    for (let cur = pid, hops = 0; cur > 1 && hops < 64; hops++) {
      if (cur === root) return true;
      cur = procs.get(cur)?.ppid ?? 0;
    }
    return false;
  };
  let kib = 0;
  for (const [pid, { rss }] of procs) if (inTree(pid)) kib += rss;
  return kib / 1024;
}
