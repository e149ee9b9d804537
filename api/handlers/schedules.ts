// POST /functions/:name/schedules, GET /functions/:name/schedules, DELETE /functions/:name/schedules/:id:
// the cron triggers of a function, stored by the DB service and fired by a ScheduleRunner (api/schedules.ts)
// that this router makes and starts (it stops itself when the DB client is closed). A new schedule keeps to
// the namespace's quotas: how many schedules it holds, and how close a key's schedule may tick.
import { randomBytes } from 'node:crypto';
import type { Router } from 'express';
import { z } from 'zod';
import { nameSchema } from '../../common/model.js';
import { bareName } from '../../common/namespace.js';
import { scopeOf } from '../tenancy/scope.js';
import { errText, type Logger } from '../../common/log.js';
import type { DbClient } from '../../db/client.js';
import type { Schedule } from '../../protocol/db.js';
import type { Calls } from '../calls.js';
import { checkParams, HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { cronOf, MISSED, ScheduleError, ScheduleRunner, shortestGapS } from '../schedules.js';
import { DEFAULT_SCHEDULE_INTERVAL_S, type Quotas } from '../tenancy/quotas.js';

export interface SchedulesDeps {
  db: DbClient;
  calls: Pick<Calls, 'invoke'>;
  log: Logger;
  syncMs?: number;
  quotas?: Pick<Quotas, 'scheduleRoom' | 'of'>; // the namespaces' limits (unset: none, as for a router used alone)
}

const BodySchema = z
  .object({
    cron: z.string({ required_error: 'is required', invalid_type_error: 'must be a string' }).min(1, 'is required').max(256),
    timezone: z.string({ invalid_type_error: 'must be a string' }).min(1).max(64).optional(),
    params: z.unknown().optional(),
    missed: z.enum(MISSED, { errorMap: () => ({ message: 'must be "skip" or "once"' }) }).optional(),
  })
  .strict();

const IdSchema = z.string().regex(/^[a-f0-9]{1,64}$/, 'is not a schedule id');

// A schedule as the API shows it: as stored, with its next tick.
function view(runner: ScheduleRunner, s: Schedule): Schedule & { next: string | null } {
  let next: string | null = null;
  try {
    next = runner.nextOf(s)?.toISOString() ?? null;
  } catch {
    next = null;
  }
  return { ...s, next };
}

export function schedulesRouter(d: SchedulesDeps): Router {
  const runner = new ScheduleRunner({
    db: d.db,
    invoke: (funcName, params, version, opts) => d.calls.invoke(funcName, params, version, opts),
    log: d.log,
    syncMs: d.syncMs,
  });
  // The DB service may still be starting: try again until the schedules are read.
  const start = (): void => {
    runner.start().catch((e: unknown) => {
      if ((e as { code?: unknown }).code === 'CLOSED') return;
      d.log.warn({ err: errText(e) }, 'schedules not read yet; trying again');
      setTimeout(start, 1000).unref();
    });
  };
  start();

  const fnExists = async (name: string): Promise<void> => {
    if (!(await d.db.request('getFunction', { name }))) throw new HttpError(404, `function ${bareName(name)} not found`);
  };

  const r = router();
  route(
    r,
    'POST',
    '/functions/:name/schedules',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const name = parse(nameSchema, req.params.name, 'function name');
      const qname = scope.q(name);
      const body = parse(BodySchema, req.body ?? {}, 'schedule');
      const timezone = body.timezone ?? 'UTC';
      let cron;
      try {
        cron = cronOf(body.cron, timezone);
      } catch (e) {
        if (e instanceof ScheduleError) throw new HttpError(400, e.message);
        throw e;
      }
      checkParams(body.params);
      await fnExists(qname);
      if (d.quotas) {
        const below = (await d.quotas.of(scope.namespace)).scheduleInterval ?? DEFAULT_SCHEDULE_INTERVAL_S;
        const gap = scope.operator ? Infinity : shortestGapS(cron, below);
        await d.quotas.scheduleRoom(scope.namespace, gap, scope.operator, async () => {
          return (await d.db.request('listSchedules', { namespace: scope.namespace })).length;
        });
      }
      const s = await d.db.request('putSchedule', {
        id: randomBytes(8).toString('hex'),
        funcName: qname,
        cron: body.cron.trim(),
        timezone,
        params: body.params ?? {},
        missed: body.missed ?? 'skip',
        createdAt: new Date().toISOString(),
      });
      runner.add(s);
      res.status(201).json(view(runner, s));
    }),
  );
  route(
    r,
    'GET',
    '/functions/:name/schedules',
    'developer',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'function name');
      const qname = scopeOf(res).q(name);
      const list = await d.db.request('listSchedules', { funcName: qname });
      if (list.length === 0) await fnExists(qname);
      res.json(list.map((s) => view(runner, s)));
    }),
  );
  route(
    r,
    'DELETE',
    '/functions/:name/schedules/:id',
    'developer',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'function name');
      const qname = scopeOf(res).q(name);
      const id = parse(IdSchema, req.params.id, 'schedule id');
      const { deleted } = await d.db.request('deleteSchedule', { funcName: qname, id });
      if (!deleted) throw new HttpError(404, `function ${name} has no schedule ${id}`);
      runner.remove(id);
      res.json({ deleted: true, id });
    }),
  );
  return r;
}
