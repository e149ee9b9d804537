// GET /nodes, GET /health
import { Router } from 'express';
import type { DbClient } from '../../db/client.js';
import type { Broker } from '../broker.js';
import { wrap } from '../http.js';

export function nodesRouter(db: DbClient, broker: Broker): Router {
  const r = Router();

  r.get('/nodes', (_req, res) => {
    const now = Date.now();
    res.json(
      [...broker.scheduler.nodes.values()].map((n) => ({
        id: n.info.id,
        state: n.state,
        capacity: n.info.capacity,
        running: n.inflight.size,
        policy: n.info.policy,
        labels: n.info.labels,
        miniworkers: n.load.miniworkers,
        warm: n.load.warm,
        lastSeenMsAgo: now - n.lastSeen,
        joinedAt: new Date(n.joinedAt).toISOString(),
      })),
    );
  });

  r.get(
    '/health',
    wrap(async (_req, res) => {
      const db_ok = await db.request('ping', {}).then(
        () => true,
        () => false,
      );
      const alive = [...broker.scheduler.nodes.values()].filter((n) => n.state === 'alive').length;
      res.status(db_ok ? 200 : 503).json({ ok: db_ok, db: db_ok ? 'up' : 'down', nodes: alive, queued: broker.scheduler.queueLength });
    }),
  );

  return r;
}
