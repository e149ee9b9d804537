// GET /metrics (Prometheus text format), GET /metrics/functions (per-function counts and recent latency as
// JSON, for the dashboard) and GET /metrics/functions/timeline (the last hour, minute by minute, per
// function, for the dashboard's charts).
import { Router } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/model.js';
import type { Metrics } from '../metrics.js';
import { parse, wrap } from '../http.js';

const TimelineQuerySchema = z.object({ funcName: nameSchema.optional() });

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

  // ?funcName=NAME: that function only. The answer (a TimelineView, api/metrics.ts), oldest minute first,
  // the last one being the current minute (still filling); a function without a call in the hour is left out:
  //   {"minuteMs": 60000, "minutes": [t0, ..., t59],                  // each minute's start, epoch ms
  //    "functions": {"NAME": {"calls": [60 counts], "errors": [60 counts],
  //                           "p50": [60 ms or null], "p95": [60 ms or null]}}}
  // Latency is from acceptance to final state; calls are counted in the minute they ended. It covers the
  // calls this API process saw end, and those stored that ended in the hour before it started.
  r.get(
    '/metrics/functions/timeline',
    wrap(async (req, res) => {
      const q = parse(TimelineQuerySchema, req.query, 'query');
      res.json(metrics.timeline.view(q.funcName));
    }),
  );

  return r;
}
