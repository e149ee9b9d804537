// POST /registerRuntime, GET /runtimes, GET /runtime/:name, DELETE /runtime/:name
import { Router } from 'express';
import { RuntimeInputSchema, RuntimeSchema, nameSchema } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';

export function runtimesRouter(db: DbClient): Router {
  const r = Router();

  r.post(
    '/registerRuntime',
    wrap(async (req, res) => {
      const input = parse(RuntimeInputSchema, req.body, 'runtime');
      // The seed names a runtime by its image ("image":"pythonruntime" -> GET /runtimes ["pythonruntime"]).
      const name = input.name ?? input.image.replace(/[:@].*$/, '').replace(/[^A-Za-z0-9._-]/g, '-');
      const runtime = parse(RuntimeSchema, { ...input, name }, 'runtime');
      const saved = await db.request('putRuntime', runtime);
      res.status(201).json(saved);
    }),
  );

  r.get(
    '/runtimes',
    wrap(async (req, res) => {
      const list = await db.request('listRuntimes', {});
      res.json(req.query.detail === 'true' ? list : list.map((rt) => rt.name));
    }),
  );

  r.get(
    '/runtime/:name',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const rt = await db.request('getRuntime', { name });
      if (!rt) throw new HttpError(404, `runtime ${name} not found`);
      res.json(rt);
    }),
  );

  r.delete(
    '/runtime/:name',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'runtime name');
      const { deleted } = await db.request('deleteRuntime', { name });
      if (!deleted) throw new HttpError(404, `runtime ${name} not found`);
      res.json({ deleted: name });
    }),
  );

  return r;
}
