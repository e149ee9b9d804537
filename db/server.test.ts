// The DB service over a real ZMQ socket and a real LevelDB on disk.
import { finishCall, startCall } from '../test/helpers/db-service.js';
import { Dealer } from 'zeromq';
import { rm } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { DbServer } from './server.js';
import { DbClient, DbError } from './client.js';
import { freePort, tempDir } from '../test/helpers/platform.js';
import type { CallOutcome } from '../common/model.js';

const log = pino({ level: 'silent' });
let dir: string;
let bind: string;
let server: DbServer;
let client: DbClient;

beforeEach(async () => {
  dir = await tempDir('zfaas-db-');
  bind = `tcp://127.0.0.1:${await freePort()}`;
  server = new DbServer({ bind, dataDir: dir, log });
  await server.start();
  client = new DbClient(bind, 5_000);
});

afterEach(async () => {
  client.close();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

// Sends raw frames the way any ZMQ client could, and returns the parsed reply.
async function raw(frames: Buffer[]): Promise<{ ok: boolean; error?: string; code?: string }> {
  const s = new Dealer({ linger: 0 });
  s.connect(bind);
  try {
    await s.send([Buffer.alloc(0), ...frames]);
    const [, body] = await s.receive();
    return JSON.parse(body!.toString()) as { ok: boolean; error?: string; code?: string };
  } finally {
    s.close();
  }
}

const settings = { timeout: 30, memory: 256, cpus: 1, pids: 128, network: false, retry: true, env: {} };
const outcome = (result: string): CallOutcome => ({ status: 'DONE', result, logs: '', durationMs: 1 });

describe('db service', () => {
  it('answers malformed requests with an error reply and keeps serving', async () => {
    expect(await raw([Buffer.from('not json')])).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(await raw([Buffer.from('{"msgType":"nope","content":{}}')])).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(await raw([Buffer.from('{"msgType":"getCall","content":{"callNum":"x"}}')])).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(await raw([])).toMatchObject({ ok: false, code: 'BAD_REQUEST' });
    expect(await client.request('ping', {})).toEqual({ ok: true, engine: 'leveldb' });
  });

  it('numbers calls in order, records the first final result only, and keeps everything across a restart', async () => {
    await client.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
    const blob = Buffer.from('archive bytes');
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(blob).digest('hex');
    await client.request('putArchive', { digest }, [blob]);
    const fn = await client.request('addFunction', {
      functionName: 'f',
      runtimeName: 'py',
      digest,
      size: blob.length,
      format: 'tar.gz',
      originalname: 'f.tgz',
      settings,
    });
    expect(fn.version).toBe(1);
    const c1 = await client.request('createCall', { funcName: 'f', version: 1, params: { a: 1 } });
    const c2 = await client.request('createCall', { funcName: 'f', version: 1, params: { a: 2 } });
    expect([c1.callNum, c2.callNum]).toEqual([1, 2]);
    expect(c1.status).toBe('PENDING');

    await startCall(client, { callNum: 1, node: 'n1' });
    const first = await finishCall(client, { callNum: 1, outcome: outcome('one'), node: 'n1' });
    expect(first.changed).toBe(true);
    const again = await finishCall(client, { callNum: 1, outcome: outcome('two'), node: 'n2' });
    expect(again.changed).toBe(false);

    client.close();
    await server.stop();
    server = new DbServer({ bind, dataDir: dir, log });
    await server.start();
    client = new DbClient(bind, 5_000);

    expect((await client.request('getCall', { callNum: 1 }))?.result).toBe('one');
    expect((await client.request('getCall', { callNum: 2 }))?.status).toBe('PENDING');
    expect((await client.request('listRuntimes', {})).map((r) => r.name)).toEqual(['py']);
    const got = await client.requestWithBlobs('getArchive', { digest });
    expect(got.blobs[0]?.equals(blob)).toBe(true);
    expect((await client.request('createCall', { funcName: 'f', version: 1, params: {} })).callNum).toBe(3);
    expect(await client.request('getCall', { callNum: 99 })).toBeNull();
    await expect(client.request('getCall', { callNum: -1 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(client.request('getCall', { callNum: -1 })).rejects.toBeInstanceOf(DbError);
  });
});
