// DELETE /call/:callNum — cancels a queued or running call: it ends ERROR, cancelled, at once; its container
// is killed; it is never run again. 404 for an unknown call, 409 for one that already ended.
import { Router } from 'express';
import { z } from 'zod';
import { cancelCall, type CancelDeps } from '../cancel.js';
import { parse, wrap } from '../http.js';

const CallNumSchema = z
  .string()
  .regex(/^\d+$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER, 'is too large'));

export function cancelRouter(d: CancelDeps): Router {
  const r = Router();
  r.delete(
    '/call/:callNum',
    wrap(async (req, res) => {
      const callNum = parse(CallNumSchema, req.params.callNum, 'call number');
      res.json(await cancelCall(d, callNum));
    }),
  );
  return r;
}
