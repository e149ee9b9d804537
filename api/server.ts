// The API service: express in front, the node broker behind, the DB service as the record.
// Wiring, each part given what it needs when it is made: the Broker (node links and the node table) needs
// only its transport and the DB; the Scheduler (the queue and the choice) drives the Broker and pumps on
// its `room` events; Calls enqueues through the Scheduler and follows the Broker's `result`, `recorded`
// and `nodeLost` events. Everyone else reads nodes through NodeRegistry.
import express from 'express';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { errText, type Logger } from '../common/log.js';
import { DbClient, type LocalDb } from '../db/client.js';
import { Broker, ZmqTransport } from './broker.js';
import { Calls } from './calls.js';
import { MetaCache } from './meta-cache.js';
import { Scheduler } from './dispatcher.js';
import { errorResponder, HttpError } from './http.js';
import { preload, preloadAfterDeploy } from './preload.js';
import { Builds } from './builds.js';
import { BuildGate } from './build-gate.js';
import { isLoopback } from './auth.js';
import { Identity } from './tenancy/identity.js';
import { gate } from './tenancy/gate.js';
import { checkRoutes } from './routes.js';
import { Quotas } from './tenancy/quotas.js';
import { namespacesRouter } from './handlers/namespaces.js';
import { secretsRouter } from './handlers/secrets.js';
import { UsageError } from '../common/errors.js';
import { curvePublicKey, type CurveServer } from '../common/curve.js';
import { callsRouter } from './handlers/calls.js';
import { cancelRouter } from './handlers/cancel.js';
import { deadLettersRouter } from './handlers/dead-letters.js';
import { functionsRouter } from './handlers/functions.js';
import { deployImageRouter } from './handlers/deploy-image.js';
import { schedulesRouter } from './handlers/schedules.js';
import { triggersRouter } from './handlers/triggers.js';
import { TriggerRunner, triggerTimings } from './triggers/runner.js';
import { CallEnds } from './triggers/delivery.js';
import { TriggerAllow } from './triggers/allow.js';
import { invokeRouter } from './handlers/invoke.js';
import { webFront, webRouter, type WebDeps } from './handlers/web.js';
import { StreamHub } from './streams.js';
import { cancelCall } from './cancel.js';
import { functionsElsewhereRouter } from './handlers/functions-elsewhere.js';
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
import { AllowList } from '../common/allow-list.js';
import { Deliverer } from './callbacks/deliverer.js';
import { WarmKeeper } from './warm-keeper.js';
import { ApiLeases } from './leases.js';
import type { BrokerMemory } from '../protocol/broker.js';

export interface ApiOptions {
  port: number;
  host: string;
  db: string | LocalDb;
  brokerBind: string;
  brokerAlsoBind?: string[];
  brokerMemory?: BrokerMemory; // the node in this process (zfaas up)
  token?: string; // required when host is not loopback
  curve?: CurveServer; // the broker's keys and the instance keys it accepts (the DB client uses the same pair)
  log: Logger;
  idempotencyTtlS?: number; // how long an Idempotency-Key stands for its call (default 24 h)
  callbackAllow?: string; // where call callbacks may go (common/allow-list.ts; default: loopback only)
  callbackBackoffMs?: number; // the first step of a failed callback's retries (default 1 s; tests shorten it)
  // Function web paths on a listener of their own (same host, this port): an origin apart from the API's
  // and the dashboard's. The API's origin then sends them there (functionsOrigin: where callers reach it).
  functionsPort?: number;
  functionsOrigin?: string;
  apiId?: string; // this API's id among others on one store (default: host name and a random suffix)
}

export class ApiServer {
  readonly db: DbClient;
  readonly broker: Broker;
  readonly scheduler: Scheduler;
  readonly meta: MetaCache;
  readonly builds: Builds; // builds at deploy: sent to a node, followed until they end
  readonly quotas: Quotas;
  readonly calls: Calls;
  readonly callbackAllow: AllowList;
  readonly deliverer: Deliverer;
  readonly triggers: TriggerRunner; // consumes the brokers' messages of the triggers it holds (api/triggers)
  readonly triggerAllow: TriggerAllow; // where triggers may connect (ZFAAS_TRIGGER_ALLOW; default loopback)
  readonly warm: WarmKeeper; // every function's minWarm, spread over the nodes
  readonly leases: ApiLeases; // several APIs on one PostgreSQL store: this one's lease and adoptions
  readonly streams = new StreamHub(); // streamed web answers, from the nodes to their callers
  private readonly idempotencyTtlS: number;
  private http?: Server;
  private functionsHttp?: Server;
  private identity?: Identity; // one for every listener: one cache of keys, one guessing budget

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
    this.db.onSwitch = (sw) => o.log.warn(sw, 'DB service stopped answering: moved to the next one');
    this.leases = new ApiLeases({
      db: this.db,
      log: o.log,
      id: o.apiId,
      onAdopted: (calls) => void this.calls.adopt(calls),
      onLost: () => this.calls.leaseLost(),
      onRenewed: () => this.scheduler.pump(),
    });
    this.broker = new Broker({
      transport: new ZmqTransport({
        bind: o.brokerBind,
        alsoBind: o.brokerAlsoBind,
        memory: o.brokerMemory,
        curve: o.curve,
        log: o.log,
      }),
      log: o.log,
      shared: () => this.leases.current !== undefined,
    });
    this.broker.events.on('stream', (p) => this.streams.deliver(p));
    this.warm = new WarmKeeper({ db: this.db, nodes: this.broker, log: o.log });
    this.quotas = new Quotas(this.db);
    this.scheduler = new Scheduler(
      this.broker,
      (name) => this.quotas.runningLimit(name),
      () => this.leases.mayDispatch,
    );
    this.meta = new MetaCache(this.db);
    this.builds = new Builds({
      db: this.db,
      nodes: this.broker,
      log: o.log,
      onEnd: (fn) => {
        this.meta.clear(); // calls now see the version as built
        if (fn.build?.state === 'ready')
          void preload(this.db, this.broker, fn.functionName).catch((e) => o.log.warn({ err: errText(e) }, 'preload after build failed'));
      },
    });
    this.calls = new Calls({
      db: this.db,
      log: o.log,
      meta: this.meta,
      // Calls of a version still building wait in the API; those of a failed build end at once.
      scheduler: new BuildGate({
        queue: this.scheduler,
        builds: this.builds,
        meta: this.meta,
        db: this.db,
        settle: (callNum, ended) => this.calls.settle(callNum, ended),
        log: o.log,
      }),
      links: this.broker.events,
      nodes: this.broker,
      quotas: this.quotas,
      owner: this.leases,
      reported: (callNum) => this.broker.reported(callNum),
    });
    this.deliverer = new Deliverer({
      db: this.db,
      allow: this.callbackAllow,
      log: o.log,
      events: this.calls.events,
      ...(o.callbackBackoffMs ? { backoff: { firstMs: o.callbackBackoffMs } } : {}),
    });
    this.triggerAllow = TriggerAllow.parse(process.env.ZFAAS_TRIGGER_ALLOW); // a bad list stops the start
    this.triggers = new TriggerRunner({
      allow: this.triggerAllow,
      db: this.db,
      log: o.log,
      invoke: (funcName, params, idempotency) => this.calls.invoke(funcName, params, undefined, { idempotency }),
      ends: new CallEnds({ events: this.calls.events, getCall: (callNum) => this.db.request('getCall', { callNum }) }),
      queueLength: (funcName) => this.scheduler.queuedOf(funcName),
      ...triggerTimings(process.env),
    });
  }

  app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    // Another case, a trailing slash: another path, which is no route (and so needs the operator).
    app.set('case sensitive routing', true);
    app.set('strict routing', true);
    // Every request is authorized first, for the route it will reach, as that route declared (api/routes.ts).
    const identity = this.identityOf();
    const first = gate(app, identity);
    app.use(first);
    app.use(dashboardRouter()); // the page and its scripts hold no data: open, like /health
    // A function's web path answers an anonymous caller when the function is public; with an origin of
    // their own, functions are not answered on this one.
    const { functionsPort: port, functionsOrigin: origin } = this.o;
    app.use(port ? functionsElsewhereRouter({ port, origin }) : this.webRouter());
    const batches = new Batches(this.calls, this.broker, this.db);
    const metrics = new Metrics(this.calls, this.broker, this.scheduler, {
      db: this.db,
      log: this.o.log,
      deliveries: this.deliverer.events,
      nodeWords: this.broker.events,
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
    app.use(runtimesRouter(this.db, this.quotas));
    // Any change to runtimes or functions clears the API's cache of their definitions.
    app.use((req, res, next) => {
      if (req.method !== 'GET' && req.path !== '/invokeFunction') {
        this.meta.clear();
        res.on('finish', () => this.meta.clear()); // and again once the change is in the DB
      }
      next();
    });
    app.use(preloadAfterDeploy(this.db, this.broker, this.o.log));
    app.use(functionsRouter(this.db, this.quotas, this.builds));
    app.use(deployImageRouter(this.db, this.quotas));
    app.use(schedulesRouter({ db: this.db, calls: this.calls, log: this.o.log, quotas: this.quotas }));
    app.use(triggersRouter({ db: this.db, runner: this.triggers, allow: this.triggerAllow }));
    app.use(invokeRouter(this.db, this.calls, this.idempotencyTtlS, this.callbackAllow));
    app.use(callsRouter(this.db, this.calls));
    app.use(deadLettersRouter(this.db, this.calls));
    app.use(
      cancelRouter({
        db: this.db,
        queue: this.scheduler,
        nodes: this.broker,
        settle: (callNum, ended) => this.calls.settle(callNum, ended),
      }),
    );
    app.use(nodesRouter(this.db, this.broker, this.scheduler));
    app.use(metricsRouter(metrics), eventsRouter(new CallFeed(this.calls, this.db, this.o.log), identity), openapiRouter());
    // Only the operator gets this far on a path that is no route (the gate saw to it).
    app.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.path}`)));
    app.use(errorResponder(this.o.log));
    checkRoutes(app, first); // a route without a declared rule stops the start
    return app;
  }

  private identityOf(): Identity {
    return (this.identity ??= new Identity({ db: this.db, log: this.o.log, token: this.o.token }));
  }

  private webRouter(): express.Router {
    return webRouter(this.webDeps());
  }

  private webDeps(): WebDeps {
    return {
      calls: this.calls,
      log: this.o.log,
      idempotencyTtlS: this.idempotencyTtlS,
      streams: this.streams,
      cancel: (callNum) =>
        cancelCall({ db: this.db, queue: this.scheduler, nodes: this.broker, settle: (n, ended) => this.calls.settle(n, ended) }, callNum),
    };
  }

  // The functions' own listener (functionsPort): their web paths and nothing else.
  functionsApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.set('case sensitive routing', true);
    app.set('strict routing', true);
    const first = gate(app, this.identityOf());
    app.use(first);
    app.use(this.webRouter());
    app.use((req, _res, next) =>
      next(new HttpError(404, `no route ${req.method} ${req.path}: this origin serves function web paths only`)),
    );
    app.use(errorResponder(this.o.log));
    checkRoutes(app, first);
    return app;
  }

  async start(): Promise<void> {
    await this.leases.start(); // on a shared store, the lease comes before the first call
    await this.broker.start();
    this.calls.startRecovery();
    this.builds.start();
    this.calls.startWatch();
    // Function web paths are answered before express (handlers/web.ts), where this origin serves them.
    const front = webFront({ ...this.webDeps(), identity: this.identityOf() });
    this.http = await this.listen(this.app(), this.o.port, this.o.functionsPort ? undefined : front);
    if (this.o.functionsPort) this.functionsHttp = await this.listen(this.functionsApp(), this.o.functionsPort, front);
    this.deliverer.start();
    this.triggers.start();
    this.warm.start();
    this.o.log.info(
      {
        url: `http://${this.o.host}:${this.o.port}`,
        broker: this.o.brokerBind,
        db: typeof this.o.db === 'string' ? this.o.db : 'in-process',
        ...(this.leases.current ? { api: this.leases.current } : {}),
        callbackAllow: this.callbackAllow.describe(),
        ...(this.o.functionsPort ? { functions: this.o.functionsOrigin ?? `port ${this.o.functionsPort}` } : {}),
      },
      'api listening',
    );
  }

  private async listen(
    app: express.Express,
    port: number,
    front?: (req: IncomingMessage, res: ServerResponse) => boolean,
  ): Promise<Server> {
    const server = await new Promise<Server>((resolve, reject) => {
      const s = createServer(front ? (req, res) => void (front(req, res) || app(req, res)) : app);
      s.once('error', (e) => reject(new Error(`cannot listen on ${this.o.host}:${port}: ${errText(e)}`)));
      s.listen(port, this.o.host, () => resolve(s));
    });
    server.keepAliveTimeout = 65_000;
    // Requests too broken for express (bad HTTP, oversized headers) still get a JSON error, not a bare line.
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      const big = err.code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({ error: big ? 'request headers too large' : 'malformed HTTP request' });
      socket.end(
        `HTTP/1.1 ${big ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    return server;
  }

  async stop(): Promise<void> {
    this.warm.stop();
    await this.triggers.stop(); // its leases given up while the DB client is open
    this.calls.stop();
    this.builds.stop();
    await this.deliverer.stop(); // before the DB client closes: a try that ended is recorded
    this.broker.stop();
    for (const server of [this.http, this.functionsHttp]) {
      await new Promise<void>((resolve) => {
        if (!server) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    await this.leases.stop(); // given up: another API takes this one's unfinished calls at once
    this.db.close();
  }
}
