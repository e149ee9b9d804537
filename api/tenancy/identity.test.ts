// Credentials as Identity reads them, with a fake DB: a key id that does not exist (or a revoked key) costs
// the same slow check as a real one; wrong tokens share the guessing budget with keys, past which even the
// right token waits; the event stream takes a one-use ticket, never a token in its URL; and an API without
// a token serves only this machine's own requests, not a page of another site.
import type { Request, Response } from 'express';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyRecord } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import { HttpError } from '../http.js';
import { Identity, type Refusal } from './identity.js';
import { keyMatches, makeKey } from './keys.js';
import type { Rule } from './policy.js';
import { Scope } from './scope.js';

const TOKEN = 'identity-test-operator-token';
const log = pino({ level: 'silent' });
const records = new Map<string, KeyRecord>();
const db = {
  request: async (type: string, c: { id?: string; name?: string }) => {
    if (type === 'getKey') return records.get(c.id ?? '') ?? null;
    if (type === 'getNamespace') return c.name === 'team-a' ? { name: 'team-a', createdAt: '', quotas: {} } : null;
    throw new Error(`unexpected DB request ${type}`);
  },
} as unknown as DbClient;

let developer: { key: string; record: KeyRecord };

beforeAll(async () => {
  developer = await makeKey('team-a', 'developer');
  records.set(developer.record.id, developer.record);
});

interface Sent {
  status?: number;
  body?: unknown;
  headers: Record<string, string>;
}

// A request as express gives it, and a response that keeps what was answered.
function exchange(
  o: { auth?: string; from?: string; path?: string; query?: Record<string, string>; headers?: Record<string, string> } = {},
): { req: Request; res: Response; sent: Sent } {
  const sent: Sent = { headers: {} };
  const req = {
    method: 'GET',
    path: o.path ?? '/functions',
    query: o.query ?? {},
    headers: { host: '127.0.0.1:3000', ...(o.auth ? { authorization: `Bearer ${o.auth}` } : {}), ...o.headers },
    socket: { remoteAddress: o.from ?? '127.0.0.1' },
  } as unknown as Request;
  const res = {
    locals: {},
    setHeader: (k: string, v: string) => void (sent.headers[k.toLowerCase()] = v),
    status(s: number) {
      sent.status = s;
      return this;
    },
    json(b: unknown) {
      sent.body = b;
      return this;
    },
    // A refusal is written on Node's own response (as on a function's web path, where express is not).
    set statusCode(s: number) {
      sent.status = s;
    },
    end(b: string) {
      sent.body = JSON.parse(b);
    },
  } as unknown as Response;
  return { req, res, sent };
}

const DEVELOPER: Rule = { need: 'developer' };

// What a request gets under a rule: 'go', or the status answered (a 403 of a low role is thrown).
async function outcome(identity: Identity, x: ReturnType<typeof exchange>, rule: Rule = DEVELOPER): Promise<number | 'go'> {
  try {
    return (await identity.authorize(x.req, x.res, rule)) ? 'go' : x.sent.status!;
  } catch (e) {
    if (e instanceof HttpError) return e.status;
    throw e;
  }
}

describe('keys', () => {
  it('check a key whose id does not exist, or which is revoked, as slowly as a real one', async () => {
    const checked: KeyRecord[] = [];
    const identity = new Identity({
      db,
      log,
      token: TOKEN,
      verify: (secret, record) => {
        checked.push(record);
        return keyMatches(secret, record);
      },
    });
    const unknown = `zfk_${'f'.repeat(16)}_${'A'.repeat(43)}`;
    expect(await outcome(identity, exchange({ auth: unknown }))).toBe(401);
    expect(checked).toHaveLength(1); // the slow hash was computed, against a stand-in
    const revoked = await makeKey('team-a', 'developer');
    records.set(revoked.record.id, { ...revoked.record, revokedAt: new Date().toISOString() });
    expect(await outcome(identity, exchange({ auth: revoked.key }))).toBe(401);
    expect(checked).toHaveLength(2);
    expect(await outcome(identity, exchange({ auth: developer.key }))).toBe('go');
    expect(checked).toHaveLength(3);
  });
});

describe('the guessing budget', () => {
  it('counts wrong tokens as it counts wrong keys, and past it the right token waits too', async () => {
    const identity = new Identity({ db, log, token: TOKEN });
    // A key checked before the run goes on working: it is remembered, and costs no check.
    expect(await outcome(identity, exchange({ auth: developer.key, from: '10.0.0.1' }))).toBe('go');
    const got: number[] = [];
    for (let i = 0; i < 70; i++) got.push((await outcome(identity, exchange({ auth: `wrong-token-${i}`, from: '10.0.0.1' }))) as number);
    expect(got.filter((s) => s === 401).length).toBeGreaterThanOrEqual(60);
    expect(got.slice(-5)).toEqual([429, 429, 429, 429, 429]);
    const right = exchange({ auth: TOKEN, from: '10.0.0.1' });
    expect(await outcome(identity, right)).toBe(429); // so the answer to a guess never says it was right
    expect(right.sent.headers['retry-after']).toMatch(/^\d+$/);
    expect(await outcome(identity, exchange({ auth: developer.key, from: '10.0.0.1' }))).toBe('go');
    // Another address has its own budget.
    expect(await outcome(identity, exchange({ auth: TOKEN, from: '10.0.0.2' }))).toBe('go');
  });

  it('gives the right token back its check, so the operator never runs out', async () => {
    const identity = new Identity({ db, log, token: TOKEN });
    for (let i = 0; i < 200; i++) expect(await outcome(identity, exchange({ auth: TOKEN }))).toBe('go');
  });

  it('refuses a credential of absurd length as a wrong one', async () => {
    const identity = new Identity({ db, log, token: TOKEN });
    const x = exchange({ auth: 'k'.repeat(5000) });
    expect(await outcome(identity, x)).toBe(401);
    expect((x.sent.body as { error: string }).error).toBe('the token or key is not valid');
  });
});

describe('event stream tickets', () => {
  const STREAM: Rule = { need: 'invoker', ticket: true };

  it('stand for the scope they were made in, once', async () => {
    const identity = new Identity({ db, log, token: TOKEN });
    const made = exchange({ auth: developer.key });
    expect(await outcome(identity, made, { need: 'invoker' })).toBe('go');
    const { ticket } = identity.ticket(made.res);
    const first = exchange({ path: '/events', query: { ticket } });
    expect(await outcome(identity, first, STREAM)).toBe('go');
    expect(first.res.locals.scope).toEqual(new Scope('team-a', 'developer', developer.record.id));
    const again = exchange({ path: '/events', query: { ticket } });
    expect(await outcome(identity, again, STREAM)).toBe(401);
    expect((again.sent.body as { error: string }).error).toMatch(/ticket is not valid/);
    // A ticket only where the route takes one.
    const elsewhere = identity.ticket(made.res).ticket;
    expect(await outcome(identity, exchange({ query: { ticket: elsewhere } }))).toBe(401);
  });

  it('stop with the key they were made for', async () => {
    const k = await makeKey('team-a', 'invoker');
    records.set(k.record.id, k.record);
    const identity = new Identity({ db, log, token: TOKEN });
    const made = exchange({ auth: k.key });
    expect(await outcome(identity, made, { need: 'invoker' })).toBe('go');
    const { ticket } = identity.ticket(made.res);
    records.set(k.record.id, { ...k.record, revokedAt: new Date().toISOString() });
    expect(await outcome(identity, exchange({ path: '/events', query: { ticket } }), STREAM)).toBe(401);
  });

  it('are the only credential the stream takes in its URL', async () => {
    const identity = new Identity({ db, log, token: TOKEN });
    expect(await outcome(identity, exchange({ path: '/events', query: { token: TOKEN } }), STREAM)).toBe(401);
    expect(await outcome(identity, exchange({ path: '/events', auth: TOKEN }), STREAM)).toBe('go');
  });
});

describe('an API without a token', () => {
  const identity = new Identity({ db, log });
  const browser = (headers: Record<string, string>) => exchange({ headers });

  it('acts as the operator for this machine’s own requests', async () => {
    const own: Record<string, string>[] = [
      {},
      { 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'none' },
      { origin: 'http://127.0.0.1:3000' },
      { host: 'localhost:3000' },
      { host: '[::1]:3000' },
    ];
    for (const headers of own) {
      const x = browser(headers);
      expect(await outcome(identity, x, { need: 'operator' }), JSON.stringify(headers)).toBe('go');
      expect(x.res.locals.scope).toEqual(new Scope('default', 'operator'));
    }
  });

  it('refuses what a page of another site, or a name that is not loopback, sends', async () => {
    const foreign: Record<string, string>[] = [
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'http://evil.example' },
      { origin: 'null' },
      { origin: 'http://localhost:3000' }, // another origin than the one the request is sent to
      { host: 'evil.example:3000' },
      { host: 'rebound.example' },
    ];
    for (const headers of foreign) {
      const x = browser(headers);
      expect(await outcome(identity, x, { need: 'invoker' }), JSON.stringify(headers)).toBe(403);
      expect((x.sent.body as { error: string }).error).toMatch(/this API has no token: it answers only requests of this machine's own/);
    }
  });

  it('lets a function’s web path decide: a public function answers anyone', async () => {
    const x = browser({ 'sec-fetch-site': 'cross-site' });
    expect(await outcome(identity, x, { need: 'public' })).toBe('go');
    expect((x.res.locals.refusal as Refusal).status).toBe(403);
    expect(x.res.locals.scope).toBeUndefined();
  });
});
