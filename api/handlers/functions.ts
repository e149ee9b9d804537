// POST /registerFunction/:runtime/:funcName (multipart field `module`), GET /functions,
// GET /function/:name, DELETE /function/:name, POST /function/:name/rollback
import { Router, type Request, type RequestHandler } from 'express';
import multer from 'multer';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { inspectArchive } from '../../common/archive.js';
import { FunctionSettingsSchema, nameSchema, type FunctionSettings } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError, parse, wrap } from '../http.js';

export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const num = z.union([
  z.number(),
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a number')
    .transform(Number),
]);

// Settings come as extra multipart fields or query parameters; fields win over the query.
const SettingsInputSchema = z
  .object({
    timeout: num.optional(),
    memory: num.optional(),
    cpus: num.optional(),
    pids: num.optional(),
    policy: z.string().optional(),
    network: bool.optional(),
    retry: bool.optional(),
    concurrency: num.optional(),
    handler: z.string().optional(),
    env: z.union([z.string(), z.array(z.string())]).optional(),
  })
  .passthrough();

function parseEnv(v: string | string[] | undefined): Record<string, string> {
  if (v === undefined) return {};
  const items = Array.isArray(v) ? v : [v];
  const out: Record<string, string> = {};
  for (const item of items) {
    const t = item.trim();
    if (t.startsWith('{')) {
      let obj: unknown;
      try {
        obj = JSON.parse(t);
      } catch {
        throw new HttpError(400, 'invalid env: not a JSON object');
      }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new HttpError(400, 'invalid env: not a JSON object');
      for (const [k, val] of Object.entries(obj)) {
        if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean')
          throw new HttpError(400, `invalid env: the value of "${k.slice(0, 60)}" is not a string, number or boolean`);
        out[k] = String(val);
      }
    } else {
      const eq = t.indexOf('=');
      if (eq <= 0) throw new HttpError(400, `invalid env entry "${t.slice(0, 60)}": expected KEY=VALUE`);
      out[t.slice(0, eq)] = t.slice(eq + 1);
    }
  }
  return out;
}

export function settingsFrom(req: Request): FunctionSettings {
  const raw = parse(SettingsInputSchema, { ...(req.query as object), ...(req.body as object) }, 'function settings');
  const { env, timeout, memory, cpus, pids, policy, network, retry, concurrency, handler } = raw;
  return parse(
    FunctionSettingsSchema,
    { timeout, memory, cpus, pids, policy, network, retry, concurrency, handler, env: parseEnv(env) },
    'function settings',
  );
}

export function functionsRouter(db: DbClient): Router {
  const r = Router();
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 64, fieldSize: 64 * 1024 },
  });

  // multer's own refusals (limits) and busboy's (a broken form) are the sender's fault: 4xx, never 500.
  const module = upload.single('module');
  const receive: RequestHandler = (req, res, next) =>
    module(req, res, (err?: unknown) => {
      if (!err) return next();
      const e = err as Error & { code?: string };
      if (e.name === 'MulterError') return next(new HttpError(e.code === 'LIMIT_FILE_SIZE' ? 413 : 400, `upload refused: ${e.message}`));
      next(new HttpError(400, `upload refused: ${e instanceof Error ? e.message : String(e)}`));
    });

  r.post(
    '/registerFunction/:runtime/:funcName',
    receive,
    wrap(async (req, res) => {
      const runtimeName = parse(nameSchema, req.params.runtime, 'runtime name');
      const functionName = parse(nameSchema, req.params.funcName, 'function name');
      if (!(await db.request('getRuntime', { name: runtimeName }))) throw new HttpError(404, `runtime ${runtimeName} not found`);
      const file = req.file;
      if (!file)
        throw new HttpError(400, "the archive is missing: send it as the multipart field 'module' (e.g. curl -F module=@fn.tar.gz)");
      const settings = settingsFrom(req);
      // Checked whole before anything is stored: a refused archive writes nothing.
      const summary = await inspectArchive(file.buffer);
      const digest = createHash('sha256').update(file.buffer).digest('hex');
      await db.request('putArchive', { digest }, [file.buffer]);
      const meta = await db.request('addFunction', {
        functionName,
        runtimeName,
        digest,
        size: file.size,
        format: summary.format,
        originalname: file.originalname?.slice(0, 1024),
        settings,
      });
      res.status(201).json({ ...meta, files: summary.files.slice(0, 50) });
    }),
  );

  r.get(
    '/functions',
    wrap(async (req, res) => {
      const list = await db.request('listFunctions', {});
      res.json(req.query.detail === 'true' ? list : list.map((f) => f.functionName));
    }),
  );

  r.get(
    '/function/:name',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'function name');
      const fn = await db.request('getFunction', { name });
      if (!fn) throw new HttpError(404, `function ${name} not found`);
      const versions = await db.request('listVersions', { name });
      res.json({ ...fn, versions: versions.map((v) => ({ version: v.version, digest: v.digest, size: v.size, createdAt: v.createdAt })) });
    }),
  );

  r.post(
    '/function/:name/rollback',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'function name');
      const body = parse(z.object({ version: z.number().int().min(1).optional() }).default({}), req.body ?? {}, 'rollback');
      const fn = await db.request('getFunction', { name });
      if (!fn) throw new HttpError(404, `function ${name} not found`);
      const target = body.version ?? fn.version - 1;
      const meta = target >= 1 ? await db.request('setCurrentVersion', { name, version: target }) : null;
      if (!meta) throw new HttpError(404, `function ${name} has no version ${target}`);
      res.json(meta);
    }),
  );

  r.delete(
    '/function/:name',
    wrap(async (req, res) => {
      const name = parse(nameSchema, req.params.name, 'function name');
      const { deleted } = await db.request('deleteFunction', { name });
      if (!deleted) throw new HttpError(404, `function ${name} not found`);
      res.json({ deleted: name });
    }),
  );

  return r;
}
