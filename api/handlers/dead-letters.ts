// GET /dead-letters (calls that failed every run their function's `retries` allowed, newest first;
// ?funcName=NAME, ?limit=N), POST /dead-letters/:n/replay (a new call with the same params, to the
// function's current version unless the body names one; the dead letter leaves the list, marked
// `replayedAs`), DELETE /dead-letters/:n (it leaves the list without a replay).
import type { Router } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import type { Calls } from '../calls.js';
import { HttpError, parse, positiveInt, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { scopeOf } from '../tenancy/scope.js';

const ListQuerySchema = z.object({
  funcName: nameSchema.optional(),
  limit: positiveInt.pipe(z.number().max(10_000, 'is at most 10000')).optional(),
});

const ReplayBodySchema = z.object({ version: z.union([z.number().int().min(1), z.literal('same')]).optional() }).strict();

export function deadLettersRouter(db: Pick<DbClient, 'request'>, calls: Calls): Router {
  const r = router();

  route(
    r,
    'GET',
    '/dead-letters',
    'developer',
    wrap(async (req, res) => {
      const q = parse(ListQuerySchema, req.query, 'query');
      const scope = scopeOf(res);
      const funcName = q.funcName === undefined ? undefined : scope.q(q.funcName);
      res.json(await db.request('listDeadLetters', { funcName, namespace: scope.namespace, limit: q.limit ?? 100 }));
    }),
  );

  route(
    r,
    'POST',
    '/dead-letters/:callNum/replay',
    'developer',
    wrap(async (req, res) => {
      const callNum = parse(positiveInt, req.params.callNum, 'call number');
      const body = parse(ReplayBodySchema, req.body ?? {}, 'replay');
      const dead = await db.request('getCall', { callNum });
      if (!dead || !scopeOf(res).sees(dead)) throw new HttpError(404, `call ${callNum} not found`);
      if (dead.deadLetter !== 'listed') {
        throw new HttpError(
          409,
          dead.replayedAs
            ? `call ${callNum} was already replayed as call ${dead.replayedAs}`
            : `call ${callNum} is not a listed dead letter`,
        );
      }
      // Replayed, most often, after a fix was deployed: the current version, unless asked otherwise.
      const version = body.version === 'same' ? dead.version : body.version;
      const { call } = await calls.invoke(dead.funcName, dead.params, version, { replayOf: callNum });
      res.status(201).location(`/call/${call.callNum}`).json(call);
    }),
  );

  route(
    r,
    'DELETE',
    '/dead-letters/:callNum',
    'developer',
    wrap(async (req, res) => {
      const callNum = parse(positiveInt, req.params.callNum, 'call number');
      const had = await db.request('getCall', { callNum });
      if (!had || !scopeOf(res).sees(had)) throw new HttpError(404, `call ${callNum} not found`);
      const { call, changed } = await db.request('dismissDeadLetter', { callNum });
      if (!call) throw new HttpError(404, `call ${callNum} not found`);
      if (!changed) throw new HttpError(409, `call ${callNum} is not a listed dead letter`);
      res.json(call);
    }),
  );

  return r;
}
