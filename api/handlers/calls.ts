// GET /calls (the seed's callstore {"c1": {...}}; ?format=list for an array, newest first) and GET /call/:n
// (?wait=S: long-polls up to S seconds for the call to end; 202 while it has not)
import type { Router } from 'express';
import { z } from 'zod';
import { CallStatusSchema, isFinal, nameSchema } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import type { Calls } from '../calls.js';
import { HttpError, parse, positiveInt, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { waitBudgetMs } from './invoke.js';
import { scopeOf } from '../tenancy/scope.js';

const ListQuerySchema = z.object({
  funcName: nameSchema.optional(),
  status: CallStatusSchema.optional(),
  limit: positiveInt.optional(),
  before: positiveInt.optional(),
  format: z.enum(['store', 'list']).optional(),
});

const CallQuerySchema = z.object({ wait: positiveInt.pipe(z.number().max(300, 'is at most 300 seconds')).optional() });

export function callsRouter(db: DbClient, calls: Calls): Router {
  const r = router();

  route(
    r,
    'GET',
    '/calls',
    'invoker',
    wrap(async (req, res) => {
      const q = parse(ListQuerySchema, req.query, 'query');
      const scope = scopeOf(res);
      // Only the namespace's calls; an invoker's only its own.
      const mine = {
        funcName: q.funcName === undefined ? undefined : scope.q(q.funcName),
        namespace: scope.namespace,
        ...(scope.actor === 'invoker' ? { by: scope.keyId } : {}),
      };
      if (q.format === 'list') {
        res.json(await db.request('listCalls', { ...mine, status: q.status, limit: q.limit ?? 100, before: q.before, order: 'desc' }));
        return;
      }
      // The seed's form: an object keyed "c<N>" in call order. Bounded to the newest `limit` (default 1000).
      const newest = await db.request('listCalls', {
        ...mine,
        status: q.status,
        limit: q.limit ?? 1000,
        before: q.before,
        order: 'desc',
      });
      const store: Record<string, unknown> = {};
      for (const c of newest.reverse()) store[`c${c.callNum}`] = c;
      res.json(store);
    }),
  );

  route(
    r,
    'GET',
    '/call/:callNum',
    'invoker',
    wrap(async (req, res) => {
      const callNum = parse(positiveInt, req.params.callNum, 'call number');
      const { wait } = parse(CallQuerySchema, req.query, 'query');
      const stored = await db.request('getCall', { callNum });
      if (!stored || !scopeOf(res).sees(stored)) throw new HttpError(404, `call ${callNum} not found`);
      let call = stored;
      if (wait === undefined) {
        res.json(call);
        return;
      }
      // A waiting client waits no longer than a blocking invoke would have: the function's timeout and a
      // minute, counted from when the call was accepted. The header tells it how much of that is left.
      const hit = isFinal(call.status) ? null : await calls.meta.get(call.funcName, call.version);
      const budgetEnd = Date.parse(call.createdAt) + (hit ? waitBudgetMs(hit.fn) : 0);
      const ms = Math.min(wait * 1000, budgetEnd - Date.now());
      if (!isFinal(call.status) && ms > 0) {
        const ended = calls.waiters.wait(callNum, ms); // listening before looking again: no end is missed
        call = (await db.request('getCall', { callNum })) ?? call;
        if (!isFinal(call.status)) call = (await ended)?.call ?? call;
      }
      res.setHeader('X-Zfaas-Wait-Left', String(Math.max(0, Math.ceil((budgetEnd - Date.now()) / 1000))));
      res.status(isFinal(call.status) ? 200 : 202).json(call);
    }),
  );

  return r;
}
