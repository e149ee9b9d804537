// POST /functions/:name/triggers, GET /functions/:name/triggers[/:id], DELETE /functions/:name/triggers/:id,
// POST /functions/:name/triggers/:id/pause and /resume: the broker triggers of a function (api/triggers),
// stored by the DB service and consumed by a TriggerRunner this router makes and starts. A trigger is
// the function's namespace's: a developer of that namespace manages it; its calls keep to the namespace's
// quotas as any call does. Its password is never taken in clear: `auth.secret` names a secret of the
// namespace, which must exist.
import { randomBytes } from 'node:crypto';
import type { Request, Response, Router } from 'express';
import { nameSchema } from '../../common/model.js';
import { bareName } from '../../common/namespace.js';
import type { DbClient } from '../../db/client.js';
import { TriggerIdSchema, type Trigger } from '../../protocol/db.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { scopeOf } from '../tenancy/scope.js';
import { checkTrigger, settingsOf, TriggerBodySchema, triggerView } from '../triggers/model.js';
import type { TriggerAllow } from '../triggers/allow.js';
import type { TriggerRunner } from '../triggers/runner.js';

export interface TriggersDeps {
  db: DbClient;
  runner: Pick<TriggerRunner, 'poke'>;
  allow?: Pick<TriggerAllow, 'refusal'>; // where triggers may connect (unset: anywhere, as for a router used alone)
}

export function triggersRouter(d: TriggersDeps): Router {
  const fnExists = async (name: string): Promise<void> => {
    if (!(await d.db.request('getFunction', { name }))) throw new HttpError(404, `function ${bareName(name)} not found`);
  };
  const one = async (qname: string, id: string): Promise<Trigger> => {
    const t = (await d.db.request('listTriggers', { funcName: qname })).find((x) => x.id === id);
    if (!t) throw new HttpError(404, `function ${bareName(qname)} has no trigger ${id}`);
    return t;
  };
  const names = (req: Request, res: Response): { qname: string; id: string } => ({
    qname: scopeOf(res).q(parse(nameSchema, req.params.name, 'function name')),
    id: req.params.id === undefined ? '' : parse(TriggerIdSchema, req.params.id, 'trigger id'),
  });

  const r = router();
  route(
    r,
    'POST',
    '/functions/:name/triggers',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const { qname } = names(req, res);
      const body = parse(TriggerBodySchema, req.body ?? {}, 'trigger');
      const wrong = checkTrigger(body);
      if (wrong) throw new HttpError(400, wrong);
      const refused = await d.allow?.refusal(body.type, body.url);
      if (refused) throw new HttpError(400, `invalid url: ${refused}`);
      await fnExists(qname);
      if (body.auth?.secret) {
        const secrets = await d.db.request('listSecrets', { namespace: scope.namespace });
        if (!secrets.some((s) => s.name === body.auth?.secret))
          throw new HttpError(
            400,
            `invalid auth.secret: namespace ${scope.namespace} has no secret ${body.auth.secret} (PUT /secrets/NAME first)`,
          );
      }
      const t = await d.db.request('putTrigger', {
        id: randomBytes(8).toString('hex'),
        funcName: qname,
        type: body.type,
        url: body.url,
        source: body.source,
        ...(body.auth ? { auth: body.auth } : {}),
        settings: settingsOf(body),
        paused: body.paused ?? false,
        createdAt: new Date().toISOString(),
      });
      await d.runner.poke();
      res.status(201).json(triggerView(t));
    }),
  );
  route(
    r,
    'GET',
    '/functions/:name/triggers',
    'developer',
    wrap(async (req, res) => {
      const { qname } = names(req, res);
      const list = await d.db.request('listTriggers', { funcName: qname });
      if (list.length === 0) await fnExists(qname);
      res.json(list.map((t) => triggerView(t)));
    }),
  );
  route(
    r,
    'GET',
    '/functions/:name/triggers/:id',
    'developer',
    wrap(async (req, res) => {
      const { qname, id } = names(req, res);
      res.json(triggerView(await one(qname, id)));
    }),
  );
  route(
    r,
    'DELETE',
    '/functions/:name/triggers/:id',
    'developer',
    wrap(async (req, res) => {
      const { qname, id } = names(req, res);
      const { deleted } = await d.db.request('deleteTrigger', { funcName: qname, id });
      if (!deleted) throw new HttpError(404, `function ${bareName(qname)} has no trigger ${id}`);
      await d.runner.poke();
      res.json({ deleted: true, id });
    }),
  );
  for (const [verb, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    route(
      r,
      'POST',
      `/functions/:name/triggers/:id/${verb}`,
      'developer',
      wrap(async (req, res) => {
        const { qname, id } = names(req, res);
        const t = await d.db.request('pauseTrigger', { funcName: qname, id, paused });
        if (!t) throw new HttpError(404, `function ${bareName(qname)} has no trigger ${id}`);
        await d.runner.poke();
        res.json(triggerView(t));
      }),
    );
  }
  return r;
}
