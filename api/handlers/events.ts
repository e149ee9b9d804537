// GET /events: a Server-Sent Events stream of calls as they are accepted and finished (the dashboard's
// live view, `zfaas logs NAME --follow`). `?funcName=` keeps one function's calls. Browsers cannot put a
// header on an EventSource, and a token or key in a URL would end up in histories and logs: a page asks
// POST /events/ticket (with its header) for a one-use ticket that lasts 30 s and opens
// /events?ticket=... with it (tenancy/tickets.ts). A key sees its namespace's calls only, an invoker key
// only the calls it made, names shown bare.
import type { Response, Router } from 'express';
import { z } from 'zod';
import { errText, type Logger } from '../../common/log.js';
import { nameSchema, type Call, type CallStatus } from '../../common/model.js';
import type { DbClient } from '../../db/client.js';
import type { CallEvents, Calls } from '../calls.js';
import { parse } from '../http.js';
import { route, router } from '../routes.js';
import type { Ticket } from '../tenancy/tickets.js';
import { DEFAULT_NAMESPACE } from '../../common/namespace.js';
import { scopeOf, type Scope } from '../tenancy/scope.js';

const MAX_TEXT = 2000; // result and error, per event: the whole call is one GET /call/N away
const MAX_LOGS = 8000;
const MAX_BUFFERED = 1 << 20; // a client this far behind is cut off; EventSource reconnects by itself
const PING_MS = 15_000; // keeps proxies from closing an idle stream

export interface CallEvent {
  callNum: number;
  funcName: string;
  version?: number;
  status: CallStatus;
  node?: string;
  durationMs?: number;
  latencyMs?: number;
  result?: string;
  error?: string;
  logs?: string;
  truncated?: boolean; // some text was cut: GET /call/N has all of it
  at: string;
  by?: string; // the key that made it
}

interface Client {
  res: Response;
  scope: Scope;
  funcName?: string; // qualified
}

const cut = (s: string | undefined, max: number): [string | undefined, boolean] =>
  s !== undefined && s.length > max ? [s.slice(0, max), true] : [s, false];

export class CallFeed {
  private readonly clients = new Set<Client>();
  private seq = 0;
  private ping?: NodeJS.Timeout;

  constructor(
    calls: Calls,
    private readonly db: DbClient,
    private readonly log: Logger,
  ) {
    calls.events.on('accepted', (c: Call) =>
      this.publish({ callNum: c.callNum, funcName: c.funcName, version: c.version, status: c.status, at: c.createdAt, by: c.by }),
    );
    calls.events.on('finished', (f) => {
      this.finished(f).catch((e) => this.log.warn({ callNum: f.callNum, err: errText(e) }, 'call event not sent'));
    });
  }

  // A call this API did not accept (it finished after a restart) is looked up in the DB for its name;
  // only while someone is listening.
  private async finished(f: CallEvents['finished'][0]): Promise<void> {
    if (this.clients.size === 0) return;
    // An invoker listening sees only its own calls: who made the call is then looked up too.
    const invokers = [...this.clients].some((c) => c.scope.actor === 'invoker');
    // A lookup that fails leaves the call unknown here: the event then reaches no invoker (it fails closed).
    const call = f.funcName && f.node && !invokers ? null : await this.db.request('getCall', { callNum: f.callNum }).catch(() => null);
    const funcName = f.funcName ?? call?.funcName;
    if (!funcName) return;
    const [result, t1] = cut(f.outcome.result, MAX_TEXT);
    const [error, t2] = cut(f.outcome.error, MAX_TEXT);
    const [logs, t3] = cut(f.outcome.logs, MAX_LOGS);
    this.publish({
      callNum: f.callNum,
      funcName,
      version: f.version ?? call?.version,
      status: f.outcome.status,
      node: f.node ?? call?.node,
      durationMs: f.outcome.durationMs ?? call?.durationMs,
      latencyMs: f.latencyMs,
      result,
      error,
      logs,
      truncated: t1 || t2 || t3 || undefined,
      at: new Date().toISOString(),
      by: call?.by,
    });
  }

  private publish(e: CallEvent): void {
    if (this.clients.size === 0) return;
    const seq = ++this.seq;
    const frameOf = (x: CallEvent): string => `id: ${seq}\nevent: call\ndata: ${JSON.stringify(x)}\n\n`;
    const frame = frameOf(e);
    for (const c of this.clients) {
      if (c.funcName && c.funcName !== e.funcName) continue;
      if (!c.scope.sees(e)) continue;
      if (c.res.writableLength > MAX_BUFFERED) {
        c.res.end();
        continue;
      }
      c.res.write(c.scope.namespace === DEFAULT_NAMESPACE ? frame : frameOf(c.scope.show(e)));
    }
  }

  add(res: Response, scope: Scope, funcName?: string): void {
    const c: Client = { res, scope, funcName };
    this.clients.add(c);
    res.on('close', () => {
      this.clients.delete(c);
      if (this.clients.size === 0) this.stopPing();
    });
    if (!this.ping) {
      this.ping = setInterval(() => {
        for (const x of this.clients) x.res.write(': ping\n\n');
      }, PING_MS);
      this.ping.unref();
    }
  }

  private stopPing(): void {
    clearInterval(this.ping);
    this.ping = undefined;
  }

  get listeners(): number {
    return this.clients.size;
  }
}

// `tickets`: makes the one-use tickets of the stream (tenancy/identity.ts).
export function eventsRouter(feed: CallFeed, tickets: { ticket(res: Response): Ticket }): Router {
  const r = router();
  route(r, 'GET', '/events', { need: 'invoker', ticket: true }, (req, res) => {
    const q = parse(z.object({ funcName: nameSchema.optional() }).passthrough(), req.query, 'query');
    res
      .status(200)
      .set({ 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    // `hello` tells a client the stream is open: events from here on will reach it.
    res.write(`retry: 2000\nevent: hello\ndata: ${JSON.stringify({ funcName: q.funcName ?? null })}\n\n`);
    const scope = scopeOf(res);
    feed.add(res, scope, q.funcName === undefined ? undefined : scope.q(q.funcName));
  });
  route(r, 'POST', '/events/ticket', 'invoker', (_req, res) => {
    res.status(201).set('cache-control', 'no-store').json(tickets.ticket(res));
  });
  return r;
}
