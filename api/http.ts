// HTTP plumbing shared by the handlers: one error type, async wrapping, and the error responder that maps
// every failure to a status code and a one-line message.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ServerResponse } from 'node:http';
import { z, ZodError, type ZodType, type ZodTypeDef } from 'zod';
import { ArchiveError } from '../common/archive/index.js';
import { MAX_JSON_DEPTH, jsonDepth } from '../common/json-depth.js';
import { DbError } from '../db/client.js';
import type { Logger } from '../common/log.js';
import { NotFoundError } from '../common/errors.js';
import { QuotaExceeded } from './tenancy/quotas.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const wrap =
  (fn: (req: Request, res: Response) => Promise<void>): RequestHandler =>
  (req, res, next) => {
    fn(req, res).catch(next);
  };

export function parse<T>(schema: ZodType<T, ZodTypeDef, unknown>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0];
    const where = i && i.path.length ? `${i.path.join('.')}: ` : '';
    throw new HttpError(400, `invalid ${what}: ${where}${i?.message ?? 'bad value'}`);
  }
  return r.data;
}

// A positive whole number sent as text: a call number in a path, a limit in a query.
export const positiveInt = z
  .string()
  .regex(/^\d+$/, 'must be a positive integer')
  .transform(Number)
  .pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER, 'is too large'));

export function checkParams(params: unknown): void {
  if (jsonDepth(params, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
    throw new HttpError(400, `invalid params: nested more than ${MAX_JSON_DEPTH} levels deep`);
}

const MAX_MESSAGE = 1000;

interface BodyParserError extends Error {
  type?: string;
  status?: number;
}

// The status and one-line message a failure is answered with (and Retry-After, where it says when to retry).
export function errorAnswer(err: unknown): { status: number; message: string; retryAfterS?: number } {
  let status = 500;
  let message = 'internal error';
  let retryAfterS: number | undefined;
  if (err instanceof HttpError) [status, message] = [err.status, err.message];
  else if (err instanceof NotFoundError) [status, message] = [404, err.message];
  else if (err instanceof QuotaExceeded) [status, message, retryAfterS] = [err.status, err.message, err.retryAfterS];
  else if (err instanceof ArchiveError) [status, message] = [400, `bad archive: ${err.message}`];
  else if (err instanceof ZodError) [status, message] = [400, err.issues[0]?.message ?? 'invalid input'];
  else if (err instanceof DbError) {
    if (err.code === 'NOT_FOUND') [status, message] = [404, err.message];
    else if (err.code === 'CONFLICT') [status, message] = [409, err.message];
    else if (err.code === 'BAD_REQUEST') [status, message] = [400, err.message];
    else [status, message] = [503, `database unavailable: ${err.message}`];
  } else if (err instanceof Error && (err as BodyParserError).type === 'entity.parse.failed') {
    [status, message] = [400, `bad JSON in request body: ${err.message}`];
  } else if (err instanceof Error && (err as BodyParserError).type === 'entity.too.large') {
    [status, message] = [413, 'request body too large'];
  } else if (
    err instanceof Error &&
    typeof (err as BodyParserError).status === 'number' &&
    ((err as BodyParserError).status ?? 500) < 500
  ) {
    [status, message] = [(err as BodyParserError).status ?? 400, err.message];
  } else if (err instanceof Error && err.name === 'MulterError') {
    const code = (err as Error & { code?: string }).code;
    [status, message] = [code === 'LIMIT_FILE_SIZE' ? 413 : 400, `upload refused: ${err.message}`];
  }
  // Messages may quote what was sent (a name, a node id): a 6,000-character name is not repeated whole.
  if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE)}...`;
  return retryAfterS === undefined ? { status, message } : { status, message, retryAfterS };
}

// A JSON answer written straight to Node's response (no express on the way: a function's web path).
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

// Answers a failed request as errorResponder does, for a request express never saw; `path` for the log.
export function answerError(err: unknown, path: string, res: ServerResponse, log: Logger): void {
  const { status, message, retryAfterS } = errorAnswer(err);
  if (status >= 500) log.error({ err: err instanceof Error ? err.stack : String(err), path }, 'request failed');
  if (res.headersSent) {
    if (!res.writableEnded) res.destroy(); // an answer that broke off must not look whole
    return;
  }
  if (retryAfterS !== undefined) res.setHeader('Retry-After', String(retryAfterS));
  sendJson(res, status, { error: message });
}

export function errorResponder(log: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const { status, message, retryAfterS } = errorAnswer(err);
    if (status >= 500) log.error({ err: err instanceof Error ? err.stack : String(err), path: req.path }, 'request failed');
    if (res.headersSent) return;
    if (retryAfterS !== undefined) res.setHeader('Retry-After', String(retryAfterS));
    res.status(status).json({ error: message });
  };
}
