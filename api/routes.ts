// Routes and the role each needs, declared in the one call that registers the route:
//   route(r, 'POST', '/namespaces/:ns/keys', 'admin', handler)
// Routers are case-sensitive and strict (router()): another case, a trailing or doubled slash, a
// percent-encoded letter or ".." make another path, which is no route and so needs the operator. The gate
// (tenancy/gate.ts) finds the route a request will reach by walking the app's own router stack with
// express's own matchers, in express's order, and authorizes it before any body is read; each route's
// first handler checks that the gate authorized that very route (else it authorizes the request for its
// own rule), so the rule applied is always the rule of the route that answers. checkRoutes() refuses an
// app with a route that declares no rule, a router that is not case-sensitive and strict, or a router
// mounted below the root (which the walk does not follow).
import { Router, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Rule, Need } from './tenancy/policy.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'ALL';

// The parts of express's router (the `router` package) the walk reads. checkRoutes() makes sure they are
// there, so that an express whose router changed shape stops the start instead of authorizing wrongly.
interface WalkRoute {
  path: unknown;
  methods: Record<string, boolean | undefined>;
  _handlesMethod(method: string): boolean;
}
interface WalkLayer {
  route?: WalkRoute;
  handle: unknown;
  slash?: boolean; // mounted at the root ('/'), for the whole path
  match(path: string): unknown;
}
interface WalkRouter {
  stack: WalkLayer[];
  caseSensitive?: boolean;
  strict?: boolean;
}

const RULES = new WeakMap<object, Rule>();

// What authorizes a request: set on res.locals by the gate. `authorized`: the route it authorized.
export interface Authorizer {
  authorized?: object;
  authorize(req: Request, res: Response, rule: Rule): Promise<boolean>; // false: the refusal is answered
}
export const authorizerOf = (res: Response): Authorizer | undefined => res.locals.authorizer as Authorizer | undefined;

export const router = (): Router => Router({ caseSensitive: true, strict: true });

// The route's own check: the gate authorized this route (or no gate runs: a router used alone, in tests,
// acts as the operator, as scopeOf() does), else the request is authorized here for this route's rule.
function guard(route: object, rule: Rule): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const a = authorizerOf(res);
    if (!a || a.authorized === route) return next();
    a.authorize(req, res, rule).then((go) => {
      if (go) {
        a.authorized = route;
        next();
      }
    }, next);
  };
}

export function route(r: Router, method: Method, path: string | string[] | RegExp, rule: Need | Rule, ...handlers: RequestHandler[]): void {
  const rt = r.route(path as string);
  const declared = typeof rule === 'string' ? { need: rule } : rule;
  RULES.set(rt, declared);
  const chain = [guard(rt, declared), ...handlers];
  if (method === 'GET') rt.get(chain);
  else if (method === 'POST') rt.post(chain);
  else if (method === 'PUT') rt.put(chain);
  else if (method === 'DELETE') rt.delete(chain);
  else rt.all(chain);
}

const isRouter = (h: unknown): h is WalkRouter => typeof h === 'function' && Array.isArray((h as { stack?: unknown }).stack);
const appRouter = (app: Express): WalkRouter => app.router as unknown as WalkRouter;

const matches = (layer: WalkLayer, path: string): boolean => {
  try {
    return !!layer.match(path);
  } catch {
    return false; // a param that does not decode: express answers 400, no route is reached
  }
};

export interface Found {
  route: object;
  rule?: Rule;
}

// The route express dispatches METHOD PATH to (HEAD reaches a GET route), or null when none takes it.
// The routes do not change once the app serves, so a path's answer is kept: a function's web path is
// asked for on every call of it (at most FOUND_MAX paths are kept; then the memory starts again).
const FOUND_MAX = 2048;
const foundIn = new WeakMap<Express, { layers: number; known: Map<string, Found | null> }>();
export function findRoute(app: Express, method: string, path: string): Found | null {
  const layers = appRouter(app).stack.length; // a handler added to the app: what was found may differ
  let memo = foundIn.get(app);
  if (memo?.layers !== layers) foundIn.set(app, (memo = { layers, known: new Map() }));
  const known = memo.known;
  const key = `${method} ${path}`;
  const had = known.get(key);
  if (had !== undefined) return had;
  const found = walkRoutes(app, method, path);
  if (known.size >= FOUND_MAX) known.clear();
  known.set(key, found);
  return found;
}

function walkRoutes(app: Express, method: string, path: string): Found | null {
  const walk = (r: WalkRouter): Found | null => {
    for (const layer of r.stack) {
      if (!matches(layer, path)) continue;
      if (layer.route) {
        if (layer.route._handlesMethod(method)) return { route: layer.route, rule: RULES.get(layer.route) };
      } else if (isRouter(layer.handle)) {
        const f = walk(layer.handle);
        if (f) return f;
      }
    }
    return null;
  };
  return walk(appRouter(app));
}

export interface Declared {
  method: string; // GET, POST, PUT, DELETE, or ALL (any method)
  path: string | RegExp;
  rule?: Rule;
}

// Every route of the app, in the order express tries them.
export function declaredRoutes(app: Express): Declared[] {
  const out: Declared[] = [];
  const walk = (r: WalkRouter): void => {
    for (const layer of r.stack) {
      if (layer.route) {
        const rt = layer.route;
        const paths = (Array.isArray(rt.path) ? rt.path : [rt.path]) as (string | RegExp)[];
        for (const [m, on] of Object.entries(rt.methods)) {
          if (!on) continue;
          for (const path of paths) out.push({ method: m === '_all' ? 'ALL' : m.toUpperCase(), path, rule: RULES.get(rt) });
        }
      } else if (isRouter(layer.handle)) walk(layer.handle);
    }
  };
  walk(appRouter(app));
  return out;
}

// Throws, naming each, when a route declares no rule, a router is not case-sensitive and strict, or a
// router is mounted below the root; `first` must be the app's first handler (the gate).
export function checkRoutes(app: Express, first: RequestHandler): void {
  const problems: string[] = [];
  const top = appRouter(app);
  if (top.stack[0]?.handle !== first) problems.push('the gate is not the first handler of the app');
  const walk = (r: WalkRouter, where: string): void => {
    if (r.caseSensitive !== true || r.strict !== true) problems.push(`${where} is not case-sensitive and strict`);
    for (const layer of r.stack) {
      if (typeof layer.match !== 'function') problems.push(`${where} has a layer express's router no longer matches this way`);
      if (layer.route) {
        if (typeof layer.route._handlesMethod !== 'function' || typeof layer.route.methods !== 'object')
          problems.push(`${where} has a route of an unknown shape`);
        else if (!RULES.get(layer.route))
          problems.push(`${Object.keys(layer.route.methods).join(',').toUpperCase()} ${String(layer.route.path)} declares no rule`);
      } else if (isRouter(layer.handle)) {
        if (layer.slash !== true) problems.push(`a router is mounted below the root in ${where}`);
        walk(layer.handle, 'a router');
      }
    }
  };
  walk(top, 'the app');
  if (problems.length)
    throw new Error(`the API's routes cannot all be authorized (register each with route(), on router()): ${problems.join('; ')}`);
}
