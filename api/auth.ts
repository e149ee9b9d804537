// Bearer-token check for the REST API. With a token configured every route except GET /health needs
// `Authorization: Bearer TOKEN`; the dashboard's event stream (which browsers cannot give headers) may
// pass it as `?token=`. Tokens are compared in constant time; refusals are logged without the token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from '../common/log.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

// Whether a request carries the token, for handlers that decide themselves (a public function's web path).
export interface TokenCheck {
  (req: Request): 'ok' | 'missing' | 'wrong';
  refuse(req: Request, res: Response, why: 'missing' | 'wrong'): void;
}

export function tokenCheck(token: string, log: Logger): TokenCheck {
  const want = digest(token);
  const check = (req: Request): 'ok' | 'missing' | 'wrong' => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    // ?token= only where a browser cannot send a header (the event stream): elsewhere it would end up in
    // URLs, histories and logs.
    const fromQuery = req.method === 'GET' && req.path === '/events' && typeof req.query.token === 'string' ? req.query.token : undefined;
    const given = m?.[1] ?? fromQuery;
    if (given === undefined) return 'missing';
    return timingSafeEqual(digest(given), want) ? 'ok' : 'wrong';
  };
  const refuse = (req: Request, res: Response, why: 'missing' | 'wrong'): void => {
    log.warn({ method: req.method, path: req.path, from: req.socket.remoteAddress, why }, 'request refused: bad token');
    res.setHeader('WWW-Authenticate', 'Bearer realm="zfaas"');
    res
      .status(401)
      .json({ error: why === 'missing' ? 'this API needs a token: send Authorization: Bearer TOKEN' : 'the token is not valid' });
  };
  return Object.assign(check, { refuse });
}

export function requireToken(check: TokenCheck): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' && req.path === '/health') return next();
    const r = check(req);
    if (r === 'ok') return next();
    check.refuse(req, res, r);
  };
}

// Loopback-only APIs may run without a token; anything reachable from other hosts may not.
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
