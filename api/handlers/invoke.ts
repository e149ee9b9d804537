// POST /invokeFunction ({funcName, params}; `wait` in the body or query answers with the finished call,
// `wait: N` waits at most N seconds; an idempotency key, `Idempotency-Key` or `idempotencyKey`, answers the
// call it made before instead of making another, with `Idempotent-Replayed: true`: see ../idempotency.ts)
// (the function's own web path, /function/:name/..., is in web.ts); a callback URL, `X-Callback-Url` (as
// OpenFaaS takes it) or `callbackUrl`, gets the call's final record when it ends (../callbacks): checked
// here against the operator's allow-list, a URL refused is a 400 naming the field and no call is made.
import type { Request, Router } from 'express';
import { z } from 'zod';
import { nameSchema, type FunctionMeta } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import type { Calls } from '../calls.js';
import { checkParams, HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { callerOf, idempotencyKey, idempotencyOf, keyField, REPLAYED_HEADER, replayOutcome } from '../idempotency.js';
import { AllowList, CallbackUrlError } from '../../common/allow-list.js';
import { scopeOf } from '../tenancy/scope.js';

// "name" or "name@version"
export const targetSchema = z
  .string()
  .regex(/^[^@]+(@\d+)?$/, 'must be NAME or NAME@VERSION')
  .transform((s, ctx) => {
    const [name, v] = s.split('@');
    const n = nameSchema.safeParse(name);
    if (!n.success) {
      ctx.addIssue({ code: 'custom', message: n.error.issues[0]?.message ?? 'bad name' });
      return z.NEVER;
    }
    return { name: n.data, version: v ? Number(v) : undefined };
  });

const InvokeBodySchema = z
  .object({
    funcName: targetSchema,
    params: z.unknown().optional(),
    version: z.number().int().min(1).optional(),
    // true: until the call ends (within its timeout and a minute); N: at most N seconds, then 202 and
    // the call as it stands (clients whose HTTP stack gives up on a slow answer wait in rounds)
    wait: z.union([z.boolean(), z.number().int().min(1).max(3600)]).optional(),
    // run it twice in parallel: the first good result wins, the other run is cancelled (seed 001)
    redundant: z.boolean().optional(),
    // the same key for the same request within the retention window: the call it made, not a new one
    idempotencyKey: z.string().regex(keyField.pattern, keyField.message).optional(),
    // where the call's final record is POSTed when it ends (checked by callbackUrl() below)
    callbackUrl: z.string().optional(),
  })
  .strict();

const isTrue = (v: unknown): boolean => v === 'true' || v === '1' || v === '';

export const CALLBACK_HEADER = 'X-Callback-Url';

// The callback URL of a request, normalised, once the allow-list let it through: the header, or the body
// field (both: they must be the same). A refused one is a 400 naming the field it came in.
export async function callbackUrl(req: Request, allow: AllowList, field?: string): Promise<string | undefined> {
  const values = req.headersDistinct[CALLBACK_HEADER.toLowerCase()];
  if (values && values.length !== 1) throw new HttpError(400, `invalid ${CALLBACK_HEADER} header: sent more than once`);
  const header = values?.[0];
  if (header !== undefined && field !== undefined && header !== field)
    throw new HttpError(400, `invalid callbackUrl: the ${CALLBACK_HEADER} header and the callbackUrl field differ (send one)`);
  const raw = field ?? header;
  if (raw === undefined) return undefined;
  try {
    return (await allow.check(raw)).href;
  } catch (e) {
    if (!(e instanceof CallbackUrlError)) throw e;
    throw new HttpError(400, `invalid ${field !== undefined ? 'callbackUrl' : `${CALLBACK_HEADER} header`}: ${e.message}`);
  }
}

// How long a blocking call may wait: the function's own timeout plus time to queue and start a container.
export const waitBudgetMs = (fn: FunctionMeta): number => fn.settings.timeout * 1000 + 60_000;

// `allow`: where callbacks may go (default: loopback only, as with no --callback-allow).
export function invokeRouter(db: DbClient, calls: Calls, idempotencyTtlS: number, allow = AllowList.parse(undefined)): Router {
  const r = router();

  route(
    r,
    'POST',
    '/invokeFunction',
    'invoker',
    wrap(async (req, res) => {
      const body = parse(InvokeBodySchema, req.body, 'invocation');
      checkParams(body.params);
      const wait = body.wait ?? isTrue(req.query.wait);
      const redundant = body.redundant ?? isTrue(req.query.redundant);
      const scope = scopeOf(res);
      const funcName = scope.q(body.funcName.name);
      const key = idempotencyKey(req, body.idempotencyKey);
      const idempotency =
        key === undefined ? undefined : idempotencyOf(key, idempotencyTtlS, callerOf(scope, false, funcName), funcName, body.params);
      const version = body.version ?? body.funcName.version;
      const callback = await callbackUrl(req, allow, body.callbackUrl); // before anything is made
      const { call, fn, replayed } = await calls.invoke(funcName, body.params, version, {
        redundant,
        idempotency,
        ...(scope.keyId ? { by: scope.keyId } : {}),
        ...(callback ? { callbackUrl: callback } : {}),
      });
      if (replayed) res.setHeader(REPLAYED_HEADER, 'true');
      if (!wait) {
        res.status(202).location(`/call/${call.callNum}`).json(call);
        return;
      }
      const budget = waitBudgetMs(fn);
      const ms = typeof wait === 'number' ? Math.min(wait * 1000, budget) : budget;
      // A replayed call may have ended already, or be running since the first request.
      const ended = await (replayed ? replayOutcome(calls.waiters, call, ms) : calls.waiters.wait(call.callNum, ms));
      // The record as the call's table keeps it: the caller is answered what GET /call/N answers.
      res.status(ended ? 200 : 202).json(ended?.call ?? (await db.request('getCall', { callNum: call.callNum })) ?? call);
    }),
  );

  return r;
}
