// DELETE /call/:callNum — cancels a queued or running call: it ends ERROR, cancelled, at once; its container
// is killed; it is never run again. 404 for an unknown call, 409 for one that already ended.
import type { Router } from 'express';
import { cancelCall, type CancelDeps } from '../cancel.js';
import { parse, positiveInt, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { scopeOf } from '../tenancy/scope.js';

export function cancelRouter(d: CancelDeps): Router {
  const r = router();
  route(
    r,
    'DELETE',
    '/call/:callNum',
    'invoker',
    wrap(async (req, res) => {
      const callNum = parse(positiveInt, req.params.callNum, 'call number');
      const scope = scopeOf(res);
      res.json(await cancelCall(d, callNum, (call) => scope.sees(call)));
    }),
  );
  return r;
}
