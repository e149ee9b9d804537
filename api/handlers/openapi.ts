// GET /openapi.json: the OpenAPI 3.1 description of this REST API (api/openapi.json, kept by hand and
// checked against real responses by test/openapi.e2e.test.ts).
import { Router } from 'express';
import { join } from 'node:path';
import { API_SOURCES } from './dashboard.js';

export function openapiRouter(): Router {
  const r = Router();
  r.get('/openapi.json', (_req, res, next) => {
    res.type('application/json').sendFile(join(API_SOURCES, 'openapi.json'), (e) => e && next(e));
  });
  return r;
}
