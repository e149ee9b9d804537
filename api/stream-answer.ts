// A web call's streamed answer, written to its caller as the node passes it on (./streams.ts): the head as
// soon as it comes (flushed, with Nagle off, so the first byte goes at once), each chunk as it comes
// (chunked transfer; `text/event-stream` is Server-Sent Events: never buffered, never compressed), then the
// end once the call is DONE; a call that ended otherwise cuts the connection, so the caller sees an answer
// that broke off rather than a whole one. A caller that goes away before the end cancels the call (one that
// left before the function's first write, once that write comes: until then the answer may not stream). What
// waits to be written to a slow caller is bounded: past ANSWER_BUFFER bytes the call is cancelled too.
import type { ServerResponse } from 'node:http';
import type { CallOutcome } from '../common/model.js';
import { errText, type Logger } from '../common/log.js';
import { isolate } from '../common/web-headers.js';
import { HOP_BY_HOP } from '../protocol/loader.js';
import type { StreamPiece } from './broker.js';

export const ANSWER_BUFFER = 16 * 1024 * 1024; // bytes written and not yet taken by the caller's connection

export interface StreamAnswerDeps {
  res: ServerResponse;
  method: string;
  callNum: number;
  cancel(callNum: number): Promise<unknown>; // the existing cancel path (../cancel.ts)
  log: Logger;
}

// A function's headers on the answer: isolated from the API's origin, hop-by-hop ones and the length left
// out (the API sets its own), any Node still refuses logged and not sent.
export function writeHeaders(res: ServerResponse, headers: Record<string, string | string[]>, callNum: number, log: Logger): void {
  for (const [name, value] of Object.entries(isolate(headers))) {
    if (HOP_BY_HOP.has(name) || name === 'content-length') continue;
    try {
      res.setHeader(name, value);
    } catch (e) {
      // The node checked every header; one Node still refuses is not sent, and said so.
      log.warn({ callNum, header: name, err: errText(e) }, 'response header refused');
    }
  }
}

export class StreamAnswer {
  private attempt?: number; // the run whose answer this is: the first that sent a head
  private nextSeq = 0;
  private over = false;
  private gone = false; // the caller's connection closed before the answer ended

  constructor(private readonly d: StreamAnswerDeps) {
    d.res.on('close', () => {
      if (d.res.writableEnded) return;
      this.gone = true;
      if (this.streaming) this.stop('the caller went away before the end of the answer');
    });
  }

  // Whether the answer began: the head was written.
  get streaming(): boolean {
    return this.attempt !== undefined;
  }

  take(p: StreamPiece): void {
    const { res } = this.d;
    if (this.over) return;
    if (p.type === 'head') {
      if (this.streaming) return;
      this.attempt = p.attempt;
      // The caller left while the function had not written yet: nobody takes what it streams.
      if (this.gone) return this.stop('the caller went away before the answer began');
      writeHeaders(res, p.headers, this.d.callNum, this.d.log);
      const type = String(res.getHeader('content-type') ?? '');
      if (/^text\/event-stream/i.test(type)) {
        if (!res.hasHeader('cache-control')) res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('X-Accel-Buffering', 'no'); // a proxy in front must not hold the events back
      }
      res.statusCode = p.status;
      res.socket?.setNoDelay(true);
      res.flushHeaders();
      return;
    }
    if (p.attempt !== this.attempt) return;
    if (p.seq !== this.nextSeq) return this.stop(`piece ${this.nextSeq} of the streamed answer was lost`);
    this.nextSeq++;
    if (this.noBody()) return;
    res.write(Buffer.from(p.data, 'base64'));
    if (res.writableLength > ANSWER_BUFFER)
      this.stop(`the caller took the answer slower than the function wrote it (over ${ANSWER_BUFFER} bytes waited)`);
  }

  // The call ended: a DONE answer ends, any other breaks off.
  finish(o: CallOutcome | null): void {
    if (this.over) return;
    this.over = true;
    if (o?.status === 'DONE') this.d.res.end();
    else this.d.res.destroy();
  }

  private noBody(): boolean {
    const status = this.d.res.statusCode;
    return this.d.method === 'HEAD' || status === 204 || status === 304;
  }

  // The answer cannot go on: the call is cancelled (its container goes, as a cancel's does) and the
  // connection cut.
  private stop(why: string): void {
    if (this.over) return;
    this.over = true;
    this.d.log.info({ callNum: this.d.callNum, why }, 'streamed answer stopped; cancelling its call');
    this.d.cancel(this.d.callNum).catch(() => undefined); // it may have ended meanwhile
    this.d.res.destroy();
  }
}
