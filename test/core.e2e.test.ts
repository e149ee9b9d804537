// Issue 2 end to end: `zfaas up` against the real Docker engine, ZeroMQ and LevelDB on disk.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles, pyArchive } from './helpers/archives.js';
import { http, labelledContainers, ROOT, startUp, upload, waitCall, type CallView, type Platform } from './helpers/platform.js';

let p: Platform;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2']);
});

afterAll(async () => {
  const node = p ? await p.nodeId().catch(() => '') : '';
  await p?.stop();
  // Ctrl-C (here SIGTERM) must leave none of this node's containers behind.
  if (node) expect(await labelledContainers({ 'zfaas.node': node })).toEqual([]);
});

describe('the seed session (seeds/004) verbatim', () => {
  it('registers the runtime as the seed writes it, runs dice and answers DONE with four dice', async () => {
    const rt = await http('POST', `${p.api}/registerRuntime`, {
      image: 'pythonruntime',
      path: '/ws',
      dependencies: 'pip3 install -r requirements.txt',
      run: 'python3 test.py',
    });
    expect(rt.status).toBe(201);
    expect((await http<string[]>('GET', `${p.api}/runtimes`)).body).toContain('pythonruntime');

    const dice = await readFile(join(ROOT, 'runtimes/python/dice/python.tar.gz'));
    const fn = await upload<{ functionName: string; version: number }>(
      `${p.api}/registerFunction/pythonruntime/dice`,
      dice,
      'python.tar.gz',
    );
    expect(fn.status).toBe(201);
    expect(fn.body.version).toBe(1);
    expect((await http<string[]>('GET', `${p.api}/functions`)).body).toEqual(['dice']);

    const inv = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'dice', params: { roll: '4d6' } });
    expect(inv.status).toBe(202);
    expect(inv.body).toMatchObject({ funcName: 'dice', callNum: 1, status: 'PENDING', result: '' });

    // The call store answers in the seed's shape: {"c1": {...}}.
    const store = await http<Record<string, CallView>>('GET', `${p.api}/calls`);
    expect(store.body.c1).toMatchObject({ funcName: 'dice', callNum: 1 });

    const done = await waitCall(p.api, 1);
    expect(done.status).toBe('DONE');
    const rolls = JSON.parse(done.result) as number[];
    expect(rolls).toHaveLength(4);
    for (const r of rolls) expect(r >= 1 && r <= 6 && Number.isInteger(r)).toBe(true);
    expect(done.node).toBe(await p.nodeId());
  });
});

describe('node functions and the blocking forms', () => {
  beforeAll(async () => {
    const hello = await packFiles({
      'index.js': await readFile(join(ROOT, 'examples/hello-node/index.js'), 'utf8'),
      'package.json': await readFile(join(ROOT, 'examples/hello-node/package.json'), 'utf8'),
    });
    expect((await upload(`${p.api}/registerFunction/node/hello`, hello, 'hello.tar.gz')).status).toBe(201);
  });

  it('POST /function/:name answers with the result itself', async () => {
    const r = await http('POST', `${p.api}/function/hello`, { name: 'ana' });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ hello: 'ana' });
    expect(Number(r.headers.get('x-zfaas-call'))).toBeGreaterThan(0);
  });

  it('invokeFunction with wait answers with the finished call', async () => {
    const r = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'hello', params: { name: 'bo' }, wait: true });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('DONE');
    expect(JSON.parse(r.body.result)).toEqual({ hello: 'bo' });
  });

  it('waits in bounded rounds: wait: N on invokeFunction, and GET /call/N?wait=S until the call ends', async () => {
    const slow = await packFiles({ 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r({ slept: p.ms }), p.ms));' });
    expect((await upload(`${p.api}/registerFunction/node/slowpoke`, slow, 'slowpoke.tar.gz', { timeout: '20' })).status).toBe(201);
    // wait: 1 gives up after a second: 202 and the call as it stands.
    const first = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: 'slowpoke', params: { ms: 4000 }, wait: 1 });
    expect(first.status).toBe(202);
    expect(['PENDING', 'RUNNING']).toContain(first.body.status);
    const n = first.body.callNum;
    const round = await http<CallView>('GET', `${p.api}/call/${n}?wait=1`);
    expect(round.status).toBe(202);
    // Left: the function's 20 s timeout and a minute, from when the call was accepted.
    expect(Number(round.headers.get('x-zfaas-wait-left'))).toBeGreaterThan(70);
    const done = await http<CallView>('GET', `${p.api}/call/${n}?wait=30`);
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('DONE');
    expect(JSON.parse(done.body.result)).toEqual({ slept: 4000 });
    // A finished call answers at once; a bad wait is refused.
    expect((await http('GET', `${p.api}/call/${n}?wait=300`)).status).toBe(200);
    for (const bad of ['0', '301', 'abc', '-1']) expect((await http('GET', `${p.api}/call/${n}?wait=${bad}`)).status).toBe(400);
    expect((await http('POST', `${p.api}/invokeFunction`, { funcName: 'slowpoke', params: { ms: 1 }, wait: 0 })).status).toBe(400);
  });

  it('runs at most `concurrency` calls of a function at once; the others wait, then run', async () => {
    const slow = await packFiles({ 'index.js': 'module.exports = (p) => new Promise((r) => setTimeout(() => r(p.i), 400));' });
    expect((await upload(`${p.api}/registerFunction/node/onebyone`, slow, 'onebyone.tar.gz', { concurrency: '1' })).status).toBe(201);
    expect((await http<{ settings: { concurrency?: number } }>('GET', `${p.api}/functions/onebyone`)).body.settings.concurrency).toBe(1);
    const answers = await Promise.all([0, 1, 2, 3].map((i) => http<number>('POST', `${p.api}/function/onebyone`, { i })));
    expect(answers.map((a) => a.body)).toEqual([0, 1, 2, 3]);
    const runs = await Promise.all(answers.map((a) => waitCall(p.api, Number(a.headers.get('x-zfaas-call')))));
    const spans = runs.map((c) => [Date.parse(c.startedAt!), Date.parse(c.finishedAt!)] as const).sort((x, y) => x[0] - y[0]);
    // One after another: each started only after the one before had finished.
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect((await upload(`${p.api}/registerFunction/node/onebyone`, slow, 'onebyone.tar.gz', { concurrency: '0' })).status).toBe(400);
  });

  it('a zip archive deploys too', async () => {
    const zip = await pyArchive('zip', `f('index.js', b'module.exports = (p) => ({ sum: p.a + p.b });')`);
    expect((await upload(`${p.api}/registerFunction/node/adder`, zip, 'adder.zip')).status).toBe(201);
    const r = await http('POST', `${p.api}/function/adder`, { a: 2, b: 40 });
    expect(r.body).toEqual({ sum: 42 });
  });
});

describe('ERROR and TIMEOUT', () => {
  beforeAll(async () => {
    const bad = await packFiles({
      'index.js': `module.exports = (p) => {
        if (p.sleep) return new Promise((r) => setTimeout(r, p.sleep));
        throw new Error('boom ' + p.x);
      };`,
    });
    expect((await upload(`${p.api}/registerFunction/node/bad`, bad, 'bad.tar.gz', { timeout: '5' })).status).toBe(201);
  });

  it('a throwing function ends in ERROR with its error text', async () => {
    const r = await http<{ error: string; status: string; callNum: number }>('POST', `${p.api}/function/bad`, { x: 7 });
    expect(r.status).toBe(500);
    expect(r.body.status).toBe('ERROR');
    expect(r.body.error).toContain('boom 7');
    const c = await waitCall(p.api, r.body.callNum);
    expect(c.status).toBe('ERROR');
    expect(c.error).toContain('boom 7');
  });

  it('a function past its timeout ends in TIMEOUT and its container is gone', async () => {
    const r = await http<{ status: string; callNum: number }>('POST', `${p.api}/function/bad`, { sleep: 60_000 });
    expect(r.status).toBe(504);
    expect(r.body.status).toBe('TIMEOUT');
    expect((await waitCall(p.api, r.body.callNum)).status).toBe('TIMEOUT');
    expect(await labelledContainers({ 'zfaas.call': String(r.body.callNum) })).toEqual([]);
  });

  it('a seed-style run command that exits non-zero is ERROR with the end of stderr', async () => {
    expect(
      (
        await http('POST', `${p.api}/registerRuntime`, {
          name: 'sh',
          image: 'zfaas/python:latest',
          path: '/ws',
          dependencies: '',
          run: 'sh fail.sh',
        })
      ).status,
    ).toBe(201);
    const arc = await packFiles({ 'fail.sh': 'echo partial; echo "went wrong here" >&2; exit 3\n' });
    expect((await upload(`${p.api}/registerFunction/sh/fails`, arc, 'fails.tar.gz')).status).toBe(201);
    const r = await http<CallView>('POST', `${p.api}/invokeFunction?wait=true`, { funcName: 'fails', params: {} });
    expect(r.body.status).toBe('ERROR');
    expect(r.body.error).toContain('went wrong here');
  });
});

describe('the container is a sandbox', () => {
  it('runs as non-root, without network, with memory and process limits, seeing only its tree', async () => {
    const probe = await packFiles({
      'index.js': `const fs = require('fs'), os = require('os');
        const read1 = (f) => { try { return fs.readFileSync(f, 'utf8').trim(); } catch (e) { return 'ERR ' + e.code; } };
        // cgroup v2 first, then v1 (this machine's engine uses v1)
        const read = (f) => { const v = read1(f); return v.startsWith('ERR') ? read1(f.replace('/cgroup/memory.max', '/cgroup/memory/memory.limit_in_bytes').replace('/cgroup/pids.max', '/cgroup/pids/pids.max')) : v; };
        module.exports = () => ({
          uid: process.getuid(),
          ifaces: Object.keys(os.networkInterfaces()).sort(),
          mem: read('/sys/fs/cgroup/memory.max'),
          pids: read('/sys/fs/cgroup/pids.max'),
          canWriteTree: (() => { try { fs.writeFileSync(__dirname + '/x', 'x'); return true; } catch { return false; } })(),
          mounts: read('/proc/self/mounts').split('\\n').map((l) => l.split(' ')[1] + ' ' + (l.split(' ')[3] || '').split(',')[0]),
          line: (() => { try { return fs.readdirSync('/run/zfaas'); } catch (e) { return 'ERR ' + e.code; } })(),
          canWriteLine: (() => { try { fs.writeFileSync('/run/zfaas/x', 'x'); return true; } catch { return false; } })(),
        });`,
    });
    expect((await upload(`${p.api}/registerFunction/node/probe`, probe, 'probe.tar.gz', { memory: '128', pids: '64' })).status).toBe(201);
    const r = await http<{
      uid: number;
      ifaces: string[];
      mem: string;
      pids: string;
      canWriteTree: boolean;
      mounts: string[];
      line: string[];
      canWriteLine: boolean;
    }>('POST', `${p.api}/function/probe`, {});
    expect(r.status).toBe(200);
    expect(r.body.uid).not.toBe(0);
    expect(r.body.ifaces).toEqual(['lo']);
    expect(r.body.mem).toBe(String(128 * 1024 * 1024));
    expect(r.body.pids).toBe('64');
    expect(r.body.canWriteTree).toBe(false);
    // No host folder is mounted except the function's tree and, in a warm container, the folder that held
    // only the node's socket for its loader; both read-only (besides Docker's own /etc files and init).
    const binds = r.body.mounts.filter(
      (m) =>
        !/^\/(proc|sys|dev|tmp|var\/zfaas\/secrets|etc\/(hosts|hostname|resolv\.conf)|usr\/sbin\/docker-init)(\/| |$)/.test(m) &&
        !m.startsWith('/ '),
    );
    expect(binds.sort()).toEqual(['/run/zfaas ro', '/ws ro']);
    expect(r.body.line).toEqual([]); // its socket is gone once the loader has dialled in
    expect(r.body.canWriteLine).toBe(false);
  });
});

describe('refused input', () => {
  const hostile: [string, 'tar' | 'zip', string][] = [
    ['an absolute path', 'tar', `f('/etc/evil', b'x')`],
    ['a .. path', 'tar', `f('../evil', b'x')`],
    ['a link leading outside', 'tar', `sym('link', '../../etc/passwd')`],
    ['an absolute link', 'tar', `sym('link', '/etc/passwd')`],
    ['a zip with ..', 'zip', `f('../../evil', b'x')`],
    ['more than the unpacked size limit', 'tar', `big('huge', 101 * 1024 * 1024)`],
  ];
  for (const [what, kind, body] of hostile) {
    it(`refuses an archive with ${what} with 400 and stores nothing`, async () => {
      const arc = await pyArchive(kind, body);
      const r = await upload<{ error: string }>(`${p.api}/registerFunction/node/evil`, arc, kind === 'zip' ? 'evil.zip' : 'evil.tar.gz');
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(/archive/);
      expect((await http('GET', `${p.api}/functions/evil`)).status).toBe(404);
      expect((await http<string[]>('GET', `${p.api}/functions`)).body).not.toContain('evil');
    });
  }

  it('refuses a file that is not an archive', async () => {
    const r = await upload<{ error: string }>(`${p.api}/registerFunction/node/evil`, Buffer.from('just text'), 'x.txt');
    expect(r.status).toBe(400);
  });

  it('answers 404 with a message for an unknown runtime or function', async () => {
    const arc = await packFiles({ 'index.js': 'module.exports = () => 1;' });
    const r1 = await upload<{ error: string }>(`${p.api}/registerFunction/nosuchruntime/f`, arc, 'f.tar.gz');
    expect(r1.status).toBe(404);
    expect(r1.body.error).toContain('nosuchruntime');
    const r2 = await http<{ error: string }>('POST', `${p.api}/invokeFunction`, { funcName: 'nosuchfn', params: {} });
    expect(r2.status).toBe(404);
    expect(r2.body.error).toContain('nosuchfn');
    expect((await http('POST', `${p.api}/function/nosuchfn`, {})).status).toBe(404);
    expect((await http('GET', `${p.api}/call/99999`)).status).toBe(404);
  });

  it('answers 400 for bad JSON and bad shapes', async () => {
    expect((await http('POST', `${p.api}/invokeFunction`, '{"funcName": ')).status).toBe(400);
    expect((await http('POST', `${p.api}/registerRuntime`, '{nope')).status).toBe(400);
    expect((await http('POST', `${p.api}/registerRuntime`, { image: 42 })).status).toBe(400);
    expect((await http('POST', `${p.api}/invokeFunction`, { params: {} })).status).toBe(400);
    expect((await http('POST', `${p.api}/function/hello`, '{bad')).status).toBe(400);
    expect((await http('GET', `${p.api}/call/abc`)).status).toBe(400);
  });

  it('reads memory=128m as 128 MiB and refuses memory=12x saying what was expected', async () => {
    const arc = await packFiles({ 'index.js': 'module.exports = () => 1;' });
    const ok = await upload<{ settings: { memory: number; timeout: number } }>(
      `${p.api}/registerFunction/node/sized?timeout=1m30s`,
      arc,
      'sized.tar.gz',
      { memory: '128m' },
    );
    expect(ok.status).toBe(201);
    expect(ok.body.settings).toMatchObject({ memory: 128, timeout: 90 });
    const bad = await upload<{ error: string }>(`${p.api}/registerFunction/node/sized`, arc, 'sized.tar.gz', { memory: '12x' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe(
      'invalid function settings: memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"',
    );
    // The refused deploy stored nothing: version 1 is still the only one.
    expect((await http<{ version: number }>('GET', `${p.api}/functions/sized`)).body.version).toBe(1);
  });
});
