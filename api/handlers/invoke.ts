// POST /invokeFunction ({funcName, params}; `wait` in the body or query answers with the finished call,
// `wait: N` waits at most N seconds; an idempotency key, `Idempotency-Key` or `idempotencyKey`, answers the
// call it made before instead of making another, with `Idempotent-Replayed: true`: see ../idempotency.ts)
// (the function's own web path, /function/:name/..., is in web.ts)
import { Router } from 'express';
import { z } from 'zod';
import { nameSchema, type FunctionMeta } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { withOutcome, type Calls } from '../calls.js';
import { checkParams, parse, wrap } from '../http.js';
import { idempotencyKey, idempotencyOf, keyField, REPLAYED_HEADER, replayOutcome } from '../idempotency.js';

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
  })
  .strict();

const isTrue = (v: unknown): boolean => v === 'true' || v === '1' || v === '';

// How long a blocking call may wait: the function's own timeout plus time to queue and start a container.
export const waitBudgetMs = (fn: FunctionMeta): number => fn.settings.timeout * 1000 + 60_000;

export function invokeRouter(db: DbClient, calls: Calls, idempotencyTtlS: number): Router {
  const r = Router();

  r.post(
    '/invokeFunction',
    wrap(async (req, res) => {
      const body = parse(InvokeBodySchema, req.body, 'invocation');
      checkParams(body.params);
      const wait = body.wait ?? isTrue(req.query.wait);
      const redundant = body.redundant ?? isTrue(req.query.redundant);
      const key = idempotencyKey(req, body.idempotencyKey);
      const idempotency = key === undefined ? undefined : idempotencyOf(key, idempotencyTtlS, body.funcName.name, body.params);
      const version = body.version ?? body.funcName.version;
      const { call, fn, replayed } = await calls.invoke(body.funcName.name, body.params, version, { redundant, idempotency });
      if (replayed) res.setHeader(REPLAYED_HEADER, 'true');
      if (!wait) {
        res.status(202).location(`/call/${call.callNum}`).json(call);
        return;
      }
      const budget = waitBudgetMs(fn);
      const ms = typeof wait === 'number' ? Math.min(wait * 1000, budget) : budget;
      // A replayed call may have ended already, or be running since the first request.
      const outcome = await (replayed ? replayOutcome(calls.waiters, call, ms) : calls.waiters.wait(call.callNum, ms));
      const final = withOutcome((await db.request('getCall', { callNum: call.callNum })) ?? call, outcome);
      res.status(outcome ? 200 : 202).json(final);
    }),
  );

  return r;
}
