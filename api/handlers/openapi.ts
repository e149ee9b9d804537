// GET /openapi.json: the OpenAPI 3.1 description of this REST API (api/openapi.json, kept by hand and
// checked against real responses by test/openapi.e2e.test.ts).
import type { Router } from 'express';
import { route, router } from '../routes.js';
import { join } from 'node:path';
import { API_SOURCES } from './dashboard.js';

export function openapiRouter(): Router {
  const r = router();
  route(r, 'GET', '/openapi.json', 'invoker', (_req, res, next) => {
    res.type('application/json').sendFile(join(API_SOURCES, 'openapi.json'), (e) => e && next(e));
  });
  return r;
}
