// Secrets of the caller's namespace: POST /secrets {name, value} (201; 409 if it exists), PUT
// /secrets/:name {value} (made or replaced), GET /secrets (names, versions and sizes: a value is never
// answered), DELETE /secrets/:name. A value is UTF-8 text (`value`) or bytes (`valueBase64`). The DB
// service seals it (db/tenancy.ts); functions that name it read it as a file (README "Secrets"). Secrets are
// the admin's: every route here needs the admin role.
import type { Router } from 'express';
import { z } from 'zod';
import { secretNameSchema, SECRET_VALUE_MAX } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { scopeOf } from '../tenancy/scope.js';

const ValueSchema = z
  .object({
    value: z.string().optional(),
    valueBase64: z
      .string()
      .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
      .optional(),
  })
  .strict()
  .refine((b) => (b.value === undefined) !== (b.valueBase64 === undefined), 'send the value as exactly one of value or valueBase64');

function valueOf(b: z.infer<typeof ValueSchema>): Buffer {
  const v = b.value !== undefined ? Buffer.from(b.value, 'utf8') : Buffer.from(b.valueBase64 ?? '', 'base64');
  if (v.length > SECRET_VALUE_MAX) throw new HttpError(413, `a secret holds at most ${SECRET_VALUE_MAX} bytes; this one is ${v.length}`);
  return v;
}

export function secretsRouter(db: DbClient): Router {
  const r = router();

  route(
    r,
    'POST',
    '/secrets',
    'admin',
    wrap(async (req, res) => {
      const { name, ...rest } = parse(z.object({ name: secretNameSchema }).passthrough(), req.body, 'secret');
      const value = valueOf(parse(ValueSchema, rest, 'secret'));
      const namespace = scopeOf(res).namespace;
      if ((await db.request('listSecrets', { namespace })).some((s) => s.name === name))
        throw new HttpError(409, `secret ${name} exists: PUT /secrets/${name} replaces its value`);
      res.status(201).json(await db.request('putSecret', { namespace, name }, [value]));
    }),
  );

  route(
    r,
    'PUT',
    '/secrets/:name',
    'admin',
    wrap(async (req, res) => {
      const name = parse(secretNameSchema, req.params.name, 'secret name');
      const value = valueOf(parse(ValueSchema, req.body, 'secret'));
      res.json(await db.request('putSecret', { namespace: scopeOf(res).namespace, name }, [value]));
    }),
  );

  route(
    r,
    'GET',
    '/secrets',
    'admin',
    wrap(async (_req, res) => {
      res.json(await db.request('listSecrets', { namespace: scopeOf(res).namespace }));
    }),
  );

  route(
    r,
    'DELETE',
    '/secrets/:name',
    'admin',
    wrap(async (req, res) => {
      const name = parse(secretNameSchema, req.params.name, 'secret name');
      const { deleted } = await db.request('deleteSecret', { namespace: scopeOf(res).namespace, name });
      if (!deleted) throw new HttpError(404, `secret ${name} not found`);
      res.json({ deleted: name });
    }),
  );

  return r;
}
