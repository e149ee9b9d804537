// The API's first handler: finds the route a request will reach (api/routes.ts findRoute, express's own
// matchers over the app's own stack) and authorizes the request for the rule that route declared, before
// any body is read or any handler runs. A request that reaches no route (another case, a trailing or
// doubled slash, a percent-encoded letter, "..", a method the path does not take) needs the operator:
// without credentials it gets 401, with a key 403, and only the operator learns that there is no route (404).
import type { Express, RequestHandler } from 'express';
import { findRoute, type Authorizer } from '../routes.js';
import type { Identity } from './identity.js';
import { UNMATCHED } from './policy.js';

export function gate(app: Express, identity: Identity): RequestHandler {
  return (req, res, next) => {
    const found = findRoute(app, req.method, req.path);
    const authorizer: Authorizer = {
      authorized: found?.route,
      authorize: (rq, rs, rule) => identity.authorize(rq, rs, rule),
    };
    res.locals.authorizer = authorizer;
    identity.authorize(req, res, found?.rule ?? UNMATCHED).then((go) => {
      if (go) next();
    }, next);
  };
}
