// A streamed web answer on its way through the node (protocol/loader.ts, version 3): the loader's head and
// chunks, checked as they come (a head first and once, every piece within STREAM_CHUNK_LIMIT, at most
// STREAM_LIMIT bytes in all: a container's output is untrusted), passed on to the API as they come when
// the call asked to stream, else gathered into one response. It keeps what the call's record shows: the
// head, the size, and the first KiB. What the API has not taken yet is bounded: past RELAY_BUFFER bytes
// waiting to go, the relay asks its line to stop reading the loader (back-pressure reaches the function's
// writes), and to read again once they went.
import type { CallOutcome, WebResponse } from '../common/model.js';
import { RESULT_LIMIT, STREAM_LIMIT, type StreamChunk, type StreamHead } from '../protocol/loader.js';

export const RELAY_BUFFER = 4 * 1024 * 1024; // bytes sent towards the API and not gone yet, before it pauses
export const FIRST_BYTES = 1024; // what the record keeps of a streamed body

// Where a streamed answer goes: the API link, for a call that asked to stream. A chunk's promise settles
// once it left the node.
export interface StreamSink {
  head(h: { status: number; headers: Record<string, string | string[]> }): void;
  chunk(seq: number, data: string): Promise<void>;
}

export interface RelayOptions {
  sink?: StreamSink; // none: gather the answer into one response (up to RESULT_LIMIT bytes)
  check(raw: unknown): WebResponse | string; // a response as a proxy may send it on, or what is wrong with it
  pause(): void; // stop reading the loader
  resume(): void;
}

export class StreamRelay {
  private head?: WebResponse;
  private seq = 0;
  private bytes = 0;
  private waiting = 0; // bytes sent towards the API and not gone yet
  private paused = false;
  private readonly first: Buffer[] = [];
  private firstLength = 0;
  private readonly gathered: Buffer[] = [];

  constructor(private readonly o: RelayOptions) {}

  get streamed(): boolean {
    return this.head !== undefined;
  }

  // One message of the stream; a text says what was wrong (the line is then broken).
  take(m: StreamHead | StreamChunk): string | undefined {
    if (m.op === 'head') {
      if (this.head) return 'a second head for the same call';
      const checked = this.o.check({ status: m.status, headers: m.headers, body: '' });
      if (typeof checked === 'string') return `malformed response: ${checked}`;
      this.head = checked;
      this.o.sink?.head({ status: checked.status, headers: checked.headers });
      return undefined;
    }
    if (!this.head) return 'a chunk before its head';
    const data = Buffer.from(m.data, 'base64');
    if (data.length === 0) return undefined;
    this.bytes += data.length;
    if (this.bytes > STREAM_LIMIT) return `response too large: a streamed answer is at most ${STREAM_LIMIT} bytes`;
    if (this.firstLength < FIRST_BYTES) {
      const part = data.subarray(0, FIRST_BYTES - this.firstLength);
      this.first.push(part);
      this.firstLength += part.length;
    }
    if (!this.o.sink) {
      if (this.bytes > RESULT_LIMIT) return `response too large: its body is over ${RESULT_LIMIT} bytes`;
      this.gathered.push(data);
      return undefined;
    }
    this.waiting += data.length;
    if (this.waiting > RELAY_BUFFER && !this.paused) {
      this.paused = true;
      this.o.pause();
    }
    const gone = (): void => {
      this.waiting -= data.length;
      if (this.paused && this.waiting <= RELAY_BUFFER / 2) {
        this.paused = false;
        this.o.resume();
      }
    };
    // A piece the link could not send is lost with the link: the caller's answer breaks off, the call goes on.
    this.o.sink.chunk(this.seq++, m.data).then(gone, gone);
    return undefined;
  }

  // The call's outcome once its result came, for a call whose answer was streamed (its `result`: the first
  // KiB as text, as for any web answer).
  done(o: { ok: true; logs: string; durationMs: number }): CallOutcome {
    const head = this.head!;
    const first = Buffer.concat(this.first);
    const text = new TextDecoder().decode(first, { stream: true }); // a character cut at the end is left out
    const result = text.includes('\uFFFD') ? '' : text;
    if (!this.o.sink) {
      const body = Buffer.concat(this.gathered);
      return {
        status: 'DONE',
        result,
        logs: o.logs,
        durationMs: o.durationMs,
        response: { ...head, body: body.toString('base64'), bytes: body.length },
      };
    }
    const response: WebResponse = { ...head, body: first.toString('base64'), bytes: this.bytes, streamed: true };
    return { status: 'DONE', result, logs: o.logs, durationMs: o.durationMs, response };
  }
}
