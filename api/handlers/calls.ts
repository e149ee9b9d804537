// GET /calls (the seed's callstore {"c1": {...}}; ?format=list for an array, newest first) and GET /call/:n
import { Router } from 'express';
import { z } from 'zod';
import { CallStatusSchema, nameSchema } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';

const int = z.string().regex(/^\d+$/, 'must be a positive integer').transform(Number).pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER, 'is too large'));

const ListQuerySchema = z.object({
  funcName: nameSchema.optional(),
  status: CallStatusSchema.optional(),
  limit: int.optional(),
  before: int.optional(),
  format: z.enum(['store', 'list']).optional(),
});

export function callsRouter(db: DbClient): Router {
  const r = Router();

  r.get(
    '/calls',
    wrap(async (req, res) => {
      const q = parse(ListQuerySchema, req.query, 'query');
      if (q.format === 'list') {
        res.json(await db.request('listCalls', { funcName: q.funcName, status: q.status, limit: q.limit ?? 100, before: q.before, order: 'desc' }));
        return;
      }
      // The seed's form: an object keyed "c<N>" in call order. Bounded to the newest `limit` (default 1000).
      const newest = await db.request('listCalls', { funcName: q.funcName, status: q.status, limit: q.limit ?? 1000, before: q.before, order: 'desc' });
      const store: Record<string, unknown> = {};
      for (const c of newest.reverse()) store[`c${c.callNum}`] = c;
      res.json(store);
    }),
  );

  r.get(
    '/call/:callNum',
    wrap(async (req, res) => {
      const callNum = parse(int, req.params.callNum, 'call number');
      const call = await db.request('getCall', { callNum });
      if (!call) throw new HttpError(404, `call ${callNum} not found`);
      res.json(call);
    }),
  );

  return r;
}
