// GET /nodes, PUT /node/:id (resize its pools), GET /health
import type { Router } from 'express';
import type { DbClient } from '../../db/client.js';
import { NodeInfoSchema, NodeSettingsSchema } from '../../protocol/broker.js';
import { capacityOf, type NodeControl, type NodeRegistry } from '../broker.js';
import type { QueueView } from '../dispatcher.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';

const NodeIdSchema = NodeInfoSchema.shape.id;

export function nodesRouter(db: Pick<DbClient, 'request'>, nodes: NodeRegistry & NodeControl, queue: QueueView): Router {
  const r = router();

  // The nodes are shared by every namespace: what runs where is the operator's to see.
  route(r, 'GET', '/nodes', 'operator', (_req, res) => {
    const now = Date.now();
    res.json(
      nodes.list().map((n) => ({
        id: n.info.id,
        state: n.state,
        capacity: capacityOf(n),
        running: n.inflight.size,
        policy: n.info.policy,
        labels: n.info.labels,
        miniworkers: n.load.miniworkers,
        warm: n.load.warm,
        containers: n.load.containers,
        stems: n.load.stems,
        settings: n.load.settings,
        lastSeenMsAgo: now - n.lastSeen,
        joinedAt: new Date(n.joinedAt).toISOString(),
      })),
    );
  });

  // Pool sizes change on the running node; calls in flight are kept (shrinking waits for busy miniworkers).
  route(r, 'PUT', '/node/:id', 'operator', (req, res) => {
    const id = parse(NodeIdSchema, req.params.id, 'node id');
    const n = nodes.get(id);
    if (!n || n.state !== 'alive') throw new HttpError(404, `node ${id} not found`);
    if (req.body === undefined) throw new HttpError(400, 'send the settings as a JSON object (content-type: application/json)');
    const settings = parse(NodeSettingsSchema, req.body, 'node settings');
    nodes.tell(n.info.id, { type: 'configure', ...settings });
    res.status(202).json({ id: n.info.id, requested: settings });
  });

  // Open, for load balancers and probes: it tells nothing that needs a credential.
  route(
    r,
    'GET',
    '/health',
    'open',
    wrap(async (_req, res) => {
      const db_ok = await db.request('ping', {}).then(
        () => true,
        () => false,
      );
      const alive = nodes.alive().length;
      res.status(db_ok ? 200 : 503).json({ ok: db_ok, db: db_ok ? 'up' : 'down', nodes: alive, queued: queue.queueLength });
    }),
  );

  return r;
}
