// Who is calling: the middleware that turns a request's credentials into its Scope (scope.ts), then
// applies the route table (policy.ts). The operator's token is compared in constant time; a key is found
// by its id and checked against its slow hash once, then remembered by its digest, its record looked at
// again at least every second (a revoked or rotated key stops within a second, at once on this API).
// Checks of keys are budgeted per client address (a good key's check is given back): past the budget the
// client gets 429 before any check is made, so guessing keys costs the guesser time and the API little.
// A wrong token, or anything not shaped like a key, costs no check and is simply refused. A function's web path lets
// an anonymous request through to its handler, which answers for a public function only.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { DbClient } from '../../db/client.js';
import type { Logger } from '../../common/log.js';
import type { KeyRecord } from '../../common/model.js';
import { DEFAULT_NAMESPACE, namespaceSchema } from '../../common/namespace.js';
import { HttpError } from '../http.js';
import { keyMatches, parseKey } from './keys.js';
import { atLeast, Scope } from './scope.js';
import { need } from './policy.js';

export const NAMESPACE_HEADER = 'X-Zfaas-Namespace';
const RECHECK_MS = 1000;
const FAILURES = { burst: 60, perSecond: 5 }; // failed credentials a client address may send
const MAX_TRACKED = 10_000;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

interface Known {
  record: KeyRecord;
  checkedAt: number;
}

export type Refusal = { status: 401 | 429; why: 'missing' | 'wrong' | 'too many'; message: string; retryAfterS?: number };

export interface IdentityDeps {
  db: DbClient;
  log: Logger;
  token?: string; // the operator's; unset: the API listens on loopback only and needs no token
}

export class Identity {
  private readonly tokenDigest?: Buffer;
  private readonly known = new Map<string, Known>(); // digest of a key -> its record as last checked
  private readonly failures = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly d: IdentityDeps) {
    if (d.token) this.tokenDigest = digest(d.token);
  }

  // A key revoked or rotated on this API stops at once.
  forget(keyId: string): void {
    for (const [k, v] of this.known) if (v.record.id === keyId) this.known.delete(k);
  }

  middleware(): RequestHandler {
    return (req, res, next) => {
      const needed = need(req.method, req.path);
      if (needed === 'open') return next();
      this.resolve(req).then(
        (who) => {
          const web = /^(\/ns\/[^/]+)?\/function\//.test(req.path);
          if ('status' in who) {
            // A function's web path decides itself: a public function answers anyone.
            if (web) {
              res.locals.refusal = who;
              return next();
            }
            return refuse(req, res, who, this.d.log);
          }
          return this.enter(req, res, who, needed).then(() => next(), next);
        },
        (e: unknown) => next(e),
      );
    };
  }

  private async enter(req: Request, res: Response, who: Scope, needed: Exclude<ReturnType<typeof need>, 'open'>): Promise<void> {
    let scope = who;
    const asked = req.headers[NAMESPACE_HEADER.toLowerCase()];
    if (typeof asked === 'string' && asked !== '') {
      const ns = namespaceSchema.safeParse(asked);
      if (!ns.success) throw new HttpError(400, `invalid ${NAMESPACE_HEADER} header: ${ns.error.issues[0]?.message ?? 'bad value'}`);
      // A key lives in one namespace: any other is, for it, a namespace that does not exist.
      if (!who.operator && ns.data !== who.namespace) throw new HttpError(404, `namespace ${ns.data} not found`);
      if (who.operator && ns.data !== DEFAULT_NAMESPACE && !(await this.d.db.request('getNamespace', { name: ns.data })))
        throw new HttpError(404, `namespace ${ns.data} not found`);
      scope = new Scope(ns.data, who.actor, who.keyId);
    }
    if (!atLeast(scope.actor, needed)) {
      throw new HttpError(
        403,
        `${req.method} ${req.path} needs the ${needed} role; this ${scope.operator ? 'token' : 'key'} is ${scope.actor}`,
      );
    }
    res.locals.scope = scope;
    if (scope.namespace !== DEFAULT_NAMESPACE) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => json(scope.show(body));
    }
  }

  private async resolve(req: Request): Promise<Scope | Refusal> {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    // ?token= only where a browser cannot send a header (the event stream): elsewhere it would end up
    // in URLs, histories and logs.
    const fromQuery = req.method === 'GET' && req.path === '/events' && typeof req.query.token === 'string' ? req.query.token : undefined;
    const given = m?.[1] ?? fromQuery;
    if (given === undefined) {
      if (!this.tokenDigest) return new Scope(DEFAULT_NAMESPACE, 'operator');
      return { status: 401, why: 'missing', message: 'this API needs a token or a key: send Authorization: Bearer KEY' };
    }
    const d = digest(given);
    if (this.tokenDigest && timingSafeEqual(d, this.tokenDigest)) return new Scope(DEFAULT_NAMESPACE, 'operator');
    // Without a token (loopback only) what is not shaped like a key is ignored, as before keys existed.
    if (!this.tokenDigest && !parseKey(given)) return new Scope(DEFAULT_NAMESPACE, 'operator');
    const cacheKey = d.toString('hex');
    const known = this.known.get(cacheKey);
    if (known) {
      const record = await this.recheck(cacheKey, known);
      if (record) return new Scope(record.namespace, record.role, record.id);
      return { status: 401, why: 'wrong', message: 'the key is not valid' };
    }
    // Not shaped like a key (nor the token): refused with no check to make.
    const parsed = parseKey(given);
    if (!parsed) return { status: 401, why: 'wrong', message: 'the token or key is not valid' };
    // A key's check (a slow hash) is charged before it is made and given back when the key is good, so
    // that many guesses sent at once cannot all be checked before the first is counted.
    const wait = this.charge(req);
    if (wait > 0)
      return {
        status: 429,
        why: 'too many',
        message: 'too many failed credentials from this address',
        retryAfterS: Math.ceil(wait / 1000),
      };
    const record = await this.d.db.request('getKey', { id: parsed.id });
    if (!record || record.revokedAt || !(await keyMatches(parsed.secret, record)))
      return { status: 401, why: 'wrong', message: 'the token or key is not valid' };
    this.refund(req);
    this.remember(cacheKey, record);
    return new Scope(record.namespace, record.role, record.id);
  }

  // The key's record, looked at again when the last look is a second old: null once revoked or rotated.
  private async recheck(cacheKey: string, known: Known): Promise<KeyRecord | null> {
    if (Date.now() - known.checkedAt < RECHECK_MS) return known.record;
    const now = await this.d.db.request('getKey', { id: known.record.id });
    if (!now || now.revokedAt || now.hash !== known.record.hash) {
      this.known.delete(cacheKey);
      return null;
    }
    this.known.set(cacheKey, { record: now, checkedAt: Date.now() });
    return now;
  }

  private remember(cacheKey: string, record: KeyRecord): void {
    if (this.known.size >= MAX_TRACKED) this.known.delete(this.known.keys().next().value!);
    this.known.set(cacheKey, { record, checkedAt: Date.now() });
  }

  // Takes one check from this address's budget: 0 when it may be made now, else ms until it may.
  private charge(req: Request, now = Date.now()): number {
    const addr = req.socket.remoteAddress ?? '';
    const had = this.failures.get(addr);
    const tokens = had ? Math.min(FAILURES.burst, had.tokens + ((now - had.at) / 1000) * FAILURES.perSecond) : FAILURES.burst;
    if (tokens < 1) return Math.ceil(((1 - tokens) / FAILURES.perSecond) * 1000);
    this.failures.delete(addr); // re-inserted: the map's order is the order of the last check
    if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(addr, { tokens: tokens - 1, at: now });
    return 0;
  }

  private refund(req: Request): void {
    const b = this.failures.get(req.socket.remoteAddress ?? '');
    if (b) b.tokens = Math.min(FAILURES.burst, b.tokens + 1);
  }
}

export function refuse(req: Request, res: Response, r: Refusal, log: Logger): void {
  // A client past its budget is not logged each time: a guessing run would flood the log.
  if (r.status === 401)
    log.warn({ method: req.method, path: req.path, from: req.socket.remoteAddress, why: r.why }, 'request refused: bad token or key');
  if (r.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="zfaas"');
  if (r.retryAfterS !== undefined) res.setHeader('Retry-After', String(r.retryAfterS));
  res.status(r.status).json({ error: r.message });
}
