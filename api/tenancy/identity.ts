// Who is calling, and whether that caller may take the route it asks for. resolve() turns a request's
// credentials into its Scope (scope.ts): the operator (the token; or, on an API without a token, which
// listens on loopback only, any request of this machine's own: origin.ts), a key of one namespace with its
// role, or the holder of a one-use event-stream ticket (tickets.ts). authorize() applies the rule the route
// declared (policy.ts); the gate (gate.ts) calls it for the route a request will reach, before any body is
// read. Every credential that must be checked (the token as much as a key) is first charged to its client
// address's budget and given back when good: past the budget the client gets 429 before any check is
// made, so guessing a token or a key costs the guesser time and the API little. A key is found by its id
// and checked against its slow hash once, then remembered by its digest, its record looked at again at
// least every second (a revoked or rotated key stops within a second, at once on this API). A key whose id
// is unknown, or which is revoked, is hashed all the same: the time of a refusal does not tell which ids exist.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, Response } from 'express';
import type { DbClient } from '../../db/client.js';
import type { Logger } from '../../common/log.js';
import type { KeyRecord } from '../../common/model.js';
import { DEFAULT_NAMESPACE, namespaceSchema } from '../../common/namespace.js';
import { HttpError, sendJson } from '../http.js';
import { keyMatches, parseKey } from './keys.js';
import { foreignRequest } from './origin.js';
import { permits, roleFor, UNMATCHED, type Rule } from './policy.js';
import { Scope, scopeOf } from './scope.js';
import { Tickets, type Ticket } from './tickets.js';

export const NAMESPACE_HEADER = 'X-Zfaas-Namespace';
const RECHECK_MS = 1000;
const FAILURES = { burst: 60, perSecond: 5 }; // checks a client address may have made that were not good
const MAX_TRACKED = 10_000;
const MAX_CREDENTIAL = 1024; // characters: a key is 64; a longer token is refused unread

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

// What a key that does not exist (or is revoked) is checked against, so that it costs what a real one costs.
const DUMMY_KEY: KeyRecord = {
  id: '0000000000000000',
  namespace: DEFAULT_NAMESPACE,
  role: 'invoker',
  salt: randomBytes(16).toString('hex'),
  hash: randomBytes(32).toString('hex'),
  createdAt: new Date(0).toISOString(),
};

interface Known {
  record: KeyRecord;
  checkedAt: number;
}

export type Refusal = {
  status: 401 | 403 | 429;
  why: 'missing' | 'wrong' | 'too many' | 'foreign';
  message: string;
  retryAfterS?: number;
};

export interface IdentityDeps {
  db: Pick<DbClient, 'request'>;
  log: Logger;
  token?: string; // the operator's; unset: the API listens on loopback only and needs no token
  verify?: (secret: string, record: KeyRecord) => Promise<boolean>; // a key's slow check (tests count them)
}

const WRONG: Refusal = { status: 401, why: 'wrong', message: 'the token or key is not valid' };

export class Identity {
  private readonly tokenDigest?: Buffer;
  private readonly known = new Map<string, Known>(); // digest of a key -> its record as last checked
  private readonly failures = new Map<string, { tokens: number; at: number }>();
  private readonly tickets = new Tickets();
  private readonly verify: (secret: string, record: KeyRecord) => Promise<boolean>;

  constructor(private readonly d: IdentityDeps) {
    if (d.token) this.tokenDigest = digest(d.token);
    this.verify = d.verify ?? keyMatches;
  }

  // A key revoked or rotated on this API stops at once.
  forget(keyId: string): void {
    for (const [k, v] of this.known) if (v.record.id === keyId) this.known.delete(k);
  }

  // A one-use ticket for the event stream, standing for the request's scope.
  ticket(res: Response): Ticket {
    return this.tickets.issue(scopeOf(res));
  }

  // Whether the request may go on under `rule`: false when a refusal was answered; throws the 403 of a
  // role too low. The credentials are resolved once per request, whichever route asks.
  async authorize(req: Request, res: Response, rule: Rule): Promise<boolean> {
    if (rule.need === 'open') return true;
    let who = res.locals.who as Scope | Refusal | undefined;
    if (!who) {
      who = await this.resolve(req, rule.ticket && typeof req.query.ticket === 'string' ? req.query.ticket : undefined);
      res.locals.who = who;
    }
    if (!(who instanceof Scope)) {
      // A function's web path decides itself: a public function answers anyone.
      if (rule.need === 'public') {
        res.locals.refusal = who;
        return true;
      }
      refuse(req, res, who, this.d.log, req.path);
      return false;
    }
    const scope = (res.locals.scope as Scope | undefined) ?? (await this.enter(req, res, who));
    permit(scope, rule, req.method, req.path);
    return true;
  }

  // The caller of a request express never sees (a function's web path, ../handlers/web.ts): its scope, or
  // the refusal of its credentials, which the web path answers unless the function is public.
  async caller(req: IncomingMessage, rule: Rule, path: string): Promise<Scope | Refusal> {
    const who = await this.resolve(req, undefined);
    if (!(who instanceof Scope)) return who;
    const scope = await this.scopeIn(req, who);
    permit(scope, rule, req.method ?? '', path);
    return scope;
  }

  private async enter(req: Request, res: Response, who: Scope): Promise<Scope> {
    const scope = await this.scopeIn(req, who);
    res.locals.scope = scope;
    if (scope.namespace !== DEFAULT_NAMESPACE) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => json(scope.show(body));
    }
    return scope;
  }

  // The scope a request acts in: the operator may name a namespace (X-Zfaas-Namespace); a key only its own.
  private async scopeIn(req: IncomingMessage, who: Scope): Promise<Scope> {
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
    return scope;
  }

  // `ticket`: a one-use ticket the request brought in its query, where its route takes one.
  private async resolve(req: IncomingMessage, ticket: string | undefined): Promise<Scope | Refusal> {
    if (!this.tokenDigest) {
      const foreign = foreignRequest(req);
      if (foreign)
        return {
          status: 403,
          why: 'foreign',
          message: `this API has no token: it answers only requests of this machine's own, and ${foreign} (give the API a token to serve others)`,
        };
    }
    const header = req.headers.authorization;
    // A ticket in the query where a route takes one (the event stream), never a token or key: those in a
    // URL would end up in histories and logs.
    if (ticket !== undefined && header === undefined) return this.fromTicket(req, ticket);
    const given = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    if (given === undefined) {
      if (!this.tokenDigest) return new Scope(DEFAULT_NAMESPACE, 'operator');
      return { status: 401, why: 'missing', message: 'this API needs a token or a key: send Authorization: Bearer KEY' };
    }
    // Without a token (loopback only) what is not shaped like a key is ignored, as before keys existed.
    if (!this.tokenDigest && !parseKey(given)) return new Scope(DEFAULT_NAMESPACE, 'operator');
    const cacheKey = digest(given).toString('hex');
    const known = this.known.get(cacheKey);
    if (known) {
      const record = await this.recheck(cacheKey, known);
      if (record) return new Scope(record.namespace, record.role, record.id);
      return { status: 401, why: 'wrong', message: 'the key is not valid' };
    }
    // Charged before it is checked, given back when good: many guesses sent at once cannot all be checked
    // before the first is counted, and past the budget even the right token waits, so that the answer
    // never tells a guesser more than "wait".
    const wait = this.charge(req);
    if (wait > 0)
      return {
        status: 429,
        why: 'too many',
        message: 'too many failed credentials from this address',
        retryAfterS: Math.ceil(wait / 1000),
      };
    if (given.length > MAX_CREDENTIAL) return WRONG;
    if (this.tokenDigest && timingSafeEqual(digest(given), this.tokenDigest)) {
      this.refund(req);
      return new Scope(DEFAULT_NAMESPACE, 'operator');
    }
    const parsed = parseKey(given);
    if (!parsed) return WRONG;
    const record = await this.d.db.request('getKey', { id: parsed.id });
    const good = await this.verify(parsed.secret, record ?? DUMMY_KEY);
    if (!record || record.revokedAt || !good) return WRONG;
    this.refund(req);
    this.remember(cacheKey, record);
    return new Scope(record.namespace, record.role, record.id);
  }

  // A ticket's scope, once; for a key's, only while the key is neither revoked nor rotated since.
  private async fromTicket(req: IncomingMessage, ticket: string): Promise<Scope | Refusal> {
    const held = this.tickets.take(ticket);
    const bad: Refusal = {
      status: 401,
      why: 'wrong',
      message: 'the ticket is not valid: a ticket is used once and lasts 30 s (POST /events/ticket gives another)',
    };
    if (!held) {
      const wait = this.charge(req);
      return wait > 0
        ? { status: 429, why: 'too many', message: 'too many failed credentials from this address', retryAfterS: Math.ceil(wait / 1000) }
        : bad;
    }
    const { scope, issuedAt } = held;
    if (scope.keyId) {
      const record = await this.d.db.request('getKey', { id: scope.keyId });
      if (!record || record.revokedAt || (record.rotatedAt && Date.parse(record.rotatedAt) >= issuedAt)) return bad;
    }
    return scope;
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
  private charge(req: IncomingMessage, now = Date.now()): number {
    const addr = req.socket.remoteAddress ?? '';
    const had = this.failures.get(addr);
    const tokens = had ? Math.min(FAILURES.burst, had.tokens + ((now - had.at) / 1000) * FAILURES.perSecond) : FAILURES.burst;
    if (tokens < 1) return Math.ceil(((1 - tokens) / FAILURES.perSecond) * 1000);
    this.failures.delete(addr); // re-inserted: the map's order is the order of the last check
    if (this.failures.size >= MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(addr, { tokens: tokens - 1, at: now });
    return 0;
  }

  private refund(req: IncomingMessage): void {
    const b = this.failures.get(req.socket.remoteAddress ?? '');
    if (b) b.tokens = Math.min(FAILURES.burst, b.tokens + 1);
  }
}

// Throws the 403 of a role below what the rule needs.
function permit(scope: Scope, rule: Rule, method: string, path: string): void {
  if (permits(scope.actor, rule.need)) return;
  const as = `this ${scope.operator ? 'token' : 'key'} is ${scope.actor}`;
  throw new HttpError(
    403,
    rule === UNMATCHED
      ? `no route ${method} ${path} (paths are case-sensitive, with no trailing or doubled slash): anything that is not a route needs the operator; ${as}`
      : `${method} ${path} needs the ${roleFor(rule.need) ?? 'open'} role; ${as}`,
  );
}

// `path`: the request's path, for the log.
export function refuse(req: IncomingMessage, res: ServerResponse, r: Refusal, log: Logger, path: string): void {
  // A client past its budget is not logged each time: a guessing run would flood the log.
  if (r.status === 401)
    log.warn({ method: req.method, path, from: req.socket.remoteAddress, why: r.why }, 'request refused: bad token or key');
  if (r.status === 403)
    log.warn({ method: req.method, path, from: req.socket.remoteAddress, why: r.why }, 'request refused: not from this machine');
  if (r.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="zfaas"');
  if (r.retryAfterS !== undefined) res.setHeader('Retry-After', String(r.retryAfterS));
  sendJson(res, r.status, { error: r.message });
}
