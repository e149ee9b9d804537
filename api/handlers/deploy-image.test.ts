// The image deploy form without Docker: what POST /registerImageFunction/NAME stores (the image spec, the
// shared zfaas-image runtime record written once, an archive naming the spec by content), and each bad
// field answered 400 with what was expected, storing nothing.
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { DbClient } from '../../db/client.js';
import { extractArchive } from '../../common/archive/index.js';
import { IMAGE_RUNTIME, IMAGE_RUNTIME_RECORD } from '../../common/image-function.js';
import { errorResponder } from '../http.js';
import { Scope } from '../tenancy/scope.js';
import { deployImageRouter } from './deploy-image.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('POST /registerImageFunction/:funcName', () => {
  let server: Server;
  let base = '';
  const writes: Array<{ type: string; c: Record<string, unknown>; blob?: Buffer }> = [];
  let runtimeThere = false;
  const db = {
    request: async (type: string, c: Record<string, unknown>, blobs?: Buffer[]) => {
      if (type === 'getRuntime') return runtimeThere && c.name === IMAGE_RUNTIME ? IMAGE_RUNTIME_RECORD : null;
      writes.push({ type, c, blob: blobs?.[0] });
      if (type === 'putRuntime') return c;
      if (type === 'putArchive') return { digest: c.digest, size: blobs?.[0]?.length };
      if (type === 'addFunction') return { ...c, version: 1, createdAt: 'now' };
      throw new Error(`unexpected DB request ${type}`);
    },
  } as unknown as DbClient;

  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.use((_req, res, next) => {
      res.locals.scope = new Scope('default', 'developer', 'k1');
      next();
    });
    app.use(deployImageRouter(db));
    app.use(errorResponder(pino({ level: 'silent' })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));
  beforeEach(() => {
    writes.length = 0;
  });

  const deploy = async (body: unknown, query = ''): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${base}/registerImageFunction/web${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };

  it('stores the image, its port and readiness (defaults 8080 and 10 s) with the settings, on the zfaas-image runtime', async () => {
    runtimeThere = false;
    const r = await deploy({ image: 'localhost:5000/team/api:v1', memory: '128m', policy: 'function' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      functionName: 'web',
      runtimeName: IMAGE_RUNTIME,
      format: 'tar',
      image: { ref: 'localhost:5000/team/api:v1', port: 8080, readiness: 10 },
      settings: { memory: 128, policy: 'function' },
    });
    expect(writes.map((w) => w.type)).toEqual(['putRuntime', 'putArchive', 'addFunction']);
    // The archive holds the spec, and its digest names it.
    const dir = await mkdtemp(join(tmpdir(), 'zfaas-image-'));
    try {
      await extractArchive(writes[1]!.blob!, dir);
      expect(JSON.parse(await readFile(join(dir, 'zfaas-image.json'), 'utf8'))).toEqual({
        ref: 'localhost:5000/team/api:v1',
        port: 8080,
        readiness: 10,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    expect(writes[2]!.c.digest).toBe(writes[1]!.c.digest);
  });

  it('writes the runtime record only once, and reads port and readiness from the query too', async () => {
    runtimeThere = true;
    const r = await deploy({ image: 'acme/api' }, '?port=9000&readiness=3');
    expect(r.status).toBe(201);
    expect(r.body.image).toEqual({ ref: 'acme/api', port: 9000, readiness: 3 });
    expect(writes.map((w) => w.type)).toEqual(['putArchive', 'addFunction']);
  });

  it('answers 400 saying what was expected, storing nothing', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{}, /the image is missing: send "image"/],
      [{ image: 'Acme/API' }, /invalid image function: image: "Acme\/API" is not an image reference: expected an image reference such as/],
      [{ image: 'x;rm -rf /' }, /is not an image reference/],
      [{ image: 'acme/api', port: 70000 }, /port: expected the port its server listens on up to 65535/],
      [{ image: 'acme/api', port: 'eighty' }, /port: expected the port its server listens on: a whole number from 1 to 65535/],
      [{ image: 'acme/api', readiness: 0 }, /readiness: expected the seconds its server has to accept connections from 1/],
      [{ image: 'acme/api', memory: 'lots' }, /invalid function settings: memory/],
    ];
    for (const [body, error] of cases) {
      const r = await deploy(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.error).toMatch(error);
    }
    expect(writes).toEqual([]);
  });
});
