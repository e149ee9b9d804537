// Client of the DB service: one DEALER, many requests in flight, matched to replies by id.
import { Dealer } from 'zeromq';
import { SendQueue } from '../common/zmq.js';
import { clientOptions, type CurveClient } from '../common/curve.js';
import { errText } from '../common/log.js';
import { DB_MESSAGES, DbReplySchema, type DbContent, type DbMsgType, type DbResults } from '../protocol/db.js';

export class DbError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

interface Pending {
  resolve(v: { data: unknown; blobs: Buffer[] }): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

// The DB service in this same process (zfaas up): requests skip the socket and the JSON, and still go
// through the service's write queue (reads beside it), so ordering and error codes are the same as over ZMQ.
export interface LocalDb {
  local(msgType: DbMsgType, content: unknown, blobs: Buffer[]): Promise<{ data: unknown; blobs: Buffer[] }>;
}

export class DbClient {
  private readonly socket?: Dealer;
  private readonly out?: SendQueue;
  private readonly address: string;
  private readonly inProcess?: LocalDb;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    target: string | LocalDb,
    private readonly timeoutMs = 10_000,
    curve?: CurveClient,
  ) {
    if (typeof target !== 'string') {
      this.inProcess = target;
      this.address = 'in-process';
      return;
    }
    this.address = target;
    // immediate: a request made while the DB is down fails now instead of waiting in a queue and
    // being applied long after its caller gave up.
    this.socket = new Dealer({ immediate: true, sendTimeout: 2_000, linger: 0, ...clientOptions(curve) });
    this.out = new SendQueue(this.socket);
    this.socket.connect(target);
    void this.loop();
  }

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>, blobs: Buffer[] = []): Promise<DbResults[K]> {
    return (await this.requestWithBlobs(msgType, content, blobs)).data;
  }

  async requestWithBlobs<K extends DbMsgType>(
    msgType: K,
    content: DbContent<K>,
    blobs: Buffer[] = [],
  ): Promise<{ data: DbResults[K]; blobs: Buffer[] }> {
    if (this.closed) throw new DbError('db client closed', 'CLOSED');
    if (this.inProcess) {
      const r = await this.inProcess.local(msgType, content, blobs);
      return { data: r.data as DbResults[K], blobs: r.blobs };
    }
    const id = this.nextId++;
    const result = new Promise<{ data: unknown; blobs: Buffer[] }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DbError(`db service at ${this.address} did not answer ${msgType} within ${this.timeoutMs} ms`, 'UNAVAILABLE'));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
    result.catch(() => undefined); // awaited below; this keeps an early timeout from being 'unhandled'
    try {
      await this.out!.send([Buffer.alloc(0), Buffer.from(JSON.stringify({ id, msgType, content })), ...blobs]);
    } catch (e) {
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
      throw new DbError(`db service at ${this.address} unreachable (${errText(e)})`, 'UNAVAILABLE');
    }
    const r = await result;
    return { data: checkedReply(msgType, r.data, this.address), blobs: r.blobs };
  }

  close(): void {
    this.closed = true;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new DbError('db client closed', 'CLOSED'));
    }
    this.pending.clear();
    this.socket?.close();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket!) {
        const [, head, ...blobs] = frames as Buffer[];
        if (!head) continue;
        let parsed;
        try {
          parsed = DbReplySchema.safeParse(JSON.parse(head.toString('utf8')));
        } catch {
          continue;
        }
        if (!parsed.success || parsed.data.id === undefined) continue;
        const p = this.pending.get(parsed.data.id);
        if (!p) continue; // a late reply to a request that timed out
        clearTimeout(p.timer);
        this.pending.delete(parsed.data.id);
        if (parsed.data.ok) p.resolve({ data: parsed.data.data, blobs });
        else p.reject(new DbError(parsed.data.error, parsed.data.code ?? 'INTERNAL'));
      }
    } catch (e) {
      if (!this.closed) throw e;
    }
  }
}

// A reply from over the wire is input like any other: its data must have the shape its message declares
// (protocol/db.ts) before anyone reads it. The data is handed on as it came (a field the schema does not
// name is kept). In-process answers come from this very code and are not checked again.
function checkedReply<K extends DbMsgType>(msgType: K, data: unknown, address: string): DbResults[K] {
  const checked = DB_MESSAGES[msgType].reply.safeParse(data);
  if (checked.success) return data as DbResults[K];
  const first = checked.error.issues[0];
  const where = first ? `${first.path.join('.') || '(root)'}: ${first.message}` : 'unknown';
  throw new DbError(`db service at ${address} answered ${msgType} with a reply that does not match its declaration (${where})`, 'INTERNAL');
}
