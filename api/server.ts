// The API service: express in front, the node broker behind, the DB service as the record.
// Wiring, each part given what it needs when it is made: the Broker (node links and the node table) needs
// only its transport and the DB; the Scheduler (the queue and the choice) drives the Broker and pumps on
// its `room` events; Calls enqueues through the Scheduler and follows the Broker's `result`, `recorded`
// and `nodeLost` events. Everyone else reads nodes through NodeRegistry.
import express from 'express';
import type { Server } from 'node:http';
import { errText, type Logger } from '../common/log.js';
import { DbClient, type LocalDb } from '../db/client.js';
import { Broker, ZmqTransport } from './broker.js';
import { Calls } from './calls.js';
import { MetaCache } from './meta-cache.js';
import { Scheduler } from './scheduler.js';
import { errorResponder, HttpError } from './http.js';
import { preloadAfterDeploy } from './preload.js';
import { isLoopback } from './auth.js';
import { Identity } from './tenancy/identity.js';
import { Quotas } from './tenancy/quotas.js';
import { namespacesRouter } from './handlers/namespaces.js';
import { secretsRouter } from './handlers/secrets.js';
import { UsageError } from '../common/errors.js';
import { curvePublicKey, type CurveServer } from '../common/curve.js';
import { callsRouter } from './handlers/calls.js';
import { cancelRouter } from './handlers/cancel.js';
import { deadLettersRouter } from './handlers/dead-letters.js';
import { functionsRouter } from './handlers/functions.js';
import { schedulesRouter } from './handlers/schedules.js';
import { invokeRouter } from './handlers/invoke.js';
import { webRouter } from './handlers/web.js';
import { IDEMPOTENCY_TTL_S } from '../protocol/db.js';
import { nodesRouter } from './handlers/nodes.js';
import { runtimesRouter } from './handlers/runtimes.js';
import { Batches } from './batches.js';
import { Metrics } from './metrics.js';
import { batchesRouter } from './handlers/batches.js';
import { dashboardRouter } from './handlers/dashboard.js';
import { CallFeed, eventsRouter } from './handlers/events.js';
import { metricsRouter } from './handlers/metrics.js';
import { openapiRouter } from './handlers/openapi.js';
import { AllowList } from './callbacks/allow-list.js';
import { Deliverer } from './callbacks/deliverer.js';

export interface ApiOptions {
  port: number;
  host: string;
  db: string | LocalDb;
  brokerBind: string;
  brokerAlsoBind?: string[];
  token?: string; // required when host is not loopback
  curve?: CurveServer; // the broker's keys and the instance keys it accepts (the DB client uses the same pair)
  log: Logger;
  idempotencyTtlS?: number; // how long an Idempotency-Key stands for its call (default 24 h)
  callbackAllow?: string; // where call callbacks may go (api/callbacks/allow-list.ts; default: loopback only)
  callbackBackoffMs?: number; // the first step of a failed callback's retries (default 1 s; tests shorten it)
}

export class ApiServer {
  readonly db: DbClient;
  readonly broker: Broker;
  readonly scheduler: Scheduler;
  readonly meta: MetaCache;
  readonly quotas: Quotas;
  readonly calls: Calls;
  readonly callbackAllow: AllowList;
  readonly deliverer: Deliverer;
  private readonly idempotencyTtlS: number;
  private http?: Server;

  constructor(private readonly o: ApiOptions) {
    this.idempotencyTtlS = o.idempotencyTtlS ?? IDEMPOTENCY_TTL_S;
    if (!o.token && !isLoopback(o.host)) {
      throw new UsageError(`the API listens on ${o.host}, beyond this machine: set a token (--token or ZFAAS_TOKEN)`);
    }
    this.callbackAllow = AllowList.parse(o.callbackAllow); // a bad list stops the start, before any socket opens
    this.db = new DbClient(
      o.db,
      10_000,
      o.curve ? { secretKey: o.curve.secretKey, serverKey: curvePublicKey(o.curve.secretKey) } : undefined,
    );
    this.broker = new Broker({
      transport: new ZmqTransport({ bind: o.brokerBind, alsoBind: o.brokerAlsoBind, curve: o.curve, log: o.log }),
      db: this.db,
      log: o.log,
    });
    this.quotas = new Quotas(this.db);
    this.scheduler = new Scheduler(this.broker, (name) => this.quotas.runningLimit(name));
    this.meta = new MetaCache(this.db);
    this.calls = new Calls({
      db: this.db,
      log: o.log,
      meta: this.meta,
      scheduler: this.scheduler,
      links: this.broker.events,
      quotas: this.quotas,
    });
    this.deliverer = new Deliverer({
      db: this.db,
      allow: this.callbackAllow,
      log: o.log,
      events: this.calls.events,
      ...(o.callbackBackoffMs ? { backoff: { firstMs: o.callbackBackoffMs } } : {}),
    });
  }

  app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.use(dashboardRouter()); // the page and its scripts hold no data: open, like /health
    // Every request from here on acts as the operator or as a key of one namespace (api/tenancy).
    const identity = new Identity({ db: this.db, log: this.o.log, token: this.o.token });
    app.use(identity.middleware());
    // A function's web path answers an anonymous caller when the function is public.
    app.use(webRouter({ calls: this.calls, log: this.o.log, idempotencyTtlS: this.idempotencyTtlS }));
    const batches = new Batches(this.calls, this.broker, this.db);
    const metrics = new Metrics(this.calls, this.broker, this.scheduler, {
      db: this.db,
      log: this.o.log,
      deliveries: this.deliverer.events,
    });
    app.use(batchesRouter(batches)); // parses its own, larger bodies
    app.use(express.json({ limit: '1mb' }));
    app.use(
      namespacesRouter({
        db: this.db,
        forget: (id) => identity.forget(id),
        forgetNamespace: async (ns) => {
          batches.forgetNamespace(ns);
          await metrics.forgetNamespace(ns);
        },
      }),
      secretsRouter(this.db),
    );
    app.use(runtimesRouter(this.db));
    // Any change to runtimes or functions clears the API's cache of their definitions.
    app.use((req, res, next) => {
      if (req.method !== 'GET' && req.path !== '/invokeFunction') {
        this.meta.clear();
        res.on('finish', () => this.meta.clear()); // and again once the change is in the DB
      }
      next();
    });
    app.use(preloadAfterDeploy(this.db, this.broker, this.o.log));
    app.use(functionsRouter(this.db, this.quotas));
    app.use(schedulesRouter({ db: this.db, calls: this.calls, log: this.o.log }));
    app.use(invokeRouter(this.db, this.calls, this.idempotencyTtlS, this.callbackAllow));
    app.use(callsRouter(this.db, this.calls));
    app.use(deadLettersRouter(this.db, this.calls));
    app.use(
      cancelRouter({
        db: this.db,
        queue: this.scheduler,
        nodes: this.broker,
        settle: (callNum, outcome) => this.calls.settle(callNum, outcome),
      }),
    );
    app.use(nodesRouter(this.db, this.broker, this.scheduler));
    app.use(metricsRouter(metrics), eventsRouter(new CallFeed(this.calls, this.db, this.o.log)), openapiRouter());
    app.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.path}`)));
    app.use(errorResponder(this.o.log));
    return app;
  }

  async start(): Promise<void> {
    await this.broker.start();
    this.calls.startRecovery();
    const app = this.app();
    await new Promise<void>((resolve, reject) => {
      this.http = app.listen(this.o.port, this.o.host, () => resolve());
      this.http.once('error', (e) => reject(new Error(`cannot listen on ${this.o.host}:${this.o.port}: ${errText(e)}`)));
    });
    this.http!.keepAliveTimeout = 65_000;
    this.deliverer.start();
    // Requests too broken for express (bad HTTP, oversized headers) still get a JSON error, not a bare line.
    this.http!.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const big = err.code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({ error: big ? 'request headers too large' : 'malformed HTTP request' });
      socket.end(
        `HTTP/1.1 ${big ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    this.o.log.info(
      {
        url: `http://${this.o.host}:${this.o.port}`,
        broker: this.o.brokerBind,
        db: typeof this.o.db === 'string' ? this.o.db : 'in-process',
        callbackAllow: this.callbackAllow.describe(),
      },
      'api listening',
    );
  }

  async stop(): Promise<void> {
    this.calls.stop();
    await this.deliverer.stop(); // before the DB client closes: a try that ended is recorded
    this.broker.stop();
    await new Promise<void>((resolve) => {
      if (!this.http) return resolve();
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
    this.db.close();
  }
}
