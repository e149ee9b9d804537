// Policy `function`: right after a deploy, the nodes that keep functions warm prepare the new version and
// start a container holding it, so even its first call is a warm one.
import type { RequestHandler } from 'express';
import type { Logger } from '../common/log.js';
import { errText } from '../common/log.js';
import type { DbClient } from '../db/client.js';
import type { Broker } from './broker.js';

export function preloadAfterDeploy(db: DbClient, broker: Broker, log: Logger): RequestHandler {
  return (req, res, next) => {
    const m = /^\/registerFunction\/[^/]+\/([^/]+)\/?$/.exec(req.path);
    if (req.method === 'POST' && m) {
      res.on('finish', () => {
        if (res.statusCode !== 201) return;
        void preload(db, broker, decodeURIComponent(m[1]!)).catch((e) => log.warn({ err: errText(e) }, 'preload after deploy failed'));
      });
    }
    next();
  };
}

async function preload(db: DbClient, broker: Broker, name: string): Promise<void> {
  const fn = await db.request('getFunction', { name });
  if (!fn) return;
  const runtime = await db.request('getRuntime', { name: fn.runtimeName });
  if (!runtime) return;
  for (const n of broker.scheduler.nodes.values()) {
    if (n.state === 'alive' && (fn.settings.policy ?? n.info.policy) === 'function')
      broker.send(n.info.id, { type: 'preload', fn, runtime });
  }
}
