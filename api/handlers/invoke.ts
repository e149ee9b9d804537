// POST /invokeFunction ({funcName, params}; `wait` in the body or query answers with the finished call,
// `wait: N` waits at most N seconds)
// (the function's own web path, /function/:name/..., is in web.ts)
import { Router } from 'express';
import { z } from 'zod';
import { nameSchema, type FunctionMeta } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { withOutcome, type Calls } from '../calls.js';
import { checkParams, parse, wrap } from '../http.js';

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
  })
  .strict();

const isTrue = (v: unknown): boolean => v === 'true' || v === '1' || v === '';

// How long a blocking call may wait: the function's own timeout plus time to queue and start a container.
export const waitBudgetMs = (fn: FunctionMeta): number => fn.settings.timeout * 1000 + 60_000;

export function invokeRouter(db: DbClient, calls: Calls): Router {
  const r = Router();

  r.post(
    '/invokeFunction',
    wrap(async (req, res) => {
      const body = parse(InvokeBodySchema, req.body, 'invocation');
      checkParams(body.params);
      const wait = body.wait ?? isTrue(req.query.wait);
      const redundant = body.redundant ?? isTrue(req.query.redundant);
      const { call, fn } = await calls.invoke(body.funcName.name, body.params, body.version ?? body.funcName.version, { redundant });
      if (!wait) {
        res.status(202).location(`/call/${call.callNum}`).json(call);
        return;
      }
      const budget = waitBudgetMs(fn);
      const outcome = await calls.waiters.wait(call.callNum, typeof wait === 'number' ? Math.min(wait * 1000, budget) : budget);
      const final = withOutcome((await db.request('getCall', { callNum: call.callNum })) ?? call, outcome);
      res.status(outcome ? 200 : 202).json(final);
    }),
  );

  return r;
}
