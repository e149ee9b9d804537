// The node's direct line to one warm loader: a unix socket in a folder of its own, mounted read-only into
// that container, which the loader dials once (protocol/loader.ts). Calls go over it without passing
// through dockerd, containerd-shim or a miniworker. The first connection is the loader's; the listener
// then closes, so nothing else can take its place. Every reply is validated: what comes out of a
// container is untrusted input. A loader of version 3 told to take several calls at once (allowCalls) has
// up to that many calls in flight beside one other request; each call has its own timeout, and a call
// given up on (its timeout passed) may still be answered, which is then ignored. A loader of one call at a
// time may be sent one call `behind` the call it runs: it reads it once it has answered the first, so it
// need not wait for this process in between; that call's timeout counts from then.
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { UID } from '../common/container-spec.js';
import { validate } from '../protocol/codec.js';
import {
  CONCURRENT_PROTOCOL,
  ENV_VIEW_PROTOCOL,
  expectedReply,
  HelloSchema,
  LINE_FILE,
  LOADER_PROTOCOL,
  OLDEST_LOADER_PROTOCOL,
  LoaderReplySchema,
  MAX_LINE,
  type LoaderReply,
  type LoaderRequest,
  type StreamChunk,
  type StreamHead,
} from '../protocol/loader.js';

export class LineClosed extends Error {}
export class LineTimeout extends Error {}
// The loader broke the protocol: a line that is not a reply, too long, or an answer to something not asked.
export class LineBroken extends Error {}
// The line closed while a call waited behind another: `certain` when the loader hung up before answering
// the call ahead (it reads in order, so it never began this one); else it may have begun it.
export class NotBegun extends LineClosed {
  constructor(
    message: string,
    readonly certain: boolean,
  ) {
    super(message);
  }
}

// A streamed answer's head or chunk for the call in flight (version 3): a text says what was wrong with it.
export type OnStream = (m: StreamHead | StreamChunk) => string | undefined;

interface Pending {
  request: LoaderRequest;
  timeoutMs: number;
  onStream?: OnStream;
  onBegin?(): void; // a call sent behind another: its loader has answered that one
  resolve(r: LoaderReply): void;
  reject(e: Error): void;
  timer?: NodeJS.Timeout;
}

export class LoaderLine {
  private socket?: Socket;
  private server?: Server;
  private pending?: Pending; // the request in flight (with allowCalls: the one that is not a call)
  private next?: Pending; // a call written behind the pending one
  private readonly calls = new Map<number, Pending>(); // with allowCalls: the calls in flight, by id
  private readonly abandoned = new Set<number>(); // with allowCalls: calls given up on, whose answer is ignored
  private slots = 1;
  private v = 0; // the version the loader said in hello
  private steadyEnv = false;
  private parts: string[] = [];
  private partLength = 0;
  private closed = false;
  private hello?: { resolve(): void; reject(e: Error): void };
  private readonly helloSeen: Promise<void>;

  private constructor(readonly dir: string) {
    this.helloSeen = new Promise<void>((resolve, reject) => (this.hello = { resolve, reject }));
    this.helloSeen.catch(() => undefined);
  }

  // Makes the folder and listens in it; the container that mounts it is created after this resolves.
  static async listen(dir: string): Promise<LoaderLine> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const line = new LoaderLine(dir);
    const path = join(dir, LINE_FILE);
    const server = createServer((s) => line.accept(s));
    line.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.on('error', (e) => line.close(new LineClosed(`the line's listener failed: ${e.message}`)));
    // Only the function's user may dial it (the folder is read-only inside the container).
    await chmod(path, 0o600);
    if (process.getuid?.() === 0) await chown(path, UID, UID);
    return line;
  }

  private accept(s: Socket): void {
    if (this.socket || this.closed) return void s.destroy();
    this.socket = s;
    this.server?.close();
    s.setEncoding('utf8');
    s.on('data', (chunk: string) => this.onData(chunk));
    // Everything it wrote has been read by then (a reset, when it went with requests it never read, comes
    // after the data queued before it): a call behind one it did not answer was never begun.
    s.on('error', () => this.close(new LineClosed('the loader hung up'), true));
    s.on('close', () => this.close(new LineClosed('the loader hung up'), true));
  }

  // Resolves once the loader has dialled in and said hello with the protocol this node speaks.
  ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LineTimeout(`the loader did not dial in within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    return Promise.race([this.helloSeen, timeout]).finally(() => clearTimeout(timer));
  }

  // The protocol version the loader said in hello (0 before it did).
  get version(): number {
    return this.v;
  }

  // Whether a call's variables leave the loader's process as they found it (version 4, or `steady`).
  get steady(): boolean {
    return this.steadyEnv;
  }

  // From now on up to n calls at once (a loader of CONCURRENT_PROTOCOL, loaded with concurrency n).
  allowCalls(n: number): void {
    if (this.v < CONCURRENT_PROTOCOL) throw new LineBroken(`a loader of protocol ${this.v} takes one call at a time`);
    this.slots = n;
  }

  // Ends one call in flight (protocol 3): its result comes back cancelled. Nothing for an older loader.
  cancel(id: number): void {
    if (this.closed || !this.socket || this.v < CONCURRENT_PROTOCOL) return;
    this.socket.write(JSON.stringify({ op: 'cancel', id }) + '\n');
  }

  // One request and its reply; the next request waits for this one (the loader serves one at a time), but
  // for calls after allowCalls, which go beside each other up to its number, and for one call sent
  // `behind` the call in flight.
  request(request: LoaderRequest, timeoutMs: number, onStream?: OnStream, behind?: { onBegin(): void }): Promise<LoaderReply> {
    if (this.closed || !this.socket) return Promise.reject(new LineClosed('the loader is not connected'));
    if (this.slots > 1 && request.op === 'call') return this.callBeside(request, timeoutMs, onStream);
    if (behind && (!this.callInFlight || this.next || request.op !== 'call'))
      return Promise.reject(new LineBroken('a call goes behind a call in flight, one at a time'));
    if (!behind && (this.pending || (this.slots === 1 && this.calls.size > 0)))
      return Promise.reject(new LineBroken('a request is already in flight on this line'));
    return new Promise<LoaderReply>((resolve, reject) => {
      const p: Pending = { request, timeoutMs, resolve, reject, onStream, onBegin: behind?.onBegin };
      if (behind) this.next = p;
      else this.begin(p);
      this.socket!.write(JSON.stringify(request) + '\n');
    });
  }

  // Whether a call of one at a time is in flight, with none behind it: one more may go behind it.
  get callInFlight(): boolean {
    return !this.closed && this.slots === 1 && this.pending?.request.op === 'call' && !this.next;
  }

  // The request is the loader's now: its timeout runs.
  private begin(p: Pending): void {
    this.pending = p;
    p.timer = setTimeout(() => {
      if (this.pending !== p) return;
      this.pending = undefined;
      p.reject(new LineTimeout('the loader did not answer in time'));
    }, p.timeoutMs);
  }

  private callBeside(request: LoaderRequest & { op: 'call' }, timeoutMs: number, onStream?: OnStream): Promise<LoaderReply> {
    if (this.calls.size >= this.slots) return Promise.reject(new LineBroken(`the line already has ${this.slots} calls in flight`));
    if (this.calls.has(request.id)) return Promise.reject(new LineBroken(`call ${request.id} is already in flight`));
    return new Promise<LoaderReply>((resolve, reject) => {
      const p: Pending = { request, timeoutMs, resolve, reject, onStream };
      p.timer = setTimeout(() => {
        if (this.calls.get(request.id) !== p) return;
        this.calls.delete(request.id);
        if (this.abandoned.size > 10_000) this.abandoned.clear();
        this.abandoned.add(request.id);
        reject(new LineTimeout('the loader did not answer in time'));
      }, timeoutMs);
      this.calls.set(request.id, p);
      this.socket!.write(JSON.stringify(request) + '\n');
    });
  }

  // A streamed answer's head or chunk, for the call of its id in flight (one given up on: dropped). Only a
  // call whose caller takes a stream gets one.
  private onStream(m: StreamHead | StreamChunk): void {
    const p = this.pending;
    const c = this.calls.get(m.id) ?? (p?.request.op === 'call' && p.request.id === m.id ? p : undefined);
    if (!c && this.abandoned.has(m.id)) return;
    if (!c?.onStream) return this.close(new LineBroken(`the loader sent a ${m.op} out of order (call ${m.id})`));
    const wrong = c.onStream(m);
    if (wrong !== undefined) this.close(new LineBroken(`the loader's streamed answer broke off: ${wrong}`));
  }

  // The request a reply answers (null: a late answer to a call given up on; undefined: none, out of order).
  private claim(reply: LoaderReply): Pending | null | undefined {
    if (reply.op === 'result' || (reply.op === 'error' && reply.id !== undefined)) {
      const c = this.calls.get(reply.id!);
      if (c) {
        this.calls.delete(reply.id!);
        return c;
      }
      if (reply.op === 'result' && this.abandoned.delete(reply.id)) return null;
    }
    const p = this.pending;
    if (!p) return undefined;
    const expected = expectedReply[p.request.op];
    const sameCall = p.request.op !== 'call' || reply.op !== 'result' || reply.id === p.request.id;
    if ((reply.op !== expected && reply.op !== 'error') || !sameCall) return undefined;
    this.pending = undefined;
    const next = this.next;
    if (next) {
      this.next = undefined;
      this.begin(next);
      next.onBegin?.();
    }
    return p;
  }

  // Only the new chunk is searched for a newline, so a long line costs linear time, and it is never held
  // beyond MAX_LINE: a loader cannot make this process buffer its output.
  private onData(chunk: string): void {
    let from = 0;
    while (!this.closed) {
      const nl = chunk.indexOf('\n', from);
      const part = nl < 0 ? chunk.slice(from) : chunk.slice(from, nl);
      this.partLength += part.length;
      if (this.partLength > MAX_LINE) return this.close(new LineBroken(`the loader sent a line longer than ${MAX_LINE / 2 ** 20} MiB`));
      if (part) this.parts.push(part);
      if (nl < 0) return;
      from = nl + 1;
      const line = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
      this.parts = [];
      this.partLength = 0;
      if (line.trim()) this.onLine(line);
    }
  }

  private onLine(line: string): void {
    let reply: LoaderReply;
    try {
      reply = validate(LoaderReplySchema, JSON.parse(line));
    } catch (e) {
      return this.close(
        new LineBroken(`the loader sent a malformed reply (${e instanceof SyntaxError ? 'not JSON' : (e as Error).message})`),
      );
    }
    if (reply.op === 'hello') {
      const hello = validate(HelloSchema, reply);
      if (hello.v < OLDEST_LOADER_PROTOCOL || hello.v > LOADER_PROTOCOL)
        return this.close(
          new LineBroken(`the loader speaks protocol ${hello.v}, this node ${OLDEST_LOADER_PROTOCOL} to ${LOADER_PROTOCOL}`),
        );
      this.v = hello.v;
      this.steadyEnv = hello.v >= ENV_VIEW_PROTOCOL || hello.steady === true;
      return this.hello?.resolve();
    }
    if (reply.op === 'head' || reply.op === 'chunk') return this.onStream(reply);
    const p = this.claim(reply);
    if (p === null) return;
    if (!p) {
      const got = reply.op === 'result' ? `a result for call ${reply.id}` : `"${reply.op}"`;
      const q = this.pending;
      const wanted = !q
        ? this.calls.size > 0
          ? `expected the result of one of calls ${[...this.calls.keys()].join(', ')}`
          : 'nothing was asked'
        : q.request.op === 'call'
          ? `expected the result of call ${q.request.id}`
          : `expected "${expectedReply[q.request.op]}"`;
      return this.close(new LineBroken(`the loader sent a reply out of order (${got}, ${wanted})`));
    }
    clearTimeout(p.timer);
    p.resolve(reply);
  }

  // Stops reading the loader (its writes wait) until resume(): a streamed answer's back-pressure.
  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    if (!this.closed) this.socket?.resume();
  }

  get open(): boolean {
    return !this.closed;
  }

  // `hungUp`: the loader closed the line, after all it wrote was read.
  close(why: Error = new LineClosed('the line was closed'), hungUp = false): void {
    if (this.closed) return;
    this.closed = true;
    this.hello?.reject(why);
    const p = this.pending;
    const next = this.next;
    this.pending = this.next = undefined;
    const calls = [...this.calls.values()];
    this.calls.clear();
    for (const q of p ? [p, ...calls] : calls) {
      clearTimeout(q.timer);
      q.reject(why);
    }
    next?.reject(new NotBegun(`${why.message} before it answered the call ahead`, hungUp));
    this.server?.close();
    this.socket?.destroy();
    // A folder already gone is what we want; the node's stop removes the whole lines folder.
    void rm(this.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
