// A streamed web answer as its caller gets it (stream-answer.ts), over a real HTTP connection: the head at
// once, each chunk as it comes, the end when the call is DONE; Server-Sent Events marked uncached; a call
// that ended otherwise, or a piece lost on the way, cuts the connection; a caller that leaves cancels it.
import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StreamPiece } from './broker.js';
import { StreamAnswer } from './stream-answer.js';

let server: Server;
let base: string;
let answers: StreamAnswer[];
let cancelled: number[];

beforeEach(async () => {
  answers = [];
  cancelled = [];
  const app = express();
  app.get('/', (req, res) => {
    answers.push(
      new StreamAnswer({
        res,
        method: req.method,
        callNum: 7,
        cancel: (n) => (cancelled.push(n), Promise.resolve()),
        log: pino({ level: 'silent' }),
      }),
    );
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const head = (headers: Record<string, string>): StreamPiece => ({ type: 'head', callNum: 7, attempt: 1, status: 201, headers });
const chunk = (seq: number, text: string): StreamPiece => ({
  type: 'chunk',
  callNum: 7,
  attempt: 1,
  seq,
  data: Buffer.from(text).toString('base64'),
});

// A request whose answer is driven by the test.
async function open(): Promise<{ answer: StreamAnswer; response: Promise<Response>; abort: AbortController }> {
  const abort = new AbortController();
  const response = fetch(base, { signal: abort.signal });
  await vi.waitFor(() => expect(answers).toHaveLength(1));
  return { answer: answers[0]!, response, abort };
}

describe('a streamed answer', () => {
  it('sends the head at once, then each chunk as it comes, and ends when the call is DONE', async () => {
    const { answer, response } = await open();
    answer.take(head({ 'content-type': 'text/plain', 'x-mine': 'yes', connection: 'close' }));
    const r = await response; // the head arrived before any chunk
    expect(r.status).toBe(201);
    expect(r.headers.get('x-mine')).toBe('yes');
    expect(r.headers.get('transfer-encoding')).toBe('chunked');
    const reader = r.body!.getReader();
    answer.take(chunk(0, 'one '));
    expect(Buffer.from((await reader.read()).value!).toString()).toBe('one ');
    answer.take(chunk(1, 'two'));
    expect(Buffer.from((await reader.read()).value!).toString()).toBe('two');
    answer.finish({ status: 'DONE', result: 'one two' });
    expect((await reader.read()).done).toBe(true);
    expect(cancelled).toEqual([]);
  });

  it('marks Server-Sent Events as not to be cached or held back', async () => {
    const { answer, response } = await open();
    answer.take(head({ 'content-type': 'text/event-stream' }));
    const r = await response;
    expect(r.headers.get('cache-control')).toBe('no-cache');
    expect(r.headers.get('x-accel-buffering')).toBe('no');
    answer.finish({ status: 'DONE', result: '' });
    await r.text();
  });

  it('cuts the connection when the call did not end DONE, without cancelling it', async () => {
    const { answer, response } = await open();
    answer.take(head({}));
    answer.take(chunk(0, 'part'));
    const r = await response;
    answer.finish({ status: 'ERROR', result: '', error: 'boom' });
    await expect(r.text()).rejects.toThrow();
    expect(cancelled).toEqual([]);
  });

  it('cancels the call and cuts the connection when a piece was lost', async () => {
    const { answer, response } = await open();
    answer.take(head({}));
    const r = await response;
    answer.take(chunk(1, 'skipped piece 0'));
    await expect(r.text()).rejects.toThrow();
    expect(cancelled).toEqual([7]);
  });

  it('cancels the call when its caller left before the head came, once it comes', async () => {
    const { answer, abort, response } = await open();
    response.catch(() => undefined); // aborted before its head: the fetch fails, as it should
    abort.abort();
    await new Promise((r) => setTimeout(r, 50));
    expect(cancelled).toEqual([]); // the answer may not stream at all: nothing to cancel yet
    answer.take(head({}));
    expect(cancelled).toEqual([7]);
  });

  it('cancels the call when its caller goes away before the end', async () => {
    const { answer, response, abort } = await open();
    answer.take(head({}));
    answer.take(chunk(0, 'first'));
    await response;
    abort.abort();
    await vi.waitFor(() => expect(cancelled).toEqual([7]));
    answer.finish({ status: 'ERROR', result: '', cancelled: true }); // what the cancel then brings: nothing more
  });
});
