// Client of the DB service: one DEALER, many requests in flight, matched to replies by id. Given several
// addresses (`--db a,b`, DB services sharing one PostgreSQL store) it sends to one and moves to the next
// when that one stops answering (a send that cannot go, or silence while a request waits and a ping goes
// unanswered): the requests in flight go again to the next one where that is safe (db/resend.ts), the
// others fail as UNAVAILABLE. With one address nothing of that runs: a request waits up to its timeout.
import { randomBytes } from 'node:crypto';
import { Dealer } from 'zeromq';
import { SendQueue } from '../common/zmq.js';
import { clientOptions, type CurveClient } from '../common/curve.js';
import { errText } from '../common/log.js';
import { DB_MESSAGES, DbReplySchema, type DbContent, type DbMsgType, type DbResults } from '../protocol/db.js';
import { resendable } from './resend.js';
import { requestIdAt } from './call-group.js';

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
  frames: Buffer[]; // as sent, to send again after a failover
  msgType: DbMsgType;
  sentAt: number;
  probe?: boolean; // a liveness ping of the failover check, never sent again
}

// The DB service in this same process (zfaas up): requests skip the socket and the JSON, and still go
// through the service's write queue (reads beside it), so ordering and error codes are the same as over ZMQ.
// `planned`: told the result of a call write before LevelDB answered (db/server.ts says when).
export interface LocalDb {
  local(
    msgType: DbMsgType,
    content: unknown,
    blobs: Buffer[],
    planned?: (data: unknown) => void,
  ): Promise<{ data: unknown; blobs: Buffer[] }>;
}

// How long the current DB service may stay silent while a request waits before it is pinged, and then
// given up for the next address. Tests shorten it.
export const FAILOVER_SILENCE_MS = 1_500;
const FAILOVER_SEND_MS = 500;

// The addresses of a `--db` setting: one, or several separated by commas.
export function dbAddresses(setting: string): string[] {
  const list = setting
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  if (list.length === 0) throw new DbError(`no DB service address in "${setting}"`, 'BAD_REQUEST');
  return list;
}

export class DbClient {
  private socket?: Dealer;
  private out?: SendQueue;
  private readonly addresses: string[] = [];
  private current = 0;
  private readonly inProcess?: LocalDb;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private readonly failover: boolean;
  private watch?: NodeJS.Timeout;
  private lastHeard = Date.now();
  private readonly requestPrefix = randomBytes(6).toString('hex'); // request ids of createCall (see resend.ts)
  private switching = false;

  constructor(
    target: string | LocalDb,
    private readonly timeoutMs = 10_000,
    private readonly curve?: CurveClient,
    private readonly silenceMs = FAILOVER_SILENCE_MS,
  ) {
    if (typeof target !== 'string') {
      this.inProcess = target;
      this.failover = false;
      return;
    }
    this.addresses = dbAddresses(target);
    this.failover = this.addresses.length > 1;
    this.open();
    if (this.failover) {
      this.watch = setInterval(() => this.check(), Math.max(50, Math.floor(this.silenceMs / 3)));
      this.watch.unref();
    }
  }

  // The DB service this client sends to now.
  get address(): string {
    return this.addresses[this.current] ?? 'in-process';
  }

  private open(): void {
    // immediate: a request made while the DB is down fails now instead of waiting in a queue and
    // being applied long after its caller gave up; sooner with another address to go to.
    const sendTimeout = this.failover ? FAILOVER_SEND_MS : 2_000;
    const socket = new Dealer({ immediate: true, sendTimeout, linger: 0, ...clientOptions(this.curve) });
    this.socket = socket;
    this.out = new SendQueue(socket);
    socket.connect(this.address);
    this.lastHeard = Date.now();
    void this.loop(socket);
  }

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>, blobs: Buffer[] = []): Promise<DbResults[K]> {
    return (await this.requestWithBlobs(msgType, content, blobs)).data;
  }

  // As request(), and `planned` may be told the result sooner: with the DB service in this process, once
  // the write's batch went to LevelDB; the promise still settles once it was written (or failed). Over a
  // socket, or on PostgreSQL, `planned` is not called.
  async requestPlanned<K extends DbMsgType>(
    msgType: K,
    content: DbContent<K>,
    planned: (data: DbResults[K]) => void,
  ): Promise<DbResults[K]> {
    return (await this.requestWithBlobs(msgType, content, [], planned)).data;
  }

  async requestWithBlobs<K extends DbMsgType>(
    msgType: K,
    content: DbContent<K>,
    blobs: Buffer[] = [],
    planned?: (data: DbResults[K]) => void,
  ): Promise<{ data: DbResults[K]; blobs: Buffer[] }> {
    if (this.closed) throw new DbError('db client closed', 'CLOSED');
    if (this.inProcess) {
      const told = planned && ((data: unknown) => planned(data as DbResults[K]));
      const r = await this.inProcess.local(msgType, content, blobs, told);
      return { data: r.data as DbResults[K], blobs: r.blobs };
    }
    const id = this.nextId++;
    // Resent to another service, the same createCall answers the call the first one made.
    const body =
      this.failover && msgType === 'createCall'
        ? { ...content, requestId: `${requestIdAt(Date.now())}-${this.requestPrefix}-${id}` }
        : content;
    const frames = [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, msgType, content: body })), ...blobs];
    const r = await this.send(id, msgType, frames);
    return { data: checkedReply(msgType, r.data, this.address), blobs: r.blobs };
  }

  private async send(id: number, msgType: DbMsgType, frames: Buffer[], probe = false): Promise<{ data: unknown; blobs: Buffer[] }> {
    const result = new Promise<{ data: unknown; blobs: Buffer[] }>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new DbError(`db service at ${this.address} did not answer ${msgType} within ${this.timeoutMs} ms`, 'UNAVAILABLE'));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer, frames, msgType, sentAt: Date.now(), ...(probe ? { probe } : {}) });
    });
    result.catch(() => undefined); // awaited below; this keeps an early timeout from being 'unhandled'
    const socket = this.socket;
    try {
      await this.out!.send(frames);
    } catch (e) {
      if (this.failover && !probe && this.pending.has(id)) {
        this.switchOver(`send failed: ${errText(e)}`, socket); // it and the others in flight go to the next service
        return result;
      }
      const p = this.pending.get(id);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(id);
      }
      throw new DbError(`db service at ${this.address} unreachable (${errText(e)})`, 'UNAVAILABLE');
    }
    return result;
  }

  // The failover check: a request waits and the service said nothing for a while: ping it; still
  // nothing after as long again: the next address.
  private check(): void {
    if (this.closed || this.pending.size === 0) return;
    const now = Date.now();
    const silent = now - this.lastHeard;
    let oldest = now;
    let probing = false;
    for (const p of this.pending.values()) {
      oldest = Math.min(oldest, p.sentAt);
      if (p.probe) probing = true;
    }
    if (now - oldest < this.silenceMs || silent < this.silenceMs) return;
    if (silent >= 2 * this.silenceMs) return this.switchOver(`no answer for ${silent} ms`, this.socket);
    if (!probing) {
      const id = this.nextId++;
      const frames = [Buffer.alloc(0), Buffer.from(JSON.stringify({ id, msgType: 'ping', content: {} }))];
      this.send(id, 'ping', frames, true).catch(() => undefined);
    }
  }

  // To the next address: a fresh socket (whatever the old one queued is dropped), and every request in
  // flight either sent again there or failed. Only a failure of the socket in use moves it on (the
  // requests sent again on the next one may fail too, and that moves it once).
  private switchOver(why: string, failed: Dealer | undefined): void {
    if (this.switching || this.closed || failed !== this.socket) return;
    this.switching = true;
    const from = this.address;
    this.socket?.close();
    this.current = (this.current + 1) % this.addresses.length;
    this.open();
    const again: Pending[] = [];
    for (const [id, p] of this.pending) {
      if (p.probe) {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(new DbError('probe dropped', 'UNAVAILABLE'));
      } else if (resendable(p.msgType)) {
        p.sentAt = Date.now();
        again.push(p);
      } else {
        clearTimeout(p.timer);
        this.pending.delete(id);
        p.reject(
          new DbError(`db service at ${from} stopped answering (${why}): ${p.msgType} may or may not have been applied`, 'UNAVAILABLE'),
        );
      }
    }
    this.switching = false;
    this.onSwitch?.({ from, to: this.address, why, resent: again.length });
    const socket = this.socket;
    for (const p of again) this.out!.send(p.frames).catch((e: unknown) => this.switchOver(`send failed: ${errText(e)}`, socket));
  }

  // Told of every move to another DB service (the API and the instance log it).
  onSwitch?: (s: { from: string; to: string; why: string; resent: number }) => void;

  close(): void {
    this.closed = true;
    clearInterval(this.watch);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new DbError('db client closed', 'CLOSED'));
    }
    this.pending.clear();
    this.socket?.close();
  }

  private async loop(socket: Dealer): Promise<void> {
    try {
      for await (const frames of socket) {
        if (socket !== this.socket) break; // replaced by a failover: its late replies are not taken
        this.lastHeard = Date.now();
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
      if (!this.closed && socket === this.socket && !socket.closed) throw e;
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
