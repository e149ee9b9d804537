// POST /batch/:funcName (a JSON array of params, or JSON lines), GET /batches, GET /batch/:id,
// GET /batch/:id/results. Mounted before the API's 1 MB JSON parser: a batch body may be larger, yet
// each item is held to what the params of one call may be (as deep, as large), item by item.
import express, { type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { JsonLinesError, parseJsonLines } from '../../common/jsonlines.js';
import { nameSchema } from '../../common/model.js';
import { MAX_BATCH_ITEMS, TooManyBatches, type Batch, type Batches } from '../batches.js';
import { checkParams, HttpError, parse, wrap } from '../http.js';
import { route, router } from '../routes.js';
import { scopeOf, type Scope } from '../tenancy/scope.js';

const BODY_LIMIT = '32mb';
const ITEM_MAX_BYTES = 1024 * 1024; // the params of one call, as POST /invokeFunction's body limit has them
const NDJSON_TYPES = [
  'application/x-ndjson',
  'application/ndjson',
  'application/jsonl',
  'application/json-lines',
  'application/x-jsonlines',
];

const targetSchema = z
  .string()
  .regex(/^[^@]+(@[1-9]\d*)?$/, 'must be NAME or NAME@VERSION')
  .transform((s) => {
    const [name, v] = s.split('@');
    return { name: name!, version: v ? Number(v) : undefined };
  })
  .pipe(z.object({ name: nameSchema, version: z.number().optional() }));

const ItemsSchema = z
  .array(z.unknown())
  .min(1, 'a batch needs at least one item')
  .max(MAX_BATCH_ITEMS, `a batch holds at most ${MAX_BATCH_ITEMS} items`);

const int = (max: number) => z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(0).max(max));
const PageSchema = z.object({ offset: int(MAX_BATCH_ITEMS).optional(), limit: int(1000).optional() });

function parseLines(text: string): unknown[] {
  try {
    return parseJsonLines(text);
  } catch (e) {
    if (e instanceof JsonLinesError) throw new HttpError(400, `bad JSON on line ${e.line} of the batch: ${e.reason}`);
    throw e;
  }
}

function itemsOf(req: Request): unknown[] {
  if (typeof req.body === 'string') return parse(ItemsSchema, parseLines(req.body), 'batch');
  if (req.body === undefined)
    throw new HttpError(400, 'send the params as a JSON array (application/json) or JSON lines (application/x-ndjson)');
  return parse(ItemsSchema, req.body, 'batch (expected a JSON array of params)');
}

// Each item as the params of one call: no deeper, and no larger than POST /invokeFunction takes them.
export function checkItems(items: unknown[]): void {
  items.forEach((item, i) => {
    try {
      checkParams(item);
    } catch (e) {
      if (e instanceof HttpError) throw new HttpError(e.status, `item ${i} of the batch: ${e.message}`);
      throw e;
    }
    const bytes = Buffer.byteLength(JSON.stringify(item) ?? '');
    if (bytes > ITEM_MAX_BYTES)
      throw new HttpError(
        413,
        `item ${i} of the batch: a call's params are at most ${ITEM_MAX_BYTES} bytes of JSON, this item is ${bytes}`,
      );
  });
}

// A batch is its namespace's, and an invoker's batches are those it sent.
const sees = (scope: Scope, b: Batch): boolean => scope.sees({ funcName: b.funcName, by: b.by });

export function batchesRouter(batches: Batches): Router {
  const r = router();
  const find = (res: Response, raw: unknown): Batch => {
    const id = parse(z.string().regex(/^[a-f0-9]{1,64}$/, 'is not a batch id'), raw, 'batch id');
    const b = batches.get(id);
    if (!b || !sees(scopeOf(res), b))
      throw new HttpError(404, `batch ${id} not found (batches are kept in the API's memory: the newest 100, until it restarts)`);
    return b;
  };

  route(
    r,
    'POST',
    '/batch/:target',
    'invoker',
    express.json({ limit: BODY_LIMIT }),
    express.text({ type: NDJSON_TYPES, limit: BODY_LIMIT }),
    wrap(async (req, res) => {
      const target = parse(targetSchema, req.params.target, 'function name');
      const items = itemsOf(req);
      checkItems(items);
      let b: Batch;
      try {
        const scope = scopeOf(res);
        b = await batches.start(scope.q(target.name), target.version, items, scope.keyId);
      } catch (e) {
        if (e instanceof TooManyBatches) throw new HttpError(429, e.message);
        throw e;
      }
      res.status(202).location(`/batch/${b.id}`).json({ batchId: b.id, size: b.size, funcName: b.funcName, version: b.version });
    }),
  );

  route(r, 'GET', '/batches', 'developer', (_req, res) => {
    const scope = scopeOf(res);
    res.json(batches.list((b) => sees(scope, b)));
  });

  route(r, 'GET', '/batch/:id', 'invoker', (req, res) => {
    const b = find(res, req.params.id);
    res.json({ ...b.progress(), callNums: batches.callNums(b) });
  });

  route(
    r,
    'GET',
    '/batch/:id/results',
    'invoker',
    wrap(async (req, res) => {
      const b = find(res, req.params.id);
      const page = parse(PageSchema, req.query, 'query');
      const offset = page.offset ?? 0;
      const items = await batches.results(b, offset, page.limit ?? 1000);
      res.json({ batchId: b.id, size: b.size, offset, items });
    }),
  );

  return r;
}
