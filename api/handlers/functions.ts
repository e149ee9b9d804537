// POST /registerFunction/:runtime/:funcName (multipart field `module`; it answers once the version's build,
// its runtime's dependencies step, has ended, unless `wait=false`), GET /functions,
// GET /functions/:name[?version=N], DELETE /functions/:name, POST /functions/:name/rollback,
// DELETE /functions/:name/versions/:version (an old version goes, and its archive with it when nothing
// else holds it). A deploy and a rollback keep to the namespace's quotas and runtime rules
// (tenancy/quotas.ts); naming secrets in a deploy needs the admin role, as the secrets are the admin's.
// (the singular /function/NAME/... is the function's own web path: handlers/web.ts)
import type { Request, RequestHandler, Router } from 'express';
import multer from 'multer';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { inspectArchive } from '../../common/archive/index.js';
import {
  ENV_KEY_RE,
  ENV_VALUE_MAX,
  FunctionSettingsSchema,
  POLICIES,
  PolicySchema,
  SECRET_NAME_RE,
  SETTING_LIMITS,
  nameSchema,
  type FunctionMeta,
  type FunctionSettings,
  type Policy,
} from '../../common/model.js';
import { quote, readBackoff, readMemory, readTimeout, refuse, type Reading } from '../../common/units.js';
import { DbError, type DbClient } from '../../db/client.js';
import { HttpError, parse, positiveInt, wrap } from '../http.js';
import { bareName } from '../../common/namespace.js';
import { route, router } from '../routes.js';
import { atLeast, scopeOf, type Scope } from '../tenancy/scope.js';
import type { Quotas } from '../tenancy/quotas.js';
import { resolveRuntime } from './runtimes.js';
import { newBuild } from '../../common/build.js';
import type { Builds } from '../builds.js';

export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;

const L = SETTING_LIMITS;
const NUMBER_RE = /^(\d+(\.\d+)?|\.\d+)$/;

// A number within a setting's bounds, sent as a string (or a number, from a direct caller).
const readNumber =
  (expected: string, limits: { min: number; max: number }, whole: boolean) =>
  (v: unknown): Reading => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && NUMBER_RE.test(v.trim()) ? Number(v) : NaN;
    return Number.isFinite(n) && (!whole || Number.isInteger(n)) && n >= limits.min && n <= limits.max
      ? { ok: true, value: n }
      : refuse(expected, v);
  };

const BOOLEANS = new Map<string, boolean>([
  ['true', true],
  ['1', true],
  ['yes', true],
  ['false', false],
  ['0', false],
  ['no', false],
]);
const readBool = (v: unknown): Reading<boolean> => {
  const b = typeof v === 'boolean' ? v : typeof v === 'string' ? BOOLEANS.get(v.trim().toLowerCase()) : undefined;
  return b === undefined ? refuse('true or false (or 1/0, yes/no)', v) : { ok: true, value: b };
};

const readPolicy = (v: unknown): Reading<Policy> => {
  const r = PolicySchema.safeParse(v);
  return r.success ? { ok: true, value: r.data } : refuse(`one of ${POLICIES.join(', ')} (unset: the node's policy)`, v);
};

// The calling conventions the stored schema knows, so the two cannot disagree.
const FormatSchema = FunctionSettingsSchema.shape.format.unwrap();
const FORMATS = FormatSchema.options;
type Format = (typeof FORMATS)[number];
const readFormat = (v: unknown): Reading<Format> => {
  const r = FormatSchema.safeParse(v);
  return r.success ? { ok: true, value: r.data } : refuse(`one of ${FORMATS.join(', ')} (unset: auto)`, v);
};

// The stored schema's own check, so the handler and the store cannot disagree on what a handler may be.
const readHandler = (v: unknown): Reading<string> => {
  const r = FunctionSettingsSchema.shape.handler.safeParse(v);
  return r.success && r.data !== undefined
    ? { ok: true, value: r.data }
    : refuse('FILE.EXPORT naming a file inside the function, such as index.handler or lib/main.run', v);
};

const ENV_EXPECTED = 'KEY=VALUE (repeatable) or a JSON object such as {"KEY": "VALUE"}';
const ENV_KEY_EXPECTED = 'a KEY of letters, digits and _, not starting with a digit';

// `env` as KEY=VALUE items (one field, or several when repeated) and/or JSON objects, merged in order.
function readEnv(v: unknown): Reading<Record<string, string>> {
  const items = Array.isArray(v) ? (v as unknown[]) : [v];
  const out: Record<string, string> = {};
  const put = (k: string, val: string): Reading<Record<string, string>> | null => {
    if (!ENV_KEY_RE.test(k)) return refuse(ENV_KEY_EXPECTED, k);
    if (val.length > ENV_VALUE_MAX) return refuse(`values of at most ${ENV_VALUE_MAX} characters`, `${val.length} characters for ${k}`);
    out[k] = val;
    return null;
  };
  for (const item of items) {
    if (typeof item !== 'string') return refuse(ENV_EXPECTED, item);
    const t = item.trim();
    if (t.startsWith('{')) {
      let obj: unknown;
      try {
        obj = JSON.parse(t);
      } catch {
        obj = undefined;
      }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return refuse(ENV_EXPECTED, item);
      for (const [k, val] of Object.entries(obj)) {
        if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean')
          return refuse(`the value of ${quote(k)} to be a string, number or boolean`, val);
        const bad = put(k, String(val));
        if (bad) return bad;
      }
    } else {
      const eq = t.indexOf('=');
      if (eq <= 0) return refuse(ENV_EXPECTED, item);
      const bad = put(t.slice(0, eq), t.slice(eq + 1));
      if (bad) return bad;
    }
  }
  return { ok: true, value: out };
}

// `secrets` as names: comma separated, repeated fields, or a JSON array; each must name a secret.
const SECRETS_EXPECTED = 'secret names separated by commas (or repeated), such as db-password,api-token';
function readSecrets(v: unknown): Reading<string[]> {
  const items = (Array.isArray(v) ? (v as unknown[]) : [v]).flatMap((item) => {
    if (typeof item !== 'string') return [item];
    const t = item.trim();
    if (t.startsWith('[')) {
      try {
        return JSON.parse(t) as unknown[];
      } catch {
        return [item];
      }
    }
    return t === '' ? [] : t.split(',').map((x) => x.trim());
  });
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string' || !SECRET_NAME_RE.test(item)) return refuse(SECRETS_EXPECTED, item);
    if (!out.includes(item)) out.push(item);
  }
  return { ok: true, value: out };
}

// A setting read by `read`; its refusal becomes a zod issue at the setting's path, so parse() (api/http.ts)
// words it like every other bad input: "invalid function settings: memory: expected ..., got "12x"".
const setting = <T>(read: (v: unknown) => Reading<T>) =>
  z
    .unknown()
    .transform((v, ctx): T => {
      const r = read(v);
      if (r.ok) return r.value;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: r.error });
      return z.NEVER;
    })
    .optional();

// Settings come as extra multipart fields or query parameters (strings; arrays when repeated); fields win
// over the query. Each is read into its stored form here; unset ones get their defaults below.
const SettingsInputSchema = z
  .object({
    timeout: setting(readTimeout),
    memory: setting(readMemory),
    cpus: setting(readNumber(`a number of CPUs such as 0.5, 1 or 2 (${L.cpus.min} to ${L.cpus.max})`, L.cpus, false)),
    pids: setting(readNumber(`a whole number of processes from ${L.pids.min} to ${L.pids.max}`, L.pids, true)),
    policy: setting(readPolicy),
    network: setting(readBool),
    retry: setting(readBool),
    retries: setting(
      readNumber(`a whole number of retries from ${L.retries.min} to ${L.retries.max} (unset: ${L.retries.default})`, L.retries, true),
    ),
    retryBackoff: setting(readBackoff),
    concurrency: setting(readNumber(`a whole number of calls from ${L.concurrency.min} to ${L.concurrency.max}`, L.concurrency, true)),
    maxContainers: setting(
      readNumber(`a whole number of containers per node from ${L.maxContainers.min} to ${L.maxContainers.max}`, L.maxContainers, true),
    ),
    containerConcurrency: setting(
      readNumber(
        `a whole number of calls one container runs at once from ${L.containerConcurrency.min} to ${L.containerConcurrency.max} (unset: ${L.containerConcurrency.default})`,
        L.containerConcurrency,
        true,
      ),
    ),
    minWarm: setting(
      readNumber(`a whole number of containers kept warm across the nodes from ${L.minWarm.min} to ${L.minWarm.max}`, L.minWarm, true),
    ),
    handler: setting(readHandler),
    env: setting(readEnv),
    secrets: setting(readSecrets),
    format: setting(readFormat),
    public: setting(readBool),
    rateLimit: setting(
      readNumber(
        `a whole number of web requests per second from ${L.rateLimit.min} to ${L.rateLimit.max} (unset: ${L.rateLimit.default})`,
        L.rateLimit,
        true,
      ),
    ),
  })
  .strip();

export function settingsFrom(req: Request): FunctionSettings {
  // Fields it does not know (the archive's, a client's own) are dropped here, not refused.
  const raw = parse(SettingsInputSchema, { ...(req.query as object), ...(req.body as object) }, 'function settings');
  const settings = parse(FunctionSettingsSchema, raw, 'function settings');
  if ((settings.containerConcurrency ?? 1) > 1 && settings.policy === 'none')
    throw new HttpError(
      400,
      'invalid function settings: containerConcurrency runs several calls in one kept container, which policy none never keeps: choose policy function or runtime',
    );
  if (settings.minWarm && settings.policy === 'none')
    throw new HttpError(
      400,
      'invalid function settings: minWarm keeps containers loaded, which policy none never uses: choose policy function or runtime',
    );
  return settings;
}

// Every stored version of the scope's functions (what the archive-bytes quota counts).
export async function storedVersions(db: DbClient, scope: Scope): Promise<FunctionMeta[]> {
  const own = (await db.request('listFunctions', {})).filter((f) => scope.owns(f.functionName));
  return (await Promise.all(own.map((f) => db.request('listVersions', { name: f.functionName })))).flat();
}

// How long a deploy waits for its build at most: a step's own limit (5 min on the nodes) and an image pull.
const BUILD_WAIT_MS = 10 * 60_000;

// `wait=false` (a field or the query): the deploy answers at once, its build still running.
function waitFor(req: Request): boolean {
  const v = (req.body as Record<string, unknown> | undefined)?.wait ?? req.query.wait;
  if (v === undefined) return true;
  const r = readBool(Array.isArray(v) ? v[0] : v);
  if (!r.ok) throw new HttpError(400, `invalid wait: ${r.error}`);
  return r.value;
}

// The version once its build ended, or as it stands when the deploy stops waiting (not asked to, no node
// to build it yet, or past BUILD_WAIT_MS): the build goes on, and GET /functions/NAME?version=N shows it.
async function deployed(builds: Builds, meta: FunctionMeta, wait: boolean): Promise<FunctionMeta> {
  const ended = builds.follow(meta);
  if (!wait || !builds.canBuild()) return meta;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), BUILD_WAIT_MS)));
  const fn = await Promise.race([ended, late]).finally(() => clearTimeout(timer));
  return fn ?? meta;
}

// A build's error within an HTTP error's length (api/http.ts keeps its first 1000 characters): its start
// (what failed) and its end (the tool's last words).
const shortened = (e: string): string => (e.length <= 800 ? e : `${e.slice(0, 80)} ... ${e.slice(-700)}`);

// `quotas`: the namespaces' limits and runtime rules (unset: none, as for a router used alone). `builds`:
// versions whose runtime has a dependencies step are built at deploy (unset: at their first call, per node).
export function functionsRouter(db: DbClient, quotas?: Pick<Quotas, 'deployRoom' | 'fits' | 'runtimeAllowed'>, builds?: Builds): Router {
  const r = router();
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

  route(
    r,
    'POST',
    '/registerFunction/:runtime/:funcName',
    'developer',
    receive,
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const runtimeAsked = parse(nameSchema, req.params.runtime, 'runtime name');
      const name = parse(nameSchema, req.params.funcName, 'function name');
      const functionName = scope.q(name);
      const runtime = await resolveRuntime(db, scope, runtimeAsked);
      if (!runtime) throw new HttpError(404, `runtime ${runtimeAsked} not found`);
      const runtimeName = runtime.name;
      const file = req.file;
      if (!file)
        throw new HttpError(400, "the archive is missing: send it as the multipart field 'module' (e.g. curl -F module=@fn.tar.gz)");
      const settings = settingsFrom(req);
      const wait = waitFor(req);
      if (settings.secrets.length > 0 && !atLeast(scope.actor, 'admin'))
        throw new HttpError(
          403,
          `naming secrets (${settings.secrets.join(', ')}) in a deploy needs the admin role, as the secrets are the admin's; this key is ${scope.actor}`,
        );
      await quotas?.fits(scope.namespace, settings);
      await quotas?.runtimeAllowed(scope.namespace, { name: bareName(runtimeName), isolation: runtime.isolation }, 'deploy');
      await quotas?.deployRoom(scope.namespace, { functionName, size: file.size }, () => storedVersions(db, scope));
      // Checked whole before anything is stored: a refused archive writes nothing.
      const summary = await inspectArchive(file.buffer);
      const digest = createHash('sha256').update(file.buffer).digest('hex');
      await db.request('putArchive', { digest }, [file.buffer]);
      const build = builds ? newBuild(runtime.dependencies, new Date()) : undefined;
      const add = (): Promise<FunctionMeta> =>
        db.request('addFunction', {
          functionName,
          runtimeName,
          digest,
          size: file.size,
          format: summary.format,
          originalname: file.originalname?.slice(0, 1024),
          settings,
          ...(build ? { build } : {}),
        });
      // The archive went in between (the last other version that held it was removed): stored again, once.
      const meta = await add().catch(async (e: unknown) => {
        if (!(e instanceof DbError && e.code === 'NOT_FOUND' && e.message.startsWith('archive '))) throw e;
        await db.request('putArchive', { digest }, [file.buffer]);
        return add();
      });
      // Its build runs now, on a node; the answer waits for it unless told not to (or no node is there yet).
      const built = build && builds ? await deployed(builds, meta, wait) : meta;
      if (built.build?.state === 'failed')
        throw new HttpError(
          422,
          `deployed ${name} version ${built.version}, but its build failed, so its calls end in ERROR until a fixed version is deployed: ${shortened(built.build.error ?? '')}`,
        );
      if (built.build) res.locals.preloadOnBuild = true; // preloaded when its build ends (api/builds.ts), not here
      res.status(201).json({ ...built, files: summary.files.slice(0, 50) });
    }),
  );

  route(
    r,
    'GET',
    '/functions',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const list = (await db.request('listFunctions', {})).filter((f) => scope.owns(f.functionName));
      res.json(req.query.detail === 'true' ? list : list.map((f) => bareName(f.functionName)));
    }),
  );

  route(
    r,
    'GET',
    '/functions/:name',
    'developer',
    wrap(async (req, res) => {
      const bare = parse(nameSchema, req.params.name, 'function name');
      const name = scopeOf(res).q(bare);
      // ?version=N: that version (its build, say), else the current one.
      const version = req.query.version === undefined ? undefined : parse(positiveInt, req.query.version, 'version');
      const fn = await db.request('getFunction', { name, version });
      if (!fn) throw new HttpError(404, version ? `function ${bare} has no version ${version}` : `function ${bare} not found`);
      const versions = await db.request('listVersions', { name });
      res.json({
        ...fn,
        versions: versions.map((v) => ({
          version: v.version,
          digest: v.digest,
          size: v.size,
          createdAt: v.createdAt,
          ...(v.build ? { build: v.build.state } : {}),
        })),
      });
    }),
  );

  // A rollback makes an old version run again: it keeps to the namespace's rules as they are now.
  route(
    r,
    'POST',
    '/functions/:name/rollback',
    'developer',
    wrap(async (req, res) => {
      const scope = scopeOf(res);
      const bare = parse(nameSchema, req.params.name, 'function name');
      const name = scope.q(bare);
      const body = parse(z.object({ version: z.number().int().min(1).optional() }).default({}), req.body ?? {}, 'rollback');
      const fn = await db.request('getFunction', { name });
      if (!fn) throw new HttpError(404, `function ${bare} not found`);
      const target = body.version ?? fn.version - 1;
      const old = target >= 1 ? await db.request('getFunction', { name, version: target }) : null;
      if (!old) throw new HttpError(404, `function ${bare} has no version ${target}`);
      await quotas?.fits(scope.namespace, old.settings);
      const runtime = await db.request('getRuntime', { name: old.runtimeName });
      if (!runtime) throw new HttpError(409, `version ${target} of ${bare} runs on runtime ${bareName(old.runtimeName)}, which is gone`);
      await quotas?.runtimeAllowed(scope.namespace, { name: bareName(runtime.name), isolation: runtime.isolation }, 'deploy');
      const meta = await db.request('setCurrentVersion', { name, version: target });
      if (!meta) throw new HttpError(404, `function ${bare} has no version ${target}`);
      res.json(meta);
    }),
  );

  route(
    r,
    'DELETE',
    '/functions/:name',
    'developer',
    wrap(async (req, res) => {
      const bare = parse(nameSchema, req.params.name, 'function name');
      const { deleted } = await db.request('deleteFunction', { name: scopeOf(res).q(bare) });
      if (!deleted) throw new HttpError(404, `function ${bare} not found`);
      res.json({ deleted: bare });
    }),
  );

  // An old version goes (its archive too, unless another version holds the same one): the current one
  // stays until another is current (rollback, deploy) or the function goes.
  route(
    r,
    'DELETE',
    '/functions/:name/versions/:version',
    'developer',
    wrap(async (req, res) => {
      const bare = parse(nameSchema, req.params.name, 'function name');
      const version = parse(positiveInt, req.params.version, 'version');
      const { deleted, current } = await db.request('deleteVersion', { name: scopeOf(res).q(bare), version });
      if (current)
        throw new HttpError(
          409,
          `version ${version} is the current version of ${bare}: roll back or deploy first (DELETE /functions/${bare} removes it all)`,
        );
      if (!deleted) throw new HttpError(404, `function ${bare} has no version ${version}`);
      res.json({ deleted: bare, version });
    }),
  );

  return r;
}
