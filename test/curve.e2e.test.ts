// CURVE on the node links and the DB service (issue 5 item 5): known instance keys get in, others never do.
import { rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newKeyPair, curvePublicKey } from '../common/curve.js';
import { DbClient } from '../db/client.js';
import { packFiles } from './helpers/archives.js';
import { freePort, http, sleep, tempDir, upload, waitFor, waitHealthy, zfaas, type Proc } from './helpers/platform.js';

const server = newKeyPair();
const known = newKeyPair();
const stranger = newKeyPair();
let data: string;
let url: string;
let dbAddr: string;
let brokerAddr: string;
const procs: Proc[] = [];

const instance = (name: string, env: Record<string, string>): Proc => {
  const p = zfaas(
    [
      'instance',
      '--broker',
      brokerAddr,
      '--db',
      dbAddr,
      '--data',
      join(data, name),
      '--node-id',
      name,
      '--miniworkers',
      '1',
      '--label',
      `zone=${name}`,
    ],
    env,
  );
  procs.push(p);
  return p;
};

// A TCP relay that records what clients send on each connection, chunk by chunk, as a wire tap would.
async function tap(target: string): Promise<{ address: string; sent: Buffer[][]; close(): void }> {
  const { hostname, port } = new URL(target.replace('tcp:', 'http:'));
  const sent: Buffer[][] = [];
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const chunks: Buffer[] = [];
    sent.push(chunks);
    const up = connect(Number(port), hostname);
    open.add(client).add(up);
    client.on('data', (d) => {
      chunks.push(Buffer.from(d));
      up.write(d);
    });
    up.pipe(client);
    const end = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const addr = server.address() as { port: number };
  return {
    address: `tcp://127.0.0.1:${addr.port}`,
    sent,
    close: () => {
      for (const s of open) s.destroy();
      server.close();
    },
  };
}

// Sends a recorded connection again, byte for byte, pausing between chunks as the handshake did.
async function replay(target: string, chunks: Buffer[]): Promise<void> {
  const { hostname, port } = new URL(target.replace('tcp:', 'http:'));
  const s = connect(Number(port), hostname);
  s.on('error', () => undefined); // the server hangs up on a failed handshake
  s.on('data', () => undefined);
  for (const c of chunks) {
    if (s.destroyed) break;
    s.write(c);
    await sleep(150);
  }
  await sleep(500);
  s.destroy();
}

beforeAll(async () => {
  data = await tempDir();
  const port = await freePort();
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  url = `http://127.0.0.1:${port}`;
  const keys = { ZFAAS_CURVE_SECRET: server.secretKey, ZFAAS_CURVE_ALLOWED: known.publicKey };
  procs.push(zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')], keys));
  const api = zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr], keys);
  procs.push(api);
  instance('known', { ZFAAS_CURVE_SECRET: known.secretKey, ZFAAS_CURVE_SERVER_KEY: server.publicKey });
  await waitHealthy(url, 1, api);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await rm(data, { recursive: true, force: true });
});

it('lets in the instance whose key it knows, over CURVE, and runs calls there', async () => {
  const nodes = (await http<{ id: string; labels: Record<string, string> }[]>('GET', `${url}/nodes`)).body;
  expect(nodes.map((n) => n.id)).toEqual(['known']);
  expect(nodes[0]!.labels).toEqual({ zone: 'known' });
  expect(
    (await upload(`${url}/registerFunction/node/sq`, await packFiles({ 'index.js': 'module.exports = (p) => p.n * p.n;' }), 'sq.tar.gz'))
      .status,
  ).toBe(201);
  expect((await http('POST', `${url}/function/sq`, { n: 9 })).body).toBe(81);
});

it('refuses an instance with an unknown key and one without keys: they never join', async () => {
  const bad = instance('stranger', { ZFAAS_CURVE_SECRET: stranger.secretKey, ZFAAS_CURVE_SERVER_KEY: server.publicKey });
  const none = instance('nokeys', {});
  await waitFor('the refusal to be logged', async () => (procs[1]!.output().includes('unknown CURVE key') ? true : undefined), 20_000);
  await sleep(3000);
  const ids = (await http<{ id: string }[]>('GET', `${url}/nodes`)).body.map((n) => n.id);
  expect(ids).toEqual(['known']);
  expect(procs[1]!.output()).toContain(curvePublicKey(stranger.secretKey));
  expect(bad.child.exitCode).toBeNull(); // still trying, never in
  expect(none.child.exitCode).toBeNull();
});

it('the DB service answers only CURVE clients it knows', async () => {
  const plain = new DbClient(dbAddr, 1500);
  await expect(plain.request('ping', {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  plain.close();
  const wrong = new DbClient(dbAddr, 1500, { secretKey: stranger.secretKey, serverKey: server.publicKey });
  await expect(wrong.request('ping', {})).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  wrong.close();
  const good = new DbClient(dbAddr, 5000, { secretKey: known.secretKey, serverKey: server.publicKey });
  expect(await good.request('ping', {})).toMatchObject({ ok: true });
  good.close();
});

it('a replayed DB handshake and request are refused, logged, and change nothing', async () => {
  const wire = await tap(dbAddr);
  const rt = { name: 'replayed', image: 'zfaas/node', path: '/f', run: 'node index.js' };
  try {
    const tapped = new DbClient(wire.address, 5000, { secretKey: known.secretKey, serverKey: server.publicKey });
    expect(await tapped.request('putRuntime', rt)).toMatchObject({ name: 'replayed' });
    tapped.close();
  } finally {
    wire.close();
  }
  expect(wire.sent.length).toBe(1);
  const good = new DbClient(dbAddr, 5000, { secretKey: known.secretKey, serverKey: server.publicKey });
  try {
    expect(await good.request('deleteRuntime', { name: 'replayed' })).toEqual({ deleted: true });
    await replay(dbAddr, wire.sent[0]!);
    await waitFor(
      'the failed handshake to be logged',
      async () => (procs[0]!.output().includes('db client refused: CURVE handshake failed') ? true : undefined),
      10_000,
    );
    expect(await good.request('getRuntime', { name: 'replayed' })).toBeNull(); // the replayed putRuntime never ran
  } finally {
    good.close();
  }
});

it('a replayed node handshake does not bring back a node that left', async () => {
  const wire = await tap(brokerAddr);
  const p = zfaas(
    ['instance', '--broker', wire.address, '--db', dbAddr, '--data', join(data, 'tapped'), '--node-id', 'tapped', '--miniworkers', '1'],
    { ZFAAS_CURVE_SECRET: known.secretKey, ZFAAS_CURVE_SERVER_KEY: server.publicKey },
  );
  procs.push(p);
  const ids = async (): Promise<string[]> => (await http<{ id: string }[]>('GET', `${url}/nodes`)).body.map((n) => n.id);
  try {
    await waitFor('the tapped node to join', async () => ((await ids()).includes('tapped') ? true : undefined), 20_000, p);
    expect(await p.stop()).toBe(0);
    await waitFor('the tapped node to leave', async () => ((await ids()).includes('tapped') ? undefined : true), 10_000);
  } finally {
    wire.close();
  }
  await replay(brokerAddr, wire.sent[0]!);
  await waitFor(
    'the failed handshake to be logged',
    async () => (procs[1]!.output().includes('node link refused: CURVE handshake failed') ? true : undefined),
    10_000,
  );
  await sleep(1500);
  expect(await ids()).toEqual(['known']);
});

it('refuses to start a DB service beyond loopback without keys', async () => {
  const p = zfaas(['db', '--bind', `tcp://0.0.0.0:${await freePort()}`, '--data', join(data, 'db2')], {
    ZFAAS_CURVE_SECRET: '',
    ZFAAS_INSECURE_NETWORK: '',
  });
  expect(await p.stop('SIGCONT')).toBe(2);
  expect(p.output()).toMatch(/beyond this machine/);
});
