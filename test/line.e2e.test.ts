// The warm path as a user meets it, against the real Docker engine: out of the box a function's second
// call is warm, every call sees its own environment (warm or redundant), a loader that breaks the protocol
// costs its call and its container and nothing else, and stopping zfaas in the middle of a dependencies
// step leaves no container behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, labelledContainers, startUp, upload, waitFor, type CallView, type Platform } from './helpers/platform.js';

let p: Platform;
let nodeId: string;

const deploy = async (p: Platform, name: string, files: Record<string, string>, fields: Record<string, string> = {}, runtime = 'node') => {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};
const node = async (): Promise<{ warm: Record<string, number> }> =>
  (await http<{ warm: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body[0]!;
const invoke = async (name: string, params: unknown = {}, extra: Record<string, unknown> = {}): Promise<CallView> =>
  (await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: name, params, wait: true, ...extra })).body;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2']); // no --policy: the default
  nodeId = await p.nodeId();
});

afterAll(async () => {
  await p?.stop();
  if (nodeId) expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
});

describe('out of the box', () => {
  it("serves a function's second call warm: the same process, no new container", async () => {
    const nodes = (await http<{ policy: string }[]>('GET', `${p.api}/nodes`)).body;
    expect(nodes[0]!.policy).toBe('runtime');
    await deploy(p, 'hello', { 'index.js': 'let n = 0; module.exports = () => ({ n: ++n, pid: process.pid });' });
    const a = await invoke('hello');
    const b = await invoke('hello');
    expect([a.status, b.status]).toEqual(['DONE', 'DONE']);
    const [ra, rb] = [JSON.parse(a.result), JSON.parse(b.result)] as { n: number; pid: number }[];
    expect(rb!.pid).toBe(ra!.pid);
    expect(rb!.n).toBe(ra!.n + 1);
  });
});

describe('each call has its own environment, warm or cold', () => {
  const envFn = {
    'index.js':
      'let n = 0; module.exports = () => ({ call: process.env.ZFAAS_CALL ?? null, replica: process.env.ZFAAS_REPLICA ?? null, deadline: Number(process.env.ZFAAS_DEADLINE), now: Date.now(), n: ++n });',
  };

  it('a warm container sees ZFAAS_CALL of the call it runs, and a deadline within the timeout', async () => {
    await deploy(p, 'env-warm', envFn, { policy: 'function', timeout: '5s' });
    const a = await invoke('env-warm');
    const b = await invoke('env-warm');
    const [ra, rb] = [JSON.parse(a.result), JSON.parse(b.result)] as {
      call: string;
      replica: string | null;
      deadline: number;
      now: number;
      n: number;
    }[];
    expect(rb!.n).toBe(ra!.n + 1); // warm: the same loader process
    expect(ra!.call).toBe(String(a.callNum));
    expect(rb!.call).toBe(String(b.callNum));
    expect(ra!.replica).toBeNull();
    expect(ra!.deadline).toBeGreaterThan(ra!.now);
    expect(ra!.deadline - ra!.now).toBeLessThanOrEqual(5000);
  });

  it('the same variables reach a cold run (policy none)', async () => {
    await deploy(p, 'env-cold', envFn, { policy: 'none' });
    const a = await invoke('env-cold');
    const r = JSON.parse(a.result) as { call: string; deadline: number };
    expect(r.call).toBe(String(a.callNum));
    expect(r.deadline).toBeGreaterThan(0);
  });

  it('a redundant call under policy function runs twice, each run seeing its ZFAAS_REPLICA, and falls back on the other', async () => {
    await deploy(
      p,
      'env-twice',
      {
        'index.js':
          'module.exports = () => { if (process.env.ZFAAS_REPLICA === "0") throw new Error("replica 0 fails"); return { replica: process.env.ZFAAS_REPLICA, call: process.env.ZFAAS_CALL }; };',
      },
      { policy: 'function' },
    );
    const c = await invoke('env-twice', {}, { redundant: true });
    expect(c.status).toBe('DONE');
    expect(JSON.parse(c.result)).toEqual({ replica: '1', call: String(c.callNum) });
  });
});

describe('a loader that breaks the protocol', () => {
  // The function reaches the loader's own socket (it runs in the loader's process) and writes a reply of
  // its own before the loader answers.
  const forge = (line: string): string =>
    `module.exports = (p) => { if (!p.forge) return "ok"; for (const h of process._getActiveHandles()) { if (h && typeof h.write === 'function' && h !== process.stdout && h !== process.stderr && h !== process.stdin) h.write(${JSON.stringify(line)} + "\\n"); } return new Promise((r) => setTimeout(() => r("done"), 200)); };`;

  const cases: [string, string, RegExp][] = [
    ['a reply to another call', '{"op":"result","id":999999,"ok":true,"result":"forged"}', /out of order/],
    ['a line that is not JSON', 'this is not json', /malformed reply/],
    ['a reply of the wrong shape', '{"op":"result","id":"x","ok":"yes"}', /malformed reply/],
  ];
  for (const [k, [what, line, text]] of cases.entries()) {
    it(`${what}: the call is ERROR saying so, the container is removed, the next call gets a new one`, async () => {
      const name = `forge-${k}`;
      await deploy(p, name, { 'index.js': forge(line) }, { policy: 'function' });
      await waitFor('its preloaded container', async () => ((await node()).warm[`${name}@1`] ?? 0) >= 1 || undefined, 30_000);
      expect((await invoke(name)).status).toBe('DONE');
      const mine = (): Promise<string[]> => labelledContainers({ 'zfaas.node': nodeId, 'zfaas.function': name });
      const before = await mine();
      expect(before.length).toBeGreaterThan(0);
      const bad = await invoke(name, { forge: true });
      expect(bad.status).toBe('ERROR');
      expect(bad.error).toMatch(text);
      expect(bad.error).toMatch(/container was removed/);
      expect(bad.result).not.toContain('forged');
      const after = await invoke(name);
      expect(after.status).toBe('DONE');
      await waitFor(
        'the spent container to go',
        async () => {
          const now = await mine();
          return before.some((id) => !now.includes(id)) || undefined;
        },
        10_000,
      );
    });
  }
});

describe('stopping zfaas in the middle of a dependencies step', () => {
  it('leaves no container behind', async () => {
    const q = await startUp(['--miniworkers', '1']);
    const id = await q.nodeId();
    try {
      const rt = await http('POST', `${q.api}/registerRuntime`, {
        name: 'slowdeps',
        image: 'zfaas/node:latest',
        path: '/ws',
        dependencies: 'sleep 60',
        run: 'node /opt/zfaas/loader.js --once',
      });
      expect(rt.status).toBe(201);
      // The step runs at deploy (the build); the deploy answers at once with wait=false.
      await deploy(q, 'deps', { 'index.js': 'module.exports = () => 1;' }, { wait: 'false' }, 'slowdeps');
      await waitFor(
        'the dependencies step',
        async () => (await labelledContainers({ 'zfaas.node': id, 'zfaas.role': 'dependencies' })).length > 0 || undefined,
        30_000,
      );
    } finally {
      await q.stop();
    }
    expect(await labelledContainers({ 'zfaas.node': id })).toEqual([]);
  });
});
