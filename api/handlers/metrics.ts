// GET /metrics (Prometheus text format), GET /metrics/functions (per-function counts and recent latency as
// JSON, for the dashboard) and GET /metrics/functions/timeline (the last hour, minute by minute, per
// function, for the dashboard's charts). A key sees its namespace's functions only, named bare; the
// platform's own series (nodes, queue) are the operator's.
import type { Router } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/model.js';
import type { Metrics } from '../metrics.js';
import { parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { bareName } from '../../common/namespace.js';
import { scopeOf, type Scope } from '../tenancy/scope.js';

// The entries of a by-function record that the scope owns, keyed by bare name.
function own<T>(byFunction: Record<string, T>, scope: Scope): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [name, v] of Object.entries(byFunction)) if (scope.owns(name)) out[bareName(name)] = v;
  return out;
}

// Prometheus text cut to the series of the scope's functions: comments stay, every sample without a
// function label of its namespace goes, and the label shows the bare name.
function ownSeries(text: string, scope: Scope): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) {
      out.push(line);
      continue;
    }
    const m = /\bfunction="([^"]*)"/.exec(line);
    if (!m || !scope.owns(m[1]!)) continue;
    out.push(line.replace(m[0], `function="${bareName(m[1]!)}"`));
  }
  return out.join('\n');
}

const TimelineQuerySchema = z.object({ funcName: nameSchema.optional() });

export function metricsRouter(metrics: Metrics): Router {
  const r = router();

  route(
    r,
    'GET',
    '/metrics',
    'developer',
    wrap(async (_req, res) => {
      const text = await metrics.text();
      const scope = scopeOf(res);
      res.type(metrics.contentType).send(scope.operator ? text : ownSeries(text, scope));
    }),
  );

  route(r, 'GET', '/metrics/functions', 'developer', (_req, res) => {
    res.json(own(metrics.functions(), scopeOf(res)));
  });

  // ?funcName=NAME: that function only. The answer (a TimelineView, api/metrics.ts), oldest minute first,
  // the last one being the current minute (still filling); a function without a call in the hour is left out:
  //   {"minuteMs": 60000, "minutes": [t0, ..., t59],                  // each minute's start, epoch ms
  //    "functions": {"NAME": {"calls": [60 counts], "errors": [60 counts],
  //                           "p50": [60 ms or null], "p95": [60 ms or null]}}}
  // Latency is from acceptance to final state; calls are counted in the minute they ended. It covers the
  // calls this API process saw end, and those stored that ended in the hour before it started.
  route(
    r,
    'GET',
    '/metrics/functions/timeline',
    'developer',
    wrap(async (req, res) => {
      const q = parse(TimelineQuerySchema, req.query, 'query');
      const scope = scopeOf(res);
      const view = metrics.timeline.view(q.funcName === undefined ? undefined : scope.q(q.funcName));
      res.json({ ...view, functions: own(view.functions, scope) });
    }),
  );

  return r;
}
