// Namespaces and their keys. The operator (the admin token) makes namespaces and sets their quotas:
// POST /namespaces {name, quotas?} (201), GET /namespaces, PUT /namespaces/:ns/quotas. A namespace's admin
// (or the operator) manages its keys: POST /namespaces/:ns/keys {role} answers 201 with {id, key}, the
// key shown only then; GET .../keys lists them without secrets; POST .../keys/:id/rotate gives the same
// key id a new secret (the old one stops); DELETE .../keys/:id revokes. GET /whoami says who a key is.
// DELETE /namespaces/:ns (operator) removes an empty namespace (no functions left) with its keys, secrets
// and private runtimes, and deletes its calls (results, logs, dead letters, pending callbacks) and
// idempotency keys; what this API holds of it in memory (batches, metrics) goes too. A namespace made
// again under the same name starts from nothing (the DB service clears the name then as well).
import type { Router, Response } from 'express';
import { z } from 'zod';
import { KEY_ID_RE, QuotasSchema, RoleSchema, type KeyInfo, type KeyRecord } from '../../common/model.js';
import { bareName, DEFAULT_NAMESPACE, namespaceOf, namespaceSchema } from '../../common/namespace.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { makeKey } from '../tenancy/keys.js';
import { scopeOf } from '../tenancy/scope.js';

const CreateSchema = z.object({ name: namespaceSchema, quotas: QuotasSchema.optional() }).strict();
const keyIdSchema = z.string().regex(KEY_ID_RE, 'must be a key id (16 hex digits)');

const info = ({ salt: _s, hash: _h, ...k }: KeyRecord): KeyInfo => k;

export interface NamespacesDeps {
  db: DbClient;
  forget(keyId: string): void; // a key revoked or rotated stops at once on this API
  forgetNamespace?(namespace: string): Promise<void>; // a deleted namespace's batches and metrics on this API
}

export function namespacesRouter(d: NamespacesDeps): Router {
  const r = router();
  const db = d.db;

  // The namespace of a path, as the caller may reach it: a key reaches only its own (any other is
  // "not found", so names do not leak); the operator any that exists.
  const reach = async (res: Response, raw: unknown): Promise<string> => {
    const name = parse(namespaceSchema, raw, 'namespace');
    const scope = scopeOf(res);
    if (!scope.operator && name !== scope.namespace) throw new HttpError(404, `namespace ${name} not found`);
    if (!(await db.request('getNamespace', { name }))) throw new HttpError(404, `namespace ${name} not found`);
    return name;
  };

  route(r, 'GET', '/whoami', 'invoker', (_req, res) => {
    const s = scopeOf(res);
    res.json({ namespace: s.namespace, role: s.actor, ...(s.keyId ? { keyId: s.keyId } : {}) });
  });

  route(
    r,
    'POST',
    '/namespaces',
    'operator',
    wrap(async (req, res) => {
      const body = parse(CreateSchema, req.body, 'namespace');
      res
        .status(201)
        .location(`/namespaces/${body.name}`)
        .json(await db.request('createNamespace', { name: body.name, quotas: body.quotas ?? {} }));
    }),
  );

  route(
    r,
    'GET',
    '/namespaces',
    'operator',
    wrap(async (_req, res) => {
      res.json(await db.request('listNamespaces', {}));
    }),
  );

  // A namespace's admin reads its own record (reach() keeps it there).
  route(
    r,
    'GET',
    '/namespaces/:ns',
    'admin',
    wrap(async (req, res) => {
      const name = await reach(res, req.params.ns);
      res.json(await db.request('getNamespace', { name }));
    }),
  );

  route(
    r,
    'DELETE',
    '/namespaces/:ns',
    'operator',
    wrap(async (req, res) => {
      const name = parse(namespaceSchema, req.params.ns, 'namespace');
      if (name === DEFAULT_NAMESPACE) throw new HttpError(409, 'the default namespace cannot be deleted');
      if (!(await db.request('getNamespace', { name }))) throw new HttpError(404, `namespace ${name} not found`);
      const fns = (await db.request('listFunctions', {})).filter((f) => namespaceOf(f.functionName) === name);
      if (fns.length > 0)
        throw new HttpError(
          409,
          `namespace ${name} still has ${fns.length} function(s) (${fns
            .slice(0, 5)
            .map((f) => bareName(f.functionName))
            .join(', ')}): delete them first`,
        );
      for (const rt of (await db.request('listRuntimes', {})).filter((x) => namespaceOf(x.name) === name))
        await db.request('deleteRuntime', { name: rt.name });
      const { keys, calls = 0, idempotencyKeys = 0 } = await db.request('deleteNamespace', { name });
      for (const id of keys) d.forget(id);
      await d.forgetNamespace?.(name);
      res.json({ deleted: name, keys: keys.length, calls, idempotencyKeys });
    }),
  );

  route(
    r,
    'PUT',
    '/namespaces/:ns/quotas',
    'operator',
    wrap(async (req, res) => {
      const name = await reach(res, req.params.ns);
      res.json(await db.request('setQuotas', { name, quotas: parse(QuotasSchema, req.body, 'quotas') }));
    }),
  );

  // A namespace's admin manages its keys (reach() keeps it to its own namespace).
  route(
    r,
    'POST',
    '/namespaces/:ns/keys',
    'admin',
    wrap(async (req, res) => {
      const namespace = await reach(res, req.params.ns);
      const { role } = parse(z.object({ role: RoleSchema }).strict(), req.body, 'key');
      const { key, record } = await makeKey(namespace, role);
      await db.request('putKey', record);
      res
        .status(201)
        .location(`/namespaces/${namespace}/keys/${record.id}`)
        .json({ ...info(record), key });
    }),
  );

  route(
    r,
    'GET',
    '/namespaces/:ns/keys',
    'admin',
    wrap(async (req, res) => {
      const namespace = await reach(res, req.params.ns);
      res.json((await db.request('listKeys', { namespace })).map(info));
    }),
  );

  // The key of a path in a namespace the caller reached, live (not revoked), else 404.
  const liveKey = async (namespace: string, raw: unknown): Promise<KeyRecord> => {
    const id = parse(keyIdSchema, raw, 'key id');
    const k = await db.request('getKey', { id });
    if (!k || k.namespace !== namespace || k.revokedAt) throw new HttpError(404, `key ${id} not found`);
    return k;
  };

  route(
    r,
    'POST',
    '/namespaces/:ns/keys/:id/rotate',
    'admin',
    wrap(async (req, res) => {
      const namespace = await reach(res, req.params.ns);
      const had = await liveKey(namespace, req.params.id);
      const { key, record } = await makeKey(namespace, had.role, had.id);
      const rotated = { ...record, createdAt: had.createdAt, rotatedAt: new Date().toISOString() };
      await db.request('putKey', rotated);
      d.forget(had.id);
      res.json({ ...info(rotated), key });
    }),
  );

  route(
    r,
    'DELETE',
    '/namespaces/:ns/keys/:id',
    'admin',
    wrap(async (req, res) => {
      const namespace = await reach(res, req.params.ns);
      const had = await liveKey(namespace, req.params.id);
      const revoked = { ...had, revokedAt: new Date().toISOString() };
      await db.request('putKey', revoked);
      d.forget(had.id);
      res.json(info(revoked));
    }),
  );

  return r;
}
