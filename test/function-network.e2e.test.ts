// Functions deployed with network=true on a real node: they reach what the operator's allow-list opens and
// nothing of the host or its neighbours. The test makes its own network namespace (a veth into this
// machine: the host's side 10.214.N.1, the namespace's 10.214.N.2 and 10.214.N.3, and 169.254.169.254,
// routed there only for packets from the function network) with an HTTP server on port 80, and runs the
// DB service, the API and its broker on the host's side of that veth (10.214.N.1: an address of the host
// that a container could otherwise reach), with CURVE and a token, and a node whose allow-list opens
// 10.214.N.2 alone. A plain container on the function network serves HTTP as a neighbour, and the test
// listens on the network's gateway address. Every target answers the test itself (so each refusal below is
// the fence's doing), and the functions (a fresh container with the dependencies step, and a warm loader)
// reach the allowed server and get EHOSTUNREACH (the fence's ICMP refusal) from every other. A node that
// cannot fence the network (one started inside the test's namespace, where the engine's bridges are not)
// refuses such calls, saying why.
// Needs root (namespaces, routes, iptables); skipped with the reason otherwise. Everything it made is
// removed after: processes by their pids, the neighbour, the namespace, the route and rule, and the
// function network with its rules when no container is left on it.
import Docker from 'dockerode';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newKeyPair } from '../common/curve.js';
import { FUNCTION_NETWORK, LABEL } from '../common/container-spec.js';
import { removeFunctionNetwork } from '../instance/network.js';
import { packFiles } from './helpers/archives.js';
import { sh } from './helpers/cluster.js';
import { CLI, freePort, http, tempDir, upload, waitFor, waitHealthy, zfaas, type Proc } from './helpers/platform.js';

const docker = new Docker();
const id = randomBytes(3).toString('hex');
const NS = `zfnt-${id}`;
const VETH = `zfnt${id}`; // the host's end (at most 15 characters)
const N = randomInt(1, 250);
const HOST = `10.214.${N}.1`;
const ALLOWED = `10.214.${N}.2`;
const OTHER = `10.214.${N}.3`;
const METADATA = '169.254.169.254';
const TABLE = String(4214 + N);
const TOKEN = randomBytes(24).toString('hex');
const server = newKeyPair();
const node = newKeyPair();

async function unsupported(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root (a network namespace, routes, iptables)';
  for (const tool of ['ip', 'iptables', 'iptables-restore']) {
    if (!(await sh('sh', ['-c', `command -v ${tool}`]).then(Boolean, () => false))) return `${tool} is not installed`;
  }
  return undefined;
}
const why = await unsupported();

const ip = (...args: string[]): Promise<string> => sh('ip', args);
// Answers a TCP connect: OPEN, or the error's code.
const knock = (host: string, port: number): Promise<string> =>
  new Promise((res) => {
    const s = connect({ host, port });
    s.setTimeout(5000, () => {
      s.destroy();
      res('TIMEOUT');
    });
    s.on('connect', () => {
      s.destroy();
      res('OPEN');
    });
    s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
  });

// The probe each function runs: every target of targets.json, by HTTP or a bare TCP connect.
const PROBE = `const net = require('net'), http = require('http'), fs = require('fs');
const attempt = (t) => new Promise((res) => {
  const done = (v) => res(v);
  if (t.http) {
    const req = http.get({ host: t.host, port: t.port, path: '/', timeout: 5000 }, (r) => {
      let b = '';
      r.on('data', (d) => (b += d));
      r.on('end', () => done('HTTP ' + r.statusCode + ' ' + b));
    });
    req.on('timeout', () => { req.destroy(); done('TIMEOUT'); });
    req.on('error', (e) => done(e.code || e.message));
    return;
  }
  const s = net.connect({ host: t.host, port: t.port });
  s.setTimeout(5000, () => { s.destroy(); done('TIMEOUT'); });
  s.on('connect', () => { s.destroy(); done('OPEN'); });
  s.on('error', (e) => done(e.code || e.message));
});
const probe = async () => {
  const targets = JSON.parse(fs.readFileSync(__dirname + '/targets.json', 'utf8'));
  const out = {};
  for (const [name, t] of Object.entries(targets)) out[name] = await attempt(t);
  return out;
};
module.exports = probe;
if (require.main === module)
  probe().then((run) => {
    if (process.argv[2] === 'deps') return console.log(JSON.stringify(run));
    console.log(JSON.stringify({ run, deps: JSON.parse(fs.readFileSync(__dirname + '/deps.json', 'utf8')) }));
  });
`;

type Results = Record<string, string>;

describe.skipIf(why !== undefined)(`a function network fenced by the node${why ? ` (skipped: ${why})` : ''}`, () => {
  let data: string;
  const procs: Proc[] = [];
  let nsServer: ChildProcess | undefined;
  let gatewayListener: Server | undefined;
  let neighbour: Docker.Container | undefined;
  let unfenced: ChildProcess | undefined;
  let api = '';
  const ports = { api: 0, broker: 0, db: 0, gateway: 0 };
  let gateway = '';
  let neighbourIp = '';
  const auth = { authorization: `Bearer ${TOKEN}` };
  const targets = (): Record<string, { host: string; port: number; http?: boolean }> => ({
    allowed: { host: ALLOWED, port: 80, http: true },
    notAllowed: { host: OTHER, port: 80, http: true },
    metadata: { host: METADATA, port: 80, http: true },
    api: { host: HOST, port: ports.api },
    broker: { host: HOST, port: ports.broker },
    db: { host: HOST, port: ports.db },
    gateway: { host: gateway, port: ports.gateway },
    neighbour: { host: neighbourIp, port: 8080, http: true },
  });
  const fenced = (): Results => ({
    allowed: `HTTP 200 served by ${ALLOWED}`,
    ...Object.fromEntries(Object.keys(targets()).flatMap((k) => (k === 'allowed' ? [] : [[k, 'EHOSTUNREACH']]))),
  });

  beforeAll(async () => {
    data = await tempDir('zfaas-fnnet-');
    // The namespace: its eth0 has the allowed and another address, and the metadata address.
    await ip('netns', 'add', NS);
    await ip('-n', NS, 'link', 'set', 'lo', 'up');
    await ip('link', 'add', VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS);
    await ip('addr', 'add', `${HOST}/24`, 'dev', VETH);
    await ip('link', 'set', VETH, 'up');
    for (const a of [`${ALLOWED}/24`, `${OTHER}/24`, `${METADATA}/32`]) await ip('-n', NS, 'addr', 'add', a, 'dev', 'eth0');
    await ip('-n', NS, 'link', 'set', 'eth0', 'up');
    // 169.254.169.254 leads into the namespace for the function network's packets only: the host's own
    // route to it (a cloud's metadata service) is left alone, and no test packet leaves this machine.
    await ip('rule', 'add', 'iif', FUNCTION_NETWORK, 'to', `${METADATA}/32`, 'lookup', TABLE);
    await ip('route', 'add', `${METADATA}/32`, 'via', ALLOWED, 'dev', VETH, 'table', TABLE);
    nsServer = spawn(
      'ip',
      [
        'netns',
        'exec',
        NS,
        process.execPath,
        '-e',
        "require('http').createServer((q, s) => s.end('served by ' + q.socket.localAddress)).listen(80, '0.0.0.0', () => console.log('listening'))",
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((res, rej) => {
      nsServer!.stdout!.once('data', () => res());
      nsServer!.once('exit', (code) => rej(new Error(`the namespace's server exited (${code})`)));
    });

    // The services on the host's side of the veth, with CURVE and a token, as beyond loopback they must be.
    for (const k of ['api', 'broker', 'db'] as const) ports[k] = await freePort();
    const dbAddr = `tcp://${HOST}:${ports.db}`;
    const brokerAddr = `tcp://${HOST}:${ports.broker}`;
    const keys = { ZFAAS_CURVE_SECRET: server.secretKey, ZFAAS_CURVE_ALLOWED: node.publicKey };
    procs.push(zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')], keys));
    const apiProc = zfaas(['api', '--host', HOST, '--port', String(ports.api), '--db', dbAddr, '--broker-bind', brokerAddr], {
      ...keys,
      ZFAAS_TOKEN: TOKEN,
    });
    procs.push(apiProc);
    const inst = zfaas(
      [
        'instance',
        '--broker',
        brokerAddr,
        '--db',
        dbAddr,
        '--data',
        join(data, 'node'),
        '--node-id',
        `fnnet-${id}`,
        '--miniworkers',
        '2',
        '--policy',
        'none',
        '--function-network-allow',
        ALLOWED,
      ],
      { ZFAAS_CURVE_SECRET: node.secretKey, ZFAAS_CURVE_SERVER_KEY: server.publicKey },
    );
    procs.push(inst);
    api = `http://${HOST}:${ports.api}`;
    await waitHealthy(api, 1, apiProc);
    // A node makes and fences the network when a function first needs it: not before.
    expect(inst.output()).not.toContain('function network fenced');
    const first = await upload(
      `${api}/registerFunction/node/first`,
      await packFiles({ 'index.js': "module.exports = () => 'up';" }),
      'first.tar.gz',
      { network: 'true' },
      auth,
    );
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect((await http<{ result: string }>('POST', `${api}/invokeFunction`, { funcName: 'first', wait: true }, auth)).body.result).toBe(
      'up',
    );
    expect(inst.output()).toContain('function network fenced');

    // The network's gateway (the host's address on it), with a listener of the test's own.
    const net = (await docker.getNetwork(FUNCTION_NETWORK).inspect()) as { IPAM: { Config: { Gateway: string }[] } };
    gateway = net.IPAM.Config[0]!.Gateway;
    gatewayListener = createServer((s) => s.end());
    ports.gateway = await freePort();
    await new Promise<void>((res) => gatewayListener!.listen(ports.gateway, gateway, res));
    // A neighbour on the same network, serving HTTP.
    neighbour = await docker.createContainer({
      name: `zfaas-fnnet-neighbour-${id}`,
      Image: 'zfaas/node:latest',
      User: '1000:1000',
      Cmd: ['node', '-e', "require('http').createServer((q, s) => s.end('neighbour')).listen(8080)"],
      Labels: { [LABEL]: 'true', 'zfaas.test': 'function-network' },
      HostConfig: { NetworkMode: FUNCTION_NETWORK, AutoRemove: false },
    });
    await neighbour.start();
    const seen = (await neighbour.inspect()) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
    neighbourIp = seen.NetworkSettings.Networks[FUNCTION_NETWORK]!.IPAddress;
  }, 180_000);

  afterAll(async () => {
    if (unfenced && unfenced.exitCode === null) {
      unfenced.kill('SIGTERM');
      await new Promise((res) => unfenced!.once('exit', res));
    }
    for (const p of procs.reverse()) await p.stop();
    await neighbour?.remove({ force: true }).catch(() => undefined);
    await new Promise((res) => (gatewayListener ? gatewayListener.close(res) : res(undefined)));
    if (nsServer && nsServer.exitCode === null) {
      nsServer.kill('SIGKILL');
      await new Promise((res) => nsServer!.once('exit', res));
    }
    await ip('rule', 'del', 'iif', FUNCTION_NETWORK, 'to', `${METADATA}/32`, 'lookup', TABLE).catch(() => undefined);
    await ip('route', 'flush', 'table', TABLE).catch(() => undefined);
    await ip('netns', 'del', NS).catch(() => undefined); // its end of the veth, and so the host's, go with it
    // The network and its rules, unless another zfaas on this machine has containers on it now.
    const left = await docker
      .getNetwork(FUNCTION_NETWORK)
      .inspect()
      .then((n: { Containers?: Record<string, unknown> }) => Object.keys(n.Containers ?? {}).length)
      .catch(() => 0);
    if (left === 0) await removeFunctionNetwork(docker);
    await rm(data, { recursive: true, force: true });
  }, 120_000);

  it('has every target answering the test itself, so that each refusal below is the fence', async () => {
    const get = async (url: string): Promise<string> => (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    expect(await get(`http://${ALLOWED}/`)).toBe(`served by ${ALLOWED}`);
    expect(await get(`http://${OTHER}/`)).toBe(`served by ${OTHER}`);
    expect(await waitFor('the neighbour to serve', () => get(`http://${neighbourIp}:8080/`), 30_000)).toBe('neighbour');
    for (const [host, port] of [
      [HOST, ports.api],
      [HOST, ports.broker],
      [HOST, ports.db],
      [gateway, ports.gateway],
    ] as const)
      expect(await knock(host, port), `${host}:${port}`).toBe('OPEN');
    // The metadata address, inside the namespace (the host itself has no route there: only the functions do).
    const inside = await sh('ip', [
      'netns',
      'exec',
      NS,
      process.execPath,
      '-e',
      `fetch('http://${METADATA}/').then(async (r) => console.log(await r.text()))`,
    ]);
    expect(inside.trim()).toBe(`served by ${METADATA}`);
  });

  it('lets a fresh container, and its dependencies step, reach the allowed host and nothing else', async () => {
    // A runtime with a run command (a container per call under policy none) and a dependencies step.
    const runtime = {
      name: 'netprobe',
      image: 'zfaas/node:latest',
      path: '/ws',
      dependencies: 'node probe.js deps > deps.json',
      run: 'node probe.js',
    };
    expect((await http('POST', `${api}/registerRuntime`, runtime, auth)).status).toBe(201);
    const archive = await packFiles({ 'probe.js': PROBE, 'targets.json': JSON.stringify(targets()) });
    const deployed = await upload(
      `${api}/registerFunction/netprobe/probe`,
      archive,
      'probe.tar.gz',
      { network: 'true', timeout: '120' },
      auth,
    );
    expect(deployed.status, JSON.stringify(deployed.body)).toBe(201);
    const r = await http<{ status: string; result: string; error?: string }>(
      'POST',
      `${api}/invokeFunction`,
      { funcName: 'probe', wait: true },
      auth,
    );
    expect(r.body.status, r.body.error).toBe('DONE');
    const { run, deps } = JSON.parse(r.body.result) as { run: Results; deps: Results };
    expect(run).toEqual(fenced());
    expect(deps).toEqual(fenced());
  });

  it('lets a warm container reach the allowed host and nothing else', async () => {
    const archive = await packFiles({
      'index.js': "module.exports = require('./probe.js');",
      'probe.js': PROBE,
      'targets.json': JSON.stringify(targets()),
    });
    const deployed = await upload(
      `${api}/registerFunction/node/warm-probe`,
      archive,
      'warm.tar.gz',
      { network: 'true', policy: 'function' },
      auth,
    );
    expect(deployed.status, JSON.stringify(deployed.body)).toBe(201);
    const r = await http<{ status: string; result: string; error?: string }>(
      'POST',
      `${api}/invokeFunction`,
      { funcName: 'warm-probe', wait: true },
      auth,
    );
    expect(r.body.status, r.body.error).toBe('DONE');
    expect(JSON.parse(r.body.result)).toEqual(fenced());
  });

  it('has a node that cannot fence the network refuse network=true calls, saying why', async () => {
    // The fenced node leaves; one in the test's namespace (the engine's bridges are not there) takes over.
    await procs.pop()!.stop();
    const other = `fnnet-unfenced-${id}`;
    const args = ['instance', '--broker', `tcp://${HOST}:${ports.broker}`, '--db', `tcp://${HOST}:${ports.db}`];
    const inst = spawn(
      'nsenter',
      [
        `--net=/var/run/netns/${NS}`,
        '--',
        process.execPath,
        CLI,
        ...args,
        '--data',
        join(data, other),
        '--node-id',
        other,
        '--miniworkers',
        '1',
        '--policy',
        'none',
      ],
      {
        env: { ...process.env, ZFAAS_LOG_FORMAT: 'json', ZFAAS_CURVE_SECRET: node.secretKey, ZFAAS_CURVE_SERVER_KEY: server.publicKey },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    inst.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    inst.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    unfenced = inst;
    await waitFor(`node ${other} to join alone`, async () => {
      const nodes = (await http<{ id: string; state: string }[]>('GET', `${api}/nodes`, undefined, auth)).body;
      const alive = nodes.filter((n) => n.state === 'alive').map((n) => n.id);
      return alive.length === 1 && alive[0] === other ? true : undefined;
    });
    const r = await http<{ status: string; error?: string; node?: string }>(
      'POST',
      `${api}/invokeFunction`,
      { funcName: 'probe', wait: true },
      auth,
    );
    expect(r.body.status).toBe('ERROR');
    // the record names the node that refused it (it never ran, so only once the node recorded its end)
    await waitFor('the record to name the node', async () => {
      const c = (await http<{ node?: string }>('GET', `${api}/call/${(r.body as { callNum?: number }).callNum}`, undefined, auth)).body;
      return c.node === other ? true : undefined;
    });
    expect(out).toContain('functions with network=true will not run on this node');
    expect(r.body.error).toMatch(
      /runs no function with network=true: its function network cannot be fenced \(the engine's bridge zfaas-fn is not in this process's network namespace/,
    );
  });
});
