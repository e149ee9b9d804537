// GET /metrics (Prometheus text format) and GET /metrics/functions (per-function counts and recent
// latency as JSON, for the dashboard).
import { Router } from 'express';
import type { Metrics } from '../metrics.js';
import { wrap } from '../http.js';

export function metricsRouter(metrics: Metrics): Router {
  const r = Router();

  r.get(
    '/metrics',
    wrap(async (_req, res) => {
      const text = await metrics.text();
      res.type(metrics.contentType).send(text);
    }),
  );

  r.get('/metrics/functions', (_req, res) => {
    res.json(metrics.functions());
  });

  return r;
}
