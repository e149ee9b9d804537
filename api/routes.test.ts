// Routes declared with their rule, and the gate that applies it, in a small app with the real Identity:
// each spelling of a path that is not the route's own (case, trailing or doubled slash, percent-encoded
// letters, "..", another method) reaches no route and needs the operator; a route a request is passed on
// to is held to its own rule; an app with a route that declares no rule, or a router that is not
// case-sensitive and strict, does not start.
import express, { Router, type Express } from 'express';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import { errorResponder, HttpError } from './http.js';
import { checkRoutes, findRoute, route, router } from './routes.js';
import { gate } from './tenancy/gate.js';
import { Identity } from './tenancy/identity.js';
import { makeKey } from './tenancy/keys.js';

const TOKEN = 'routes-test-operator-token';
const log = pino({ level: 'silent' });

// A request with its path sent exactly as written (fetch would tidy "..").
function send(port: number, method: string, path: string, auth?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: auth ? { authorization: `Bearer ${auth}` } : {} }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function small(identity: Identity): Express {
  const app = express();
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  const first = gate(app, identity);
  app.use(first);
  const r = router();
  const ok = (_req: express.Request, res: express.Response): void => void res.json({ ok: true });
  route(r, 'GET', '/open', 'open', ok);
  route(r, 'GET', '/things', 'developer', ok);
  route(r, 'GET', '/things/:id', 'invoker', (req, res) => void res.json({ id: req.params.id }));
  route(r, 'POST', '/admin-only', 'admin', ok);
  // The first /pass passes every request on: the second, which needs the operator, must hold it to that.
  route(r, 'GET', '/pass', 'invoker', (_req, _res, next) => next());
  route(r, 'GET', '/pass', 'operator', ok);
  app.use(r);
  app.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.path}`)));
  app.use(errorResponder(log));
  checkRoutes(app, first);
  return app;
}

describe('the gate, with routes declared where they are registered', () => {
  let server: Server;
  let port: number;
  let developer: string;
  let invoker: string;

  beforeAll(async () => {
    const records = new Map<string, KeyRecord>();
    const dev = await makeKey('team-a', 'developer');
    const inv = await makeKey('team-a', 'invoker');
    for (const k of [dev, inv]) records.set(k.record.id, k.record);
    [developer, invoker] = [dev.key, inv.key];
    const db = {
      request: async (type: string, c: { id?: string; name?: string }) => {
        if (type === 'getKey') return records.get(c.id ?? '') ?? null;
        if (type === 'getNamespace') return c.name === 'team-a' ? { name: 'team-a', quotas: {}, createdAt: '' } : null;
        throw new Error(`unexpected DB request ${type}`);
      },
    } as unknown as DbClient;
    server = small(new Identity({ db, log, token: TOKEN })).listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

  it('answers the route as declared', async () => {
    expect((await send(port, 'GET', '/things', developer)).status).toBe(200);
    expect((await send(port, 'GET', '/things', invoker)).status).toBe(403);
    expect((await send(port, 'GET', '/things')).status).toBe(401);
    expect((await send(port, 'HEAD', '/things', developer)).status).toBe(200); // HEAD is GET without a body
    expect((await send(port, 'POST', '/admin-only', developer)).status).toBe(403);
    expect((await send(port, 'POST', '/admin-only', TOKEN)).status).toBe(200);
    // A percent-encoded param is the same param: the route and its rule are the same.
    expect(await send(port, 'GET', '/things/%41b', invoker)).toEqual({ status: 200, body: '{"id":"Ab"}' });
  });

  it.each([
    '/Things',
    '/THINGS',
    '/things/',
    '//things',
    '/%74hings',
    '/things%2f',
    '/x/../things',
    '/./things',
    '/admin-only/',
    '/Admin-only',
  ])('takes %s for no route: 401 without credentials, 403 for a key, 404 only for the operator', async (path) => {
    expect((await send(port, 'GET', path)).status).toBe(401);
    const dev = await send(port, 'GET', path, developer);
    expect(dev.status).toBe(403);
    expect(dev.body).toMatch(/no route .*needs the operator/);
    expect((await send(port, 'GET', path, TOKEN)).status).toBe(404);
  });

  it('takes a method a path does not declare for no route', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      expect((await send(port, method, '/things')).status, method).toBe(401);
      expect((await send(port, method, '/things', developer)).status, method).toBe(403);
    }
    expect((await send(port, 'GET', '/admin-only', developer)).status).toBe(403);
  });

  it('holds a route a request is passed on to to its own rule', async () => {
    expect((await send(port, 'GET', '/pass', invoker)).status).toBe(403);
    expect((await send(port, 'GET', '/pass', TOKEN)).status).toBe(200);
  });

  it('reads no credentials on an open route', async () => {
    expect((await send(port, 'GET', '/open')).status).toBe(200);
    expect((await send(port, 'GET', '/open', 'zfk_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status).toBe(200);
  });
});

describe('findRoute and checkRoutes', () => {
  const identity = new Identity({ db: { request: async () => null } as unknown as DbClient, log, token: TOKEN });

  it('find the route express dispatches to, and none for another spelling', () => {
    const app = small(identity);
    expect(findRoute(app, 'GET', '/things')?.rule).toEqual({ need: 'developer' });
    expect(findRoute(app, 'HEAD', '/things')?.rule).toEqual({ need: 'developer' });
    expect(findRoute(app, 'GET', '/things/x')?.rule).toEqual({ need: 'invoker' });
    for (const p of ['/Things', '/things/', '//things', '/%74hings', '/things/%E0%A4%A']) expect(findRoute(app, 'GET', p), p).toBeNull();
    expect(findRoute(app, 'DELETE', '/things')).toBeNull();
  });

  it('refuse an app with a route that declares no rule', () => {
    const app = express();
    app.set('case sensitive routing', true);
    app.set('strict routing', true);
    const first = gate(app, identity);
    app.use(first);
    const r = router();
    route(r, 'GET', '/fine', 'invoker', (_req, res) => void res.end());
    r.get('/forgotten', (_req, res) => void res.end());
    app.use(r);
    expect(() => checkRoutes(app, first)).toThrow(/GET \/forgotten declares no rule/);
  });

  it('refuse a router that is not case-sensitive and strict, or a gate that is not first', () => {
    const app = express();
    app.set('case sensitive routing', true);
    app.set('strict routing', true);
    const first = gate(app, identity);
    app.use(first);
    const loose = Router();
    route(loose, 'GET', '/x', 'invoker', (_req, res) => void res.end());
    app.use(loose);
    expect(() => checkRoutes(app, first)).toThrow(/a router is not case-sensitive and strict/);
    const late = express();
    late.set('case sensitive routing', true);
    late.set('strict routing', true);
    late.use(router());
    const g = gate(late, identity);
    late.use(g);
    expect(() => checkRoutes(late, g)).toThrow(/the gate is not the first handler/);
  });
});
