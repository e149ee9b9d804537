// Secrets given to functions, end to end (`zfaas up`, the real Docker engine): a function that names a
// secret reads it as the file /var/zfaas/secrets/NAME (0400, in a 0500 tmpfs of the function's uid) in node
// and python, under policies function, runtime (a stem cell adopted) and none, and in a runtime without a
// loader (each call a `docker exec`); a new value reaches a warm container on its next call without a
// redeploy; a deleted secret ends the calls in ERROR and takes the containers that held it along; the value
// is in no API answer, no container's `docker inspect`, no process log and no file of the data folder (the
// DB's LevelDB and the instance's); a missing secret is an ERROR that says so; a runtime isolated under a
// Docker runtime this engine does not have (runsc) ends its calls in ERROR with Docker's words.
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import {
  docker,
  http,
  labelledContainers,
  sleep,
  startUp,
  upload,
  waitCall,
  waitFor,
  type CallView,
  type Platform,
} from './helpers/platform.js';

let p: Platform;
let nodeId: string;

// Distinctive values: a test greps for their bytes (and their base64) everywhere they must not be.
const VALUE = `zfaas-secret-${randomBytes(12).toString('hex')}`;
const VALUE2 = `zfaas-secret-v2-${randomBytes(12).toString('hex')}`;
const OTHER = `zfaas-secret-other-${randomBytes(12).toString('hex')}`;
const ALL = [VALUE, VALUE2, OTHER];
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const forms = (v: string): string[] => [v, Buffer.from(v).toString('base64')];

// A function never answers a value (its call record would hold it): it answers its sha256, the file's and
// folder's modes and owner, and whether the value is in its environment.
const NODE_FN = {
  'index.js': `const fs = require('fs');
const crypto = require('crypto');
module.exports = async (p) => {
  const dir = '/var/zfaas/secrets';
  if (p.sleep) await new Promise((r) => setTimeout(r, p.sleep));
  const file = dir + '/' + p.name;
  const v = fs.readFileSync(file, 'utf8');
  const st = fs.statSync(file);
  return {
    sha: crypto.createHash('sha256').update(v).digest('hex'),
    mode: (st.mode & 0o777).toString(8),
    dirMode: (fs.statSync(dir).mode & 0o777).toString(8),
    uid: st.uid,
    inEnv: Object.values(process.env).some((x) => x.includes(v)),
    files: fs.readdirSync(dir).sort(),
    host: require('os').hostname(), // the container's id: which container served the call
  };
};
`,
};
const PY_FN = {
  'handler.py': `import hashlib, json, os, sys, time

def report(name, pause=0):
    d = "/var/zfaas/secrets"
    if pause:
        time.sleep(pause / 1000)
    f = os.path.join(d, name)
    with open(f, "rb") as fh:
        v = fh.read()
    st = os.stat(f)
    return {
        "sha": hashlib.sha256(v).hexdigest(),
        "mode": oct(st.st_mode & 0o777)[2:],
        "dirMode": oct(os.stat(d).st_mode & 0o777)[2:],
        "uid": st.st_uid,
        "inEnv": any(v.decode() in x for x in os.environ.values()),
        "files": sorted(os.listdir(d)),
        "host": os.uname().nodename,
    }

def handler(event):
    return report(event["name"], event.get("sleep", 0))
`,
  // the same, for a runtime without a loader: `python3 main.py` per call, params on stdin
  'main.py': `import json, sys
from handler import report
p = json.loads(sys.stdin.read() or "{}")
print(json.dumps(report(p["name"], p.get("sleep", 0))))
`,
};

interface Report {
  sha: string;
  mode: string;
  dirMode: string;
  uid: number;
  inEnv: boolean;
  files: string[];
  host: string;
}

const deploy = async (runtime: string, name: string, files: Record<string, string>, fields: Record<string, string>): Promise<void> => {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(files), `${name}.tar.gz`, fields);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};
const call = async (name: string, params: unknown): Promise<CallView> => {
  const r = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: name, params });
  expect(r.status, JSON.stringify(r.body)).toBe(202);
  return waitCall(p.api, r.body.callNum);
};
const report = (c: CallView): Report => {
  expect(c.status, `${c.error ?? ''} ${c.result}`).toBe('DONE');
  return JSON.parse(c.result) as Report;
};
const containersOf = (fn: string): Promise<string[]> => labelledContainers({ 'zfaas.node': nodeId, 'zfaas.function': fn });
const callNums: number[] = [];
const checked = async (name: string, params: Record<string, unknown>): Promise<Report> => {
  const c = await call(name, params);
  callNums.push(c.callNum);
  return report(c);
};
// What every function container's `docker inspect` says, as text.
async function inspectAll(): Promise<string> {
  const ids = await labelledContainers({ 'zfaas.node': nodeId });
  const infos = await Promise.all(
    ids.map((id) =>
      docker
        .getContainer(id)
        .inspect()
        .catch(() => null),
    ),
  );
  return JSON.stringify(infos.filter(Boolean));
}
const inspected: string[] = [];

beforeAll(async () => {
  p = await startUp(['--miniworkers', '3']);
  nodeId = await p.nodeId();
  for (const [name, value] of [
    ['db-pass', VALUE],
    ['other', OTHER],
  ]) {
    const r = await http('POST', `${p.api}/secrets`, { name, value });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  const rt = await http('POST', `${p.api}/registerRuntime`, {
    name: 'plainpy',
    image: 'zfaas/python:latest',
    path: '/ws',
    run: 'python3 main.py',
  });
  expect(rt.status, JSON.stringify(rt.body)).toBe(201);
});

afterAll(async () => {
  await p?.stop();
  if (nodeId) expect(await labelledContainers({ 'zfaas.node': nodeId })).toEqual([]);
});

describe('a secret read as a file', () => {
  const cases = [
    { runtime: 'node', files: NODE_FN, policy: 'function' },
    { runtime: 'node', files: NODE_FN, policy: 'runtime' },
    { runtime: 'node', files: NODE_FN, policy: 'none' },
    { runtime: 'python', files: PY_FN, policy: 'function' },
    { runtime: 'python', files: PY_FN, policy: 'runtime' },
    { runtime: 'python', files: PY_FN, policy: 'none' },
    { runtime: 'plainpy', files: PY_FN, policy: 'function' }, // a held container, each call a docker exec
    { runtime: 'plainpy', files: PY_FN, policy: 'none' },
  ];
  for (const c of cases) {
    it(`${c.runtime}, policy ${c.policy}: reads it, 0400 in a 0500 folder of uid 1000, not in its environment`, async () => {
      const name = `sec-${c.runtime}-${c.policy}`;
      await deploy(c.runtime, name, c.files, { policy: c.policy, secrets: 'db-pass' });
      if (c.policy === 'runtime') {
        // a stem cell of the runtime is waiting: the call adopts it
        await waitFor('a stem cell', async () => {
          const nodes = (await http<{ stems?: Record<string, number> }[]>('GET', `${p.api}/nodes`)).body;
          return (nodes[0]?.stems?.[c.runtime] ?? 0) > 0 ? true : undefined;
        });
      }
      // a slow call, so that even a container of policy none can be inspected while it runs
      const inv = await http<CallView>('POST', `${p.api}/invokeFunction`, { funcName: name, params: { name: 'db-pass', sleep: 1500 } });
      expect(inv.status).toBe(202);
      // a container of policy none is inspected while it runs; warm ones (a preload, or a stem cell it
      // adopted, which keeps its stem labels) after the call
      if (c.policy === 'none') {
        await waitFor('its container', async () => ((await containersOf(name)).length ? true : undefined));
        inspected.push(await inspectAll());
      }
      const done = await waitCall(p.api, inv.body.callNum);
      callNums.push(done.callNum);
      if (c.policy !== 'none') inspected.push(await inspectAll());
      expect(report(done)).toEqual({
        sha: sha(VALUE),
        mode: '400',
        dirMode: '500',
        uid: 1000,
        inEnv: false,
        files: ['db-pass'],
        host: expect.any(String),
      });
      // only what it names: `other` is in the namespace but not in its folder
      expect((await checked(name, { name: 'db-pass' })).files).toEqual(['db-pass']);
    });
  }

  it('writes two secrets; a function naming none has no folder', async () => {
    await deploy('node', 'sec-two', NODE_FN, { policy: 'function', secrets: 'db-pass,other' });
    const r = await checked('sec-two', { name: 'other' });
    expect(r).toMatchObject({ sha: sha(OTHER), files: ['db-pass', 'other'] });
    // (a runtime with no loader, so no stem cell, which has the folder for any function it may take)
    const probe = { 'main.py': 'import json, os\nprint(json.dumps(os.path.exists("/var/zfaas/secrets")))\n' };
    await deploy('plainpy', 'sec-none-named', probe, { policy: 'function' });
    const c = await call('sec-none-named', {});
    expect(c.status, c.error).toBe('DONE');
    expect(JSON.parse(c.result)).toBe(false);
  });
});

describe('a changed secret', () => {
  it('reaches warm containers (a loader, a docker exec) on their next call, with no redeploy', async () => {
    const warm = ['sec-node-function', 'sec-python-function', 'sec-node-runtime', 'sec-plainpy-function'];
    const hosts = new Map<string, string>();
    for (const fn of warm) {
      const r = await checked(fn, { name: 'db-pass' });
      expect(r.sha).toBe(sha(VALUE));
      hosts.set(fn, r.host);
    }
    const put = await http<{ version: number }>('PUT', `${p.api}/secrets/db-pass`, { value: VALUE2 });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body.version).toBe(2);
    await sleep(1200); // a node keeps what it read for at most a second
    for (const fn of warm) {
      // the same warm container, which now reads the new value
      expect(await checked(fn, { name: 'db-pass' })).toMatchObject({
        sha: sha(VALUE2),
        mode: '400',
        files: ['db-pass'],
        host: hosts.get(fn),
      });
    }
    // a fresh container per call gets the new one too
    expect((await checked('sec-node-none', { name: 'db-pass' })).sha).toBe(sha(VALUE2));
    inspected.push(await inspectAll());
  });

  it('deleted: the calls end in ERROR and the containers that held it are removed', async () => {
    const r = await http('POST', `${p.api}/secrets`, { name: 'short-lived', value: OTHER });
    expect(r.status).toBe(201);
    await deploy('node', 'sec-deleted', NODE_FN, { policy: 'function', secrets: 'short-lived' });
    const held = await checked('sec-deleted', { name: 'short-lived' });
    expect(held.sha).toBe(sha(OTHER));
    // The container that held it: made for the function, or a stem cell it adopted (whose labels name no function).
    const holder = async (): Promise<boolean> =>
      (await labelledContainers({ 'zfaas.node': nodeId })).some((id) => id.startsWith(held.host));
    expect(await holder()).toBe(true);
    expect((await http('DELETE', `${p.api}/secrets/short-lived`)).status).toBeLessThan(300);
    await sleep(1200);
    const c = await call('sec-deleted', { name: 'short-lived' });
    expect(c.status).toBe('ERROR');
    expect(c.error).toBe('secret short-lived not found in namespace default');
    await waitFor('its containers gone', async () =>
      (await containersOf('sec-deleted')).length === 0 && !(await holder()) ? true : undefined,
    );
  });
});

describe('a secret that does not exist', () => {
  for (const policy of ['function', 'none']) {
    it(`policy ${policy}: the call ends in ERROR saying which, in which namespace`, async () => {
      const name = `sec-missing-${policy}`;
      await deploy('python', name, PY_FN, { policy, secrets: 'db-pass,no-such-secret' });
      const c = await call(name, { name: 'db-pass' });
      expect(c.status).toBe('ERROR');
      expect(c.error).toBe('secret no-such-secret not found in namespace default');
    });
  }
});

describe('isolation', () => {
  it('a runtime under a Docker runtime this engine lacks (runsc): its calls end in ERROR with Docker`s words', async () => {
    const rt = await http('POST', `${p.api}/registerRuntime`, {
      name: 'gvisor',
      image: 'zfaas/node:latest',
      path: '/ws',
      run: 'node /opt/zfaas/loader.js --once',
      loader: 'node /opt/zfaas/loader.js',
      isolation: 'runsc',
    });
    expect(rt.status, JSON.stringify(rt.body)).toBe(201);
    for (const policy of ['function', 'none']) {
      const name = `isolated-${policy}`;
      await deploy('gvisor', name, { 'index.js': 'module.exports = () => 1' }, { policy });
      const c = await call(name, {});
      expect(c.status, c.result).toBe('ERROR');
      expect(c.error).toMatch(/unknown runtime specified runsc/i);
    }
  });
});

describe('where a value must never be', () => {
  it('in no API answer', async () => {
    const answers: unknown[] = [];
    for (const n of callNums) answers.push((await http('GET', `${p.api}/call/${n}`)).body);
    answers.push((await http('GET', `${p.api}/calls`)).body);
    answers.push((await http('GET', `${p.api}/secrets`)).body);
    answers.push((await http('GET', `${p.api}/functions`)).body);
    for (const fn of ['sec-node-function', 'sec-python-none', 'sec-two'])
      answers.push((await http('GET', `${p.api}/functions/${fn}`)).body);
    const text = JSON.stringify(answers);
    expect(text).toContain('db-pass'); // the names are there
    for (const v of ALL) for (const f of forms(v)) expect(text).not.toContain(f);
  });

  it('in no container`s docker inspect (Env, Labels, Mounts, Cmd)', async () => {
    inspected.push(await inspectAll());
    const text = inspected.join('\n');
    expect(text).toContain('/var/zfaas/secrets'); // the tmpfs is there, empty in every spec
    for (const v of ALL) for (const f of forms(v)) expect(text).not.toContain(f);
  });

  it('in no process log', () => {
    const logs = p.proc.output();
    expect(logs.length).toBeGreaterThan(0);
    for (const v of ALL) for (const f of forms(v)) expect(logs).not.toContain(f);
  });

  it('in no file of the data folder (the DB`s LevelDB, the instance`s trees, archives and lines)', async () => {
    const files = await walk(p.data);
    expect(files.some((f) => f.includes(join('db', '')))).toBe(true);
    expect(files.some((f) => f.includes(join('instance', '')))).toBe(true);
    const needles = ALL.flatMap(forms).map((s) => Buffer.from(s));
    for (const f of files) {
      const data = await readFile(f).catch(() => null);
      if (!data) continue;
      for (const n of needles) expect(data.includes(n), `${f} holds a secret's value`).toBe(false);
    }
  });
});

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(path)));
    else if (e.isFile()) out.push(path);
  }
  return out;
}
