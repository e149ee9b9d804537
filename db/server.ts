// The DB service: a ZMQ ROUTER in front of LevelDB. Requests are applied one at a time (see store.ts),
// each gets exactly one reply, and a malformed request gets an error reply instead of a crash.
import { Router } from 'zeromq';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { SendQueue } from '../common/zmq.js';
import { logFailedHandshakes, serverOptions, startZap, type CurveServer } from '../common/curve.js';
import { errText, type Logger } from '../common/log.js';
import { parseJsonFrame, ProtocolError, validate } from '../protocol/codec.js';
import { DbEnvelopeSchema, DbRequestSchema, type DbRequest, type DbResults } from '../protocol/db.js';
import { ConflictError, NotFoundError, Store } from './store.js';
import { DbError } from './client.js';
import { FunctionSettingsSchema } from '../common/model.js';

export interface DbServerOptions {
  bind: string;
  dataDir: string;
  curve?: CurveServer; // with keys: only the API's and known instances' keys get in
  log: Logger;
}

interface Answer {
  data: DbResults[keyof DbResults];
  blobs?: Buffer[];
}

export class DbServer {
  private readonly socket: Router;
  private readonly out: SendQueue;
  private readonly store: Store;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly opts: DbServerOptions) {
    this.socket = new Router(serverOptions(opts.curve));
    this.out = new SendQueue(this.socket);
    this.store = new Store(opts.dataDir);
  }

  async start(): Promise<void> {
    await mkdir(this.opts.dataDir, { recursive: true });
    await this.store.open();
    if (this.opts.curve) {
      await startZap(this.opts.curve.allowed, this.opts.log);
      logFailedHandshakes(this.socket, this.opts.log, 'db client');
    }
    await this.socket.bind(this.opts.bind);
    this.opts.log.info({ bind: this.opts.bind, data: this.opts.dataDir }, 'db service listening');
    void this.loop();
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.socket.close();
    await this.queue;
    await this.store.close();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        // Strictly one at a time: LevelDB read-modify-write (call numbers, versions) needs no locks then.
        this.queue = this.queue.then(() => this.handle(frames as Buffer[]));
      }
    } catch (e) {
      if (!this.closed) this.opts.log.error({ err: errText(e) }, 'db socket failed');
    }
  }

  private async handle(frames: Buffer[]): Promise<void> {
    // ROUTER frames: [identity, "", json, ...blobs]; a DEALER without the delimiter is accepted too.
    const [identity, ...rest] = frames;
    if (!identity) return;
    const hasDelimiter = rest[0]?.length === 0;
    const body = hasDelimiter ? rest.slice(1) : rest;
    let id: number | undefined;
    let reply: object;
    let blobs: Buffer[] = [];
    try {
      const raw = parseJsonFrame(body[0]);
      const env = DbEnvelopeSchema.safeParse(raw);
      id = env.success ? env.data.id : undefined;
      const request = validate(DbRequestSchema, raw);
      const answer = await this.apply(request, body.slice(1));
      reply = { id, ok: true, data: answer.data };
      blobs = answer.blobs ?? [];
    } catch (e) {
      const code = codeOf(e);
      if (code === 'INTERNAL') this.opts.log.error({ err: errText(e) }, 'db request failed');
      reply = { id, ok: false, error: errText(e), code };
    }
    const envelope = hasDelimiter ? [identity, Buffer.alloc(0)] : [identity];
    try {
      await this.out.send([...envelope, Buffer.from(JSON.stringify(reply)), ...blobs]);
    } catch (e) {
      if (!this.closed) this.opts.log.warn({ err: errText(e) }, 'db reply not sent');
    }
  }

  // In-process requests (see LocalDb in client.ts): same queue, same error codes, no socket.
  local(msgType: DbRequest['msgType'], content: unknown, blobs: Buffer[]): Promise<{ data: unknown; blobs: Buffer[] }> {
    const run = this.queue.then(async () => {
      try {
        const answer = await this.apply(validate(DbRequestSchema, { msgType, content }), blobs);
        return { data: answer.data, blobs: answer.blobs ?? [] };
      } catch (e) {
        throw new DbError(errText(e), codeOf(e));
      }
    });
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async apply(req: DbRequest, blobs: Buffer[]): Promise<Answer> {
    const s = this.store;
    switch (req.msgType) {
      case 'ping':
        return { data: { ok: true } };
      case 'putRuntime':
        return { data: await s.putRuntime(req.content) };
      case 'getRuntime':
        return { data: await s.getRuntime(req.content.name) };
      case 'listRuntimes':
        return { data: await s.listRuntimes() };
      case 'deleteRuntime':
        return { data: await s.deleteRuntime(req.content.name) };
      case 'putArchive': {
        const blob = blobs[0];
        if (!blob) throw new ProtocolError('putArchive needs the archive as the frame after the request');
        return { data: await s.putArchive(req.content.digest, blob) };
      }
      case 'getArchive': {
        const data = await s.getArchive(req.content.digest);
        if (!data) return { data: null };
        return { data: { digest: createHash('sha256').update(data).digest('hex'), size: data.length }, blobs: [data] };
      }
      case 'addFunction':
        return { data: await s.addFunction({ ...req.content, settings: FunctionSettingsSchema.parse(req.content.settings) }) };
      case 'getFunction':
        return { data: await s.getFunction(req.content.name, req.content.version) };
      case 'listFunctions':
        return { data: await s.listFunctions() };
      case 'listVersions':
        return { data: await s.listVersions(req.content.name) };
      case 'setCurrentVersion':
        return { data: await s.setCurrentVersion(req.content.name, req.content.version) };
      case 'deleteFunction':
        return { data: await s.deleteFunction(req.content.name) };
      case 'createCall':
        return { data: await s.createCall(req.content) };
      case 'startCall':
        return { data: await s.startCall(req.content.callNum, req.content.node) };
      case 'requeueCall':
        return { data: await s.requeueCall(req.content.callNum) };
      case 'finishCall':
        return { data: await s.finishCall(req.content.callNum, req.content.outcome, req.content.node) };
      case 'getCall':
        return { data: await s.getCall(req.content.callNum) };
      case 'listCalls':
        return { data: await s.listCalls(req.content) };
      case 'listUnfinished':
        return { data: await s.listUnfinished() };
      default: {
        const never: never = req;
        throw new ProtocolError(`unknown msgType ${String((never as { msgType?: unknown }).msgType)}`);
      }
    }
  }
}

const codeOf = (e: unknown): string =>
  e instanceof ProtocolError
    ? 'BAD_REQUEST'
    : e instanceof NotFoundError
      ? 'NOT_FOUND'
      : e instanceof ConflictError
        ? 'CONFLICT'
        : 'INTERNAL';
