// The DB service: a ZMQ ROUTER in front of the store (db/store-api.ts: LevelDB in the data folder, or
// PostgreSQL). Each request gets exactly one reply, and a malformed
// request gets an error reply instead of a crash.
//
// Reads run at once, beside everything else: they see LevelDB and the store's `live` calls as of the last
// committed write, which includes every write already answered (a write is answered only after LevelDB
// wrote it). Writes are applied one at a time, in the order they arrived, since read-modify-write (call
// numbers, versions, first final state wins) needs it. Writes that arrive while one group is being
// written form the next group, and the call writes of a group go to LevelDB as one batch (group commit):
// a warm call's createCall and its callIntents cost one batch per group instead of a write each, and a
// call's start is held a few ms for the next write, so that a warm call's start and outcome are one write
// of its record. In-process callers (local()) follow the same rules.
//
// An in-process caller may also be told a call write's result as soon as its batch has gone to LevelDB
// (`planned`, LevelDB only: no other service writes the store), before LevelDB has answered: the API starts
// a call, or wakes the call's waiters, a LevelDB round trip sooner. Reads wait until that batch is written,
// so whoever was told sees the same record in every read after. A write told early that cannot be written
// fails with its group (it is not planned again alone: it was told this plan).
import { Router } from 'zeromq';
import { createHash } from 'node:crypto';
import { SendQueue } from '../common/zmq.js';
import { logFailedHandshakes, serverOptions, startZap, type CurveServer } from '../common/curve.js';
import { errText, type Logger } from '../common/log.js';
import { parseJsonFrame, ProtocolError, validate } from '../protocol/codec.js';
import { assertWireForm, checkingInProcess } from '../common/wire-check.js';
import {
  DB_MESSAGES,
  dbKind,
  DbEnvelopeSchema,
  DbRequestSchema,
  type DbMsgOfKind,
  type DbRequest,
  type DbResults,
} from '../protocol/db.js';
import { ConflictError, NotFoundError, RetryableError, type StoreBackend } from './store-api.js';
import type { CallGroup } from './call-group.js';
import { openStore } from './open-store.js';
import { BackupSessions, type BackupOptions } from './backup.js';
import { Tenancy, TenancyError } from './tenancy.js';
import { DbError } from './client.js';
import { FunctionSettingsSchema } from '../common/model.js';

// The call path's own writes, made in-process by the API's typed code (`zfaas up`): taken as they are, not
// parsed again, as the in-process link between the broker and the node is not (a message is checked where
// it enters the process). Their schemas fill in nothing (no default, no transform: protocol/db.test.ts), and
// a record takes only the fields it names (call-group.ts, call-life.ts). Every other in-process request is
// parsed as one from the socket is, for the defaults its schema fills in.
export const TRUSTED_LOCAL: ReadonlySet<DbRequest['msgType']> = new Set(['createCall', 'callIntent']);

export interface DbServerOptions {
  bind: string;
  dataDir: string; // the LevelDB folder (unused with `store`)
  store?: string; // a postgres:// URL: the store is there; none, LevelDB in dataDir (db/open-store.ts)
  curve?: CurveServer; // with keys: only the API's and known instances' keys get in
  log: Logger;
  backup?: BackupOptions; // backup sessions' limits (db/backup.ts); the defaults unless a test sets them
  secretsKey?: Buffer; // the sealing key of secrets (db/tenancy.ts sealingKey); none: secrets are refused
}

interface Answer {
  data: DbResults[keyof DbResults];
  blobs?: Buffer[];
}

type CallWrite = Extract<DbRequest, { msgType: DbMsgOfKind<'callWrite'> }>;
const isCallWrite = (req: DbRequest): req is CallWrite => dbKind(req.msgType) === 'callWrite';

interface WriteJob {
  req: DbRequest;
  blobs: Buffer[];
  resolve(answer: Answer): void;
  reject(e: unknown): void;
  planned?(data: unknown): void; // told the write's result once its batch went to LevelDB (see above)
}

// A call write planned into the current group, answered when the group is written.
interface Planned {
  job: WriteJob;
  req: CallWrite;
  data: Answer['data'];
}

// At most this many writes in one group, so that one group's batch and replies stay short.
const MAX_GROUP = 1024;
// A call's start waits this long for the next write (most often its own outcome, for a warm call), so that
// both are one write of its record instead of two; nobody waits on a start's answer (api/calls.ts).
const START_HOLD_MS = 10;
const isStart = (req: DbRequest): boolean => req.msgType === 'callIntent' && req.content.intent.kind === 'started';
const ALONE_TRIES = 5; // a write applied alone, while its failure is one that passes

export class DbServer {
  private readonly socket: Router;
  private readonly out: SendQueue;
  private store!: StoreBackend; // opened (and migrated) by start()
  private backups!: BackupSessions;
  private tenancy!: Tenancy;
  private readonly writes: WriteJob[] = []; // arrived, not yet taken into a group
  private readonly held: WriteJob[] = []; // starts of calls, before `writes` (START_HOLD_MS)
  private heldTimer?: NodeJS.Timeout;
  private writing = false; // a writeQueued() is running
  private written?: Promise<void>; // the batch of a group told early, until LevelDB wrote it: reads wait
  private readonly inFlight = new Set<Promise<unknown>>(); // every request not yet answered, for stop()
  private closed = false;

  constructor(private readonly opts: DbServerOptions) {
    // mandatory: a reply to a client whose queue is full waits for room (a few seconds at most) instead
    // of being dropped, which a burst of thousands of requests from one client would otherwise cause.
    this.socket = new Router({ ...serverOptions(opts.curve), mandatory: true, sendTimeout: 5000 });
    this.out = new SendQueue(this.socket);
  }

  async start(): Promise<void> {
    this.store = await openStore({ dataDir: this.opts.dataDir, store: this.opts.store }, this.opts.log);
    this.backups = new BackupSessions(this.store, this.opts.log, this.opts.backup);
    this.tenancy = new Tenancy(this.store.tenancy, this.opts.secretsKey);
    if (this.opts.curve) {
      await startZap(this.opts.curve.allowed, this.opts.log);
      logFailedHandshakes(this.socket, this.opts.log, 'db client');
    }
    await this.socket.bind(this.opts.bind);
    const where = this.store.engine === 'leveldb' ? { data: this.opts.dataDir } : { store: 'postgres' };
    this.opts.log.info({ bind: this.opts.bind, ...where }, 'db service listening');
    void this.loop();
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.release();
    this.socket.close();
    // Every request already taken gets its answer before LevelDB closes; none is taken after `closed`.
    await Promise.allSettled([...this.inFlight]);
    await this.backups?.closeAll(); // unset when start() never ran
    await this.store?.close();
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inFlight.add(p);
    const forget = (): void => void this.inFlight.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) void this.track(this.handle(frames as Buffer[]));
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
      // Nothing is awaited before dispatch(): a write joins the queue in the order it arrived.
      const answer = await this.dispatch(validate(DbRequestSchema, raw), body.slice(1));
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

  // In-process requests (see LocalDb in client.ts): the same read/write rules and error codes, no socket.
  local(
    msgType: DbRequest['msgType'],
    content: unknown,
    blobs: Buffer[],
    planned?: (data: unknown) => void,
  ): Promise<{ data: unknown; blobs: Buffer[] }> {
    // Stopping: what is in flight is answered, nothing new is taken (as the closed socket takes nothing).
    if (this.closed) return Promise.reject(new DbError('db service stopped', 'UNAVAILABLE'));
    let answer: Promise<Answer>;
    try {
      const trusted = TRUSTED_LOCAL.has(msgType);
      if (trusted && checkingInProcess()) assertWireForm(DB_MESSAGES[msgType].content, content, `the in-process ${msgType}`);
      const req = trusted ? ({ msgType, content } as DbRequest) : validate(DbRequestSchema, { msgType, content });
      answer = this.dispatch(req, blobs, this.store.engine === 'leveldb' ? planned : undefined);
    } catch (e) {
      answer = Promise.reject(e);
    }
    return this.track(
      answer.then(
        (a) => ({ data: a.data, blobs: a.blobs ?? [] }),
        (e: unknown) => {
          throw new DbError(errText(e), codeOf(e));
        },
      ),
    );
  }

  // A read runs now; a write joins the queue (synchronously, so arrival order is write order).
  private dispatch(req: DbRequest, blobs: Buffer[], planned?: (data: unknown) => void): Promise<Answer> {
    if (dbKind(req.msgType) === 'read' && !isCallWrite(req)) {
      const read = req as Exclude<DbRequest, CallWrite>;
      return this.written ? this.written.then(() => this.apply(read, blobs)) : this.apply(read, blobs);
    }
    return new Promise<Answer>((resolve, reject) => {
      const job: WriteJob = { req, blobs, resolve, reject, ...(planned ? { planned } : {}) };
      if (isStart(req) && !this.closed) {
        this.held.push(job);
        this.heldTimer ??= setTimeout(() => this.release(), START_HOLD_MS);
        return;
      }
      this.release(job);
    });
  }

  // The held starts join the queue ahead of `job` (arrival order is write order), and the queue is written.
  private release(job?: WriteJob): void {
    clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.writes.push(...this.held.splice(0));
    if (job) this.writes.push(job);
    if (!this.writing && this.writes.length > 0) {
      this.writing = true;
      void this.writeQueued();
    }
  }

  // Applies the queued writes a group at a time: what arrived while one group was written is the next.
  private async writeQueued(): Promise<void> {
    try {
      while (this.writes.length > 0) {
        const jobs = this.writes.splice(0, MAX_GROUP);
        // applyGroup answers each write itself; should it still throw, no caller is left waiting.
        await this.applyGroup(jobs).catch((e: unknown) => {
          for (const job of jobs) job.reject(e);
        });
      }
    } finally {
      // No await between the last look at the queue and this: a write arriving now starts a new writeQueued().
      this.writing = false;
    }
  }

  // In order: runs of call writes are planned into one CallGroup and committed as one batch; any other
  // write (runtimes, archives, functions: rare, and with read-modify-write of their own) first commits
  // the run before it, then is applied alone.
  // A write the store could not plan for a passing reason (RetryableError: a lock another DB service held)
  // waits, with those after it in its group, until the group is written, then is applied alone.
  private async applyGroup(jobs: WriteJob[]): Promise<void> {
    let group = this.store.group();
    let planned: Planned[] = [];
    const later: Array<{ job: WriteJob; req: CallWrite }> = [];
    const flush = async (): Promise<void> => {
      await this.commit(planned, group);
      for (const { job, req } of later.splice(0)) await this.alone(job, req);
    };
    // The calls a run of call writes names, read ahead into its group (from job `from` on).
    const ahead = async (from: number): Promise<void> => {
      const nums: number[] = [];
      for (let i = from; i < jobs.length; i++) {
        const req = jobs[i]!.req;
        if (!isCallWrite(req)) break;
        if (req.msgType === 'callIntent' || req.msgType === 'dismissDeadLetter' || req.msgType === 'recordDelivery')
          nums.push(req.content.callNum);
      }
      try {
        await group.readAhead(nums);
      } catch (e) {
        if (!(e instanceof RetryableError)) throw e; // the writes find out themselves, one by one
      }
    };
    await ahead(0);
    for (const [i, job] of jobs.entries()) {
      const req = job.req;
      if (isCallWrite(req)) {
        if (later.length > 0) later.push({ job, req });
        else
          try {
            planned.push({ job, req, data: await planCall(group, req) });
          } catch (e) {
            if (e instanceof RetryableError) later.push({ job, req });
            else job.reject(e); // planning adds nothing to the group when it throws
          }
        continue;
      }
      await flush();
      group = this.store.group();
      planned = [];
      try {
        job.resolve(await this.apply(req, job.blobs));
      } catch (e) {
        job.reject(e);
      }
      await ahead(i + 1); // after the write alone: it may need what the group would lock
    }
    await flush();
  }

  // One call write in a group of its own, tried again (a few times) while the store says the reason it
  // failed passes.
  private async alone(job: WriteJob, req: CallWrite): Promise<void> {
    for (let tries = 1; ; tries++) {
      const group = this.store.group();
      let data: Answer['data'];
      try {
        data = await planCall(group, req);
      } catch (e) {
        // The write staged nothing: this commit writes nothing, and ends what the group's reads began.
        await group.commit().catch(() => undefined);
        if (e instanceof RetryableError && tries < ALONE_TRIES) continue;
        job.reject(e);
        return;
      }
      try {
        await group.commit();
        job.resolve({ data });
        return;
      } catch (e) {
        if (!(e instanceof RetryableError) || tries >= ALONE_TRIES) {
          job.reject(e);
          return;
        }
      }
    }
  }

  // Answers a group's writes once its batch is written. If the batch fails (a value LevelDB cannot
  // encode, a disk error; on PostgreSQL, a key another DB service wrote first), each write is applied
  // again alone, so that one bad write fails only itself.
  private async commit(planned: Planned[], group: CallGroup): Promise<void> {
    const written = group.commit(); // also with nothing planned: a backend ends what the group's reads began
    const told = planned.filter((p) => p.job.planned);
    if (told.length > 0) {
      const barrier = written.then(
        () => undefined,
        () => undefined,
      );
      this.written = barrier;
      void barrier.then(() => {
        if (this.written === barrier) this.written = undefined;
      });
      for (const { job, data } of told) {
        try {
          job.planned?.(data);
        } catch (e) {
          this.opts.log.error({ err: errText(e) }, 'a write told early failed to take it');
        }
      }
    }
    try {
      await written;
    } catch (e) {
      const again = planned.filter((p) => !p.job.planned);
      for (const { job, req, data } of told) {
        if (req.msgType === 'createCall') this.store.passCallNum?.((data as { callNum: number }).callNum);
        job.reject(e);
      }
      if (again.length === 1 && planned.length === 1 && !(e instanceof RetryableError)) {
        again[0]!.job.reject(e);
        return;
      }
      for (const { job, req } of again) await this.alone(job, req);
      return;
    }
    for (const { job, data } of planned) job.resolve({ data });
  }

  // Reads, and the writes other than call writes (those go through planCall into a group).
  private async apply(req: Exclude<DbRequest, CallWrite>, blobs: Buffer[]): Promise<Answer> {
    const s = this.store;
    const t = this.tenancy;
    switch (req.msgType) {
      case 'ping':
        return { data: { ok: true, engine: s.engine } };
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
      case 'deleteVersion':
        return { data: await s.deleteVersion(req.content.name, req.content.version) };
      case 'endBuild':
        return { data: await s.endBuild(req.content) };
      case 'listDeadLetters':
        return { data: await s.listDeadLetters(req.content) };
      case 'getCall':
        return { data: await s.getCall(req.content.callNum) };
      case 'listCalls':
        return { data: await s.listCalls(req.content) };
      case 'getCalls': {
        const found = await Promise.all(req.content.callNums.map((n) => s.getCall(n)));
        return { data: found.filter((c) => c !== null) };
      }
      case 'listUnfinished':
        return { data: await s.listUnfinished() };
      case 'putSchedule':
        return { data: await s.putSchedule(req.content) };
      case 'listSchedules':
        return { data: await s.listSchedules(req.content.funcName, req.content.namespace) };
      case 'deleteSchedule':
        return { data: await s.deleteSchedule(req.content.funcName, req.content.id) };
      case 'recordScheduleRun':
        return { data: await s.recordScheduleRun(req.content) };
      case 'putTrigger':
        return { data: await s.putTrigger(req.content) };
      case 'listTriggers':
        return { data: await s.listTriggers(req.content.funcName, req.content.namespace) };
      case 'deleteTrigger':
        return { data: await s.deleteTrigger(req.content.funcName, req.content.id) };
      case 'pauseTrigger':
        return { data: await s.pauseTrigger(req.content.funcName, req.content.id, req.content.paused) };
      case 'leaseTrigger':
        return { data: await s.leaseTrigger(req.content) };
      case 'leaseApi':
        return { data: await s.leaseApi(req.content) };
      case 'adoptCalls':
        return { data: await s.adoptCalls(req.content.adopter) };
      case 'createNamespace':
        return { data: await t.createNamespace(req.content.name, req.content.quotas, () => s.purgeNamespace(req.content.name)) };
      case 'getNamespace':
        return { data: await t.getNamespace(req.content.name) };
      case 'listNamespaces':
        return { data: await t.listNamespaces() };
      case 'deleteNamespace':
        return { data: await t.deleteNamespace(req.content.name, () => s.purgeNamespace(req.content.name)) };
      case 'setQuotas':
        return { data: await t.setQuotas(req.content.name, req.content.quotas) };
      case 'putKey':
        return { data: await t.putKey(req.content) };
      case 'getKey':
        return { data: await t.getKey(req.content.id) };
      case 'listKeys':
        return { data: await t.listKeys(req.content.namespace) };
      case 'putSecret': {
        const value = blobs[0];
        if (!value) throw new ProtocolError('putSecret needs the value as the frame after the request');
        return { data: await t.putSecret(req.content.namespace, req.content.name, value) };
      }
      case 'listSecrets':
        return { data: await t.listSecrets(req.content.namespace) };
      case 'deleteSecret':
        return { data: await t.deleteSecret(req.content.namespace, req.content.name) };
      case 'readSecrets': {
        const { values, ...data } = await t.readSecrets(req.content.namespace, req.content.names);
        return { data, blobs: values };
      }
      case 'backupOpen':
        return { data: await this.backups.open() };
      case 'backupNext': {
        const { frames, ...data } = await this.backups.next(req.content.id);
        return { data, blobs: frames };
      }
      case 'backupClose':
        return { data: await this.backups.close(req.content.id) };
      default: {
        const never: never = req;
        throw new ProtocolError(`unknown msgType ${String((never as { msgType?: unknown }).msgType)}`);
      }
    }
  }
}

// Plans one call write into `group` (see CallGroup): its answer, true once the group is committed.
async function planCall(group: CallGroup, req: CallWrite): Promise<Answer['data']> {
  switch (req.msgType) {
    case 'createCall':
      return group.createCall(req.content);
    case 'callIntent':
      return group.callIntent(req.content.callNum, req.content.intent);
    case 'dismissDeadLetter':
      return group.dismissDeadLetter(req.content.callNum);
    case 'claimDeliveries':
      return group.claimDeliveries(req.content.leaseMs, req.content.limit);
    case 'recordDelivery': {
      const { callNum, delivery, state, nextAt } = req.content;
      return group.recordDelivery(callNum, delivery, state, nextAt);
    }
  }
}

const codeOf = (e: unknown): string =>
  e instanceof TenancyError
    ? e.code
    : e instanceof ProtocolError
      ? 'BAD_REQUEST'
      : e instanceof NotFoundError
        ? 'NOT_FOUND'
        : e instanceof ConflictError
          ? 'CONFLICT'
          : 'INTERNAL';
