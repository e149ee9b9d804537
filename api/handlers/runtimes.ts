// POST /registerRuntime, GET /runtimes, GET /runtime/:name, DELETE /runtime/:name. Runtimes of the
// default namespace are shared by every namespace, and so the operator's: only the operator registers,
// replaces or removes them (a key of the default namespace too is refused). One registered in another
// namespace is private to it and, under the same name, stands in for the shared one there; the operator
// may fix which runtimes and which isolation a namespace's functions use (its quotas `runtimes` and
// `isolation`, checked by tenancy/quotas.ts), and a private runtime must keep to them.
import type { Router } from 'express';
import { RuntimeInputSchema, RuntimeSchema, nameSchema, type Runtime } from '../../common/model.js';
import { bareName, DEFAULT_NAMESPACE } from '../../common/namespace.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import type { Quotas } from '../tenancy/quotas.js';
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

const SHARED = 'is shared by every namespace: only the operator registers, replaces or removes a shared runtime';

// `quotas`: the namespaces' rules on runtimes (unset: none, as for a router used alone).
export function runtimesRouter(db: DbClient, quotas?: Pick<Quotas, 'runtimeAllowed'>): Router {
  const r = router();

  route(
    r,
    'POST',
    '/registerRuntime',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const input = parse(RuntimeInputSchema, req.body, 'runtime');
      // The seed names a runtime by its image ("image":"pythonruntime" -> GET /runtimes ["pythonruntime"]).
      const name = input.name ?? input.image.replace(/[:@].*$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
      const qualified = scope.q(name);
      if (qualified === name && !scope.operator)
        throw new HttpError(403, `runtime ${name} would be a runtime of the default namespace, which ${SHARED}`);
      if (qualified !== name) await quotas?.runtimeAllowed(scope.namespace, { name, isolation: input.isolation }, 'register');
      const runtime = parse(RuntimeSchema, { ...input, name: qualified }, 'runtime');
      const saved = await db.request('putRuntime', runtime);
      res.status(201).json({ ...saved, name });
    }),
  );

  route(
    r,
    'GET',
    '/runtimes',
    'developer',
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

  route(
    r,
    'GET',
    '/runtime/:name',
    'developer',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const rt = await resolveRuntime(db, scopeOf(res), name);
      if (!rt) throw new HttpError(404, `runtime ${name} not found`);
      res.json({ ...rt, name });
    }),
  );

  route(
    r,
    'DELETE',
    '/runtime/:name',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const own = scope.q(name);
      if (own === name && !scope.operator) throw new HttpError(403, `runtime ${name} ${SHARED}`);
      if (own !== name && !(await db.request('getRuntime', { name: own })) && (await db.request('getRuntime', { name })))
        throw new HttpError(403, `runtime ${name} ${SHARED}`);
      if (!(await db.request('getRuntime', { name: own }))) throw new HttpError(404, `runtime ${name} not found`);
      // The functions that use it, named as this caller may see them: a private runtime has only its own
      // namespace's; the operator, who alone removes a shared one, sees every namespace's.
      const users = (await db.request('listFunctions', {})).filter((f) => f.runtimeName === own);
      if (users.length > 0) {
        const named = users.slice(0, 5).map((f) => (scope.owns(f.functionName) ? bareName(f.functionName) : f.functionName));
        throw new HttpError(409, `runtime ${name} is used by ${users.length} function(s) (${named.join(', ')}): delete them first`);
      }
      const { deleted } = await db.request('deleteRuntime', { name: own });
      if (!deleted) throw new HttpError(404, `runtime ${name} not found`);
      res.json({ deleted: name });
    }),
  );

  return r;
}
