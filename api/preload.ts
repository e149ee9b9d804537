// Containers ready before the first call: right after a deploy, every alive node where the function's
// effective policy (its own `policy` setting, else the node's) is `function` prepares the new version and
// starts a container holding it, and every node where it is `runtime` keeps stem cells of its runtime.
// A version with a build at deploy is preloaded once its build is ready.
import type { RequestHandler } from 'express';
import type { Logger } from '../common/log.js';
import { errText } from '../common/log.js';
import type { DbClient } from '../db/client.js';
import type { NodeControl, NodeRegistry } from './broker.js';
import { scopeOf } from './tenancy/scope.js';

const PRELOADED = new Set(['function', 'runtime']);

export function preloadAfterDeploy(db: Pick<DbClient, 'request'>, nodes: NodeRegistry & NodeControl, log: Logger): RequestHandler {
  return (req, res, next) => {
    const m = /^\/(?:registerFunction\/[^/]+|registerImageFunction)\/([^/]+)\/?$/.exec(req.path);
    if (req.method === 'POST' && m) {
      res.on('finish', () => {
        // A version with a build is preloaded when its build is ready (api/builds.ts).
        if (res.statusCode !== 201 || res.locals.preloadOnBuild === true) return;
        const name = scopeOf(res).q(decodeURIComponent(m[1]!));
        void preload(db, nodes, name).catch((e) => log.warn({ err: errText(e) }, 'preload after deploy failed'));
      });
    }
    next();
  };
}

export async function preload(db: Pick<DbClient, 'request'>, nodes: NodeRegistry & NodeControl, name: string): Promise<number> {
  const fn = await db.request('getFunction', { name });
  if (!fn) return 0;
  const runtime = await db.request('getRuntime', { name: fn.runtimeName });
  if (!runtime) return 0;
  let sent = 0;
  for (const n of nodes.alive()) {
    if (!PRELOADED.has(fn.settings.policy ?? n.info.policy)) continue;
    nodes.tell(n.info.id, { type: 'preload', fn, runtime });
    sent++;
  }
  return sent;
}
