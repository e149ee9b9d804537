// POST /registerRuntime, GET /runtimes, GET /runtime/:name, DELETE /runtime/:name. Runtimes of the
// default namespace are shared by every namespace; one registered in another namespace is private to it
// and, under the same name, stands in for the shared one there.
import { Router } from 'express';
import { RuntimeInputSchema, RuntimeSchema, nameSchema, type Runtime } from '../../common/model.js';
import { bareName, DEFAULT_NAMESPACE } from '../../common/namespace.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';
import { scopeOf, type Scope } from '../tenancy/scope.js';

// The runtime a name means in a scope: its namespace's own, else the shared one.
export async function resolveRuntime(db: DbClient, scope: Scope, name: string): Promise<Runtime | null> {
  const own = await db.request('getRuntime', { name: scope.q(name) });
  return own ?? (scope.q(name) === name ? null : await db.request('getRuntime', { name }));
}

// Shared runtimes and the namespace's own (which hide shared ones of the same name), as stored.
async function visibleRuntimes(db: DbClient, scope: Scope): Promise<Runtime[]> {
  const all = await db.request('listRuntimes', {});
  const own = all.filter((rt) => scope.owns(rt.name));
  if (scope.namespace === DEFAULT_NAMESPACE) return own; // the shared ones
  const ownNames = new Set(own.map((rt) => bareName(rt.name)));
  const shared = all.filter((rt) => rt.name === bareName(rt.name) && !ownNames.has(rt.name));
  return [...shared, ...own];
}

export function runtimesRouter(db: DbClient): Router {
  const r = Router();

  r.post(
    '/registerRuntime',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const input = parse(RuntimeInputSchema, req.body, 'runtime');
      // The seed names a runtime by its image ("image":"pythonruntime" -> GET /runtimes ["pythonruntime"]).
      const name = input.name ?? input.image.replace(/[:@].*$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
      const runtime = parse(RuntimeSchema, { ...input, name: scope.q(name) }, 'runtime');
      const saved = await db.request('putRuntime', runtime);
      res.status(201).json({ ...saved, name });
    }),
  );

  r.get(
    '/runtimes',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const list = (await visibleRuntimes(db, scope)).map((rt) => ({
        ...rt,
        name: bareName(rt.name),
        ...(rt.name !== bareName(rt.name) ? { private: true } : {}),
      }));
      res.json(req.query.detail === 'true' ? list : list.map((rt) => rt.name));
    }),
  );

  r.get(
    '/runtime/:name',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const rt = await resolveRuntime(db, scopeOf(res), name);
      if (!rt) throw new HttpError(404, `runtime ${name} not found`);
      res.json({ ...rt, name });
    }),
  );

  r.delete(
    '/runtime/:name',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const own = scope.q(name);
      if (own !== name && !(await db.request('getRuntime', { name: own })) && (await db.request('getRuntime', { name })))
        throw new HttpError(403, `runtime ${name} is shared by every namespace: only the operator removes it`);
      const { deleted } = await db.request('deleteRuntime', { name: own });
      if (!deleted) throw new HttpError(404, `runtime ${name} not found`);
      res.json({ deleted: name });
    }),
  );

  return r;
}
