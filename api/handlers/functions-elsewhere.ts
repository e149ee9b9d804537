// ANY /function/... and /ns/NS/function/... on the API's own origin, when functions are served on an origin
// of their own (--functions-port, as Lambda function URLs and OpenWhisk web actions have one): the API's
// origin (the dashboard's) then never answers with a function's content. With the functions' origin known,
// a 308 sends the caller to the same path and query there (method and body kept, as 308 keeps them);
// without it (an API listening beyond loopback with no --functions-origin), 404 says where functions are.
import type { Router } from 'express';
import { ISOLATION_HEADERS } from '../../common/web-headers.js';
import { HttpError } from '../http.js';
import { route, router } from '../routes.js';
import { WEB_PATH } from './web.js';

export interface FunctionsElsewhere {
  port: number; // the functions' own listener
  origin?: string; // where callers reach it (scheme://host[:port]), if known
}

export function functionsElsewhereRouter(o: FunctionsElsewhere): Router {
  const r = router();
  route(r, 'ALL', WEB_PATH, 'public', (req, res) => {
    // The redirect's small page quotes the path it was asked for: sandboxed as any answer on a web path.
    for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    if (!o.origin)
      throw new HttpError(404, `functions are served on their own origin (port ${o.port}), not on the API's: call ${req.path} there`);
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(308, `${o.origin}${req.originalUrl}`);
  });
  return r;
}
