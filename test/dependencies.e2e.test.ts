// The `dependencies` step runs the function's own code in effect (setup.py, install scripts): it builds the
// tree it should, and cannot fill the host's disk or write outside the function's folder. It runs at deploy
// (test/builds.e2e.test.ts follows a build itself).
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, labelledContainers, startUp, upload, type Platform } from './helpers/platform.js';

const LIMIT_MIB = 48;
let p: Platform;

beforeAll(async () => {
  p = await startUp(['--policy', 'none', '--miniworkers', '1'], { ZFAAS_DEPS_MAX_MIB: String(LIMIT_MIB) });
});

afterAll(async () => {
  await p?.stop();
});

// A python runtime whose dependencies step is `deps`; the function returns what its tree holds. The step
// runs at deploy: a step that fails makes the deploy answer 422 saying why (and the function's calls too).
async function deploy(name: string, deps: string, files: Record<string, string> = {}, expected = 201): Promise<{ error?: string }> {
  expect(
    (
      await http('POST', `${p.api}/registerRuntime`, {
        name: `deps-${name}`,
        image: 'zfaas/python:latest',
        path: '/ws',
        dependencies: deps,
        run: 'python3 main.py',
      })
    ).status,
  ).toBe(201);
  const main =
    'import json, os\nprint(json.dumps({"files": sorted(os.listdir(".")), "data": open("lib/data.json").read() if os.path.exists("lib/data.json") else None}))\n';
  const r = await upload(
    `${p.api}/registerFunction/deps-${name}/${name}`,
    await packFiles({ 'main.py': main, ...files }),
    `${name}.tar.gz`,
  );
  expect(r.status, JSON.stringify(r.body)).toBe(expected);
  return r.body as { error?: string };
}

// Every file under dir with its size (the node's data: archives, trees, the DB).
async function files(dir: string): Promise<{ path: string; size: number }[]> {
  const out: { path: string; size: number }[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const path = join(e.parentPath, e.name);
    out.push({ path, size: (await stat(path)).size });
  }
  return out;
}

it('keeps what the step builds in the tree, symlinks included, and runs the function on it', async () => {
  await deploy('builds', 'mkdir -p lib && echo \'{"v": 42}\' > lib/data.json && ln -s lib/data.json link.json && echo installed');
  const r = await http<{ files: string[]; data: string }>('POST', `${p.api}/function/builds`, {});
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.files).toEqual(['lib', 'link.json', 'main.py']);
  expect(JSON.parse(r.body.data)).toEqual({ v: 42 });
});

it('gives the step the network only when the function has it at run time', async () => {
  const deps = 'ls /sys/class/net > nets.txt';
  const main = 'print(open("nets.txt").read().split())\n';
  expect(
    (
      await http('POST', `${p.api}/registerRuntime`, {
        name: 'deps-nets',
        image: 'zfaas/python:latest',
        path: '/ws',
        dependencies: deps,
        run: 'python3 main.py',
      })
    ).status,
  ).toBe(201);
  for (const [name, network] of [
    ['offline', 'false'],
    ['online', 'true'],
  ] as const) {
    expect(
      (await upload(`${p.api}/registerFunction/deps-nets/${name}`, await packFiles({ 'main.py': main }), `${name}.tar.gz`, { network }))
        .status,
    ).toBe(201);
  }
  const offline = (await http<string>('POST', `${p.api}/function/offline`, {})).body;
  const online = (await http<string>('POST', `${p.api}/function/online`, {})).body;
  expect(offline).toBe("['lo']");
  expect(online).toMatch(/'eth0'/);
});

it('stops a step that writes past the limit: the deploy and the call say so, and the host disk holds none of it', async () => {
  const d = await deploy('filler', 'dd if=/dev/zero of=big bs=1M count=400 && echo done', {}, 422);
  expect(d.error).toMatch(new RegExp(`larger than the ${LIMIT_MIB} MiB a function may hold`));
  const r = await http<{ error: string; status: string }>('POST', `${p.api}/function/filler`, {});
  expect(r.status).toBe(500);
  expect(r.body.status).toBe('ERROR');
  expect(r.body.error).toMatch(new RegExp(`larger than the ${LIMIT_MIB} MiB a function may hold`));
  const big = (await files(p.data)).filter((f) => f.size > 8 * 1024 * 1024);
  expect(big).toEqual([]);
  expect(await labelledContainers({ 'zfaas.role': 'dependencies' })).toEqual([]);
});

// The step writes an archive of its own to the stream the node unpacks, with entries leading out of the tree.
const forgeries: Record<string, string[]> = {
  dotdot: ['add("../../../escaped.txt")'],
  absolute: ['add("/escaped.txt")'],
  symlink: [
    'link = tarfile.TarInfo("up"); link.type = tarfile.SYMTYPE; link.linkname = "../../../.."; t.addfile(link)',
    'add("up/escaped.txt")',
  ],
  hardlink: ['link = tarfile.TarInfo("hard"); link.type = tarfile.LNKTYPE; link.linkname = "../../../../etc/hostname"; t.addfile(link)'],
};

for (const [kind, entries] of Object.entries(forgeries)) {
  it(`never lets a tar the step forges (${kind}) write outside the function's tree`, async () => {
    const forge = [
      'import io, os, sys, tarfile',
      'out = os.fdopen(os.open(f"/proc/{sys.argv[1]}/fd/1", os.O_WRONLY), "wb")',
      't = tarfile.open(fileobj=out, mode="w|")',
      'def add(name):',
      '    info = tarfile.TarInfo(name); info.size = 5; t.addfile(info, io.BytesIO(b"pwned"))',
      ...entries,
      't.close(); out.flush()',
    ].join('\n');
    const name = `forger-${kind}`;
    const d = await deploy(name, 'python3 forge.py $$', { 'forge.py': forge }, 422);
    expect(d.error).toMatch(/the tree the dependencies step made could not be unpacked: TAR_ENTRY/);
    const r = await http<{ error?: string; files?: string[] }>('POST', `${p.api}/function/${name}`, {});
    expect(r.status).toBe(500);
    expect(r.body.error).toMatch(/the tree the dependencies step made could not be unpacked: TAR_ENTRY/);
    const outside = (await files(p.data)).filter((f) => /escaped|hostname/.test(f.path) && !f.path.includes(`/trees/${name}/`));
    expect(outside).toEqual([]);
    expect(
      await stat('/escaped.txt').then(
        () => true,
        () => false,
      ),
    ).toBe(false);
  });
}
