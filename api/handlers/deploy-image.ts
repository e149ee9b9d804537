// POST /registerImageFunction/:funcName: deploys a container-image function, a function whose image serves
// its calls over HTTP on $PORT (docs/functions.md, "Container-image functions"). The body (JSON, or the
// query) names `image` (a reference in Docker's grammar), `port` (default 8080) and `readiness` (seconds its
// server has to accept connections, default 10), beside the settings registerFunction takes. The image is
// not pulled here (the API has no engine): each node checks it has it or pulls it at its first container,
// and a call there ends ERROR saying why when it cannot. Each deploy is a new version, as with archives.
import type { Request, Router } from 'express';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { imageArchive } from '../../common/image-archive.js';
import { IMAGE_PORT_DEFAULT, IMAGE_RUNTIME, IMAGE_RUNTIME_RECORD, READINESS_LIMITS, type ImageSpec } from '../../common/image-function.js';
import { parseImageRef } from '../../common/image-ref.js';
import { nameSchema, type FunctionMeta } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { atLeast, scopeOf } from '../tenancy/scope.js';
import type { Quotas } from '../tenancy/quotas.js';
import { settingsFrom, storedVersions } from './functions.js';

const field = (req: Request, name: string): unknown => (req.body as Record<string, unknown> | undefined)?.[name] ?? req.query[name];

// A whole number within bounds, sent as a number or (a form field, the query) a string; unset: the default.
const whole = (what: string, min: number, max: number, dflt: number) =>
  z.preprocess(
    (v) => (v === undefined || v === '' ? dflt : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
    z
      .number({ invalid_type_error: `expected ${what}: a whole number from ${min} to ${max}` })
      .int(`expected ${what}: a whole number`)
      .min(min, `expected ${what} from ${min}`)
      .max(max, `expected ${what} up to ${max}`),
  );

// The image fields of the request (the settings are read as registerFunction reads them).
export const ImageDeploySchema = z.object({
  image: z
    .string({
      required_error: 'the image is missing: send "image" (e.g. {"image": "acme/api:1.2"})',
      invalid_type_error: 'must be a string',
    })
    .superRefine((ref, ctx) => {
      const r = parseImageRef(ref);
      if (typeof r === 'string') ctx.addIssue({ code: z.ZodIssueCode.custom, message: r });
    }),
  port: whole('the port its server listens on', 1, 65535, IMAGE_PORT_DEFAULT),
  readiness: whole(
    'the seconds its server has to accept connections',
    READINESS_LIMITS.min,
    READINESS_LIMITS.max,
    READINESS_LIMITS.default,
  ),
});

// The image spec a request asks for, or a 400 saying what was expected.
export function imageSpecFrom(req: Request): ImageSpec {
  const raw = { image: field(req, 'image'), port: field(req, 'port'), readiness: field(req, 'readiness') };
  const r = parse(ImageDeploySchema, raw, 'image function');
  return { ref: r.image, port: r.port, readiness: r.readiness };
}

export function deployImageRouter(db: DbClient, quotas?: Pick<Quotas, 'deployRoom' | 'fits' | 'runtimeAllowed'>): Router {
  const r = router();
  route(
    r,
    'POST',
    '/registerImageFunction/:funcName',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const name = parse(nameSchema, req.params.funcName, 'function name');
      const functionName = scope.q(name);
      const image = imageSpecFrom(req);
      const settings = settingsFrom(req);
      if (settings.secrets.length > 0 && !atLeast(scope.actor, 'admin'))
        throw new HttpError(
          403,
          `naming secrets (${settings.secrets.join(', ')}) in a deploy needs the admin role, as the secrets are the admin's; this key is ${scope.actor}`,
        );
      await quotas?.fits(scope.namespace, settings);
      // A namespace held to a list of runtimes runs images only when the list names zfaas-image.
      await quotas?.runtimeAllowed(scope.namespace, { name: IMAGE_RUNTIME }, 'deploy');
      const archive = imageArchive(image);
      await quotas?.deployRoom(scope.namespace, { functionName, size: archive.length }, () => storedVersions(db, scope));
      if (!(await db.request('getRuntime', { name: IMAGE_RUNTIME }))) await db.request('putRuntime', IMAGE_RUNTIME_RECORD);
      const digest = createHash('sha256').update(archive).digest('hex');
      await db.request('putArchive', { digest }, [archive]);
      const meta: FunctionMeta = await db.request('addFunction', {
        functionName,
        runtimeName: IMAGE_RUNTIME,
        digest,
        size: archive.length,
        format: 'tar',
        originalname: image.ref,
        settings,
        image,
      });
      res.status(201).json(meta);
    }),
  );
  return r;
}
