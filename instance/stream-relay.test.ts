// The node's relay of a streamed web answer (stream-relay.ts): the head checked and passed on first, each
// chunk passed on in order with its number, the size and first KiB kept for the record, a gathered response
// when the call did not ask to stream, and whatever breaks the stream (a chunk before the head, a second
// head, a bad header, too many bytes) said as the reason the line breaks; back-pressure pauses and resumes.
import { describe, expect, it } from 'vitest';
import { STREAM_LIMIT, RESULT_LIMIT } from '../protocol/loader.js';
import { checkResponse } from './session.js';
import { FIRST_BYTES, RELAY_BUFFER, StreamRelay, type StreamSink } from './stream-relay.js';

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const head = (headers: Record<string, string> = { 'content-type': 'text/plain' }) => ({ op: 'head' as const, id: 1, status: 200, headers });
const chunk = (data: string | Buffer) => ({ op: 'chunk' as const, id: 1, data: b64(data) });

function sink(): StreamSink & { heads: unknown[]; chunks: [number, string][]; release: (() => void)[] } {
  const s = {
    heads: [] as unknown[],
    chunks: [] as [number, string][],
    release: [] as (() => void)[],
    head: (h: unknown) => void s.heads.push(h),
    chunk: (seq: number, data: string) => {
      s.chunks.push([seq, data]);
      return new Promise<void>((r) => s.release.push(r));
    },
  };
  return s;
}

const relayOf = (o: { sink?: StreamSink; paused?: string[] } = {}) =>
  new StreamRelay({ sink: o.sink, check: checkResponse, pause: () => o.paused?.push('pause'), resume: () => o.paused?.push('resume') });

describe('a streamed answer through the node', () => {
  it('passes the checked head, then each chunk in order; the outcome keeps the size and the first KiB', () => {
    const s = sink();
    const relay = relayOf({ sink: s });
    expect(relay.take(head({ 'Content-Type': 'text/plain', 'set-cookie': 'a=1', connection: 'close' }))).toBeUndefined();
    // header names in lower case; hop-by-hop ones are not the function's to send
    expect(s.heads).toEqual([{ status: 200, headers: { 'content-type': 'text/plain', 'set-cookie': 'a=1' } }]);
    const big = 'x'.repeat(FIRST_BYTES + 500);
    expect(relay.take(chunk('hello '))).toBeUndefined();
    expect(relay.take(chunk(big))).toBeUndefined();
    expect(s.chunks.map(([seq]) => seq)).toEqual([0, 1]);
    const o = relay.done({ ok: true, logs: 'l', durationMs: 5 });
    expect(o.status).toBe('DONE');
    expect(o.result).toBe(('hello ' + big).slice(0, FIRST_BYTES));
    expect(o.response).toMatchObject({ status: 200, bytes: 6 + big.length, streamed: true });
    expect(Buffer.from(o.response!.body!, 'base64').length).toBe(FIRST_BYTES);
  });

  it('keeps no partial character at the end of the first KiB', () => {
    const relay = relayOf({ sink: sink() });
    relay.take(head());
    relay.take(chunk('a'.repeat(FIRST_BYTES - 1) + 'é')); // é is two bytes: the KiB ends inside it
    expect(relay.done({ ok: true, logs: '', durationMs: 1 }).result).toBe('a'.repeat(FIRST_BYTES - 1));
  });

  it('gathers the answer into one response when the call did not ask to stream', () => {
    const relay = relayOf();
    relay.take(head());
    relay.take(chunk('one '));
    relay.take(chunk('two'));
    const o = relay.done({ ok: true, logs: '', durationMs: 1 });
    expect(o.response).toEqual({ status: 200, headers: { 'content-type': 'text/plain' }, body: b64('one two'), bytes: 7 });
    expect(o.response).not.toHaveProperty('streamed');
  });

  it('refuses what breaks the stream', () => {
    expect(relayOf().take(chunk('x'))).toBe('a chunk before its head');
    const twice = relayOf();
    twice.take(head());
    expect(twice.take(head())).toBe('a second head for the same call');
    expect(relayOf().take(head({ 'bad name': 'x' }))).toMatch(/^malformed response: header name/);
    const gathered = relayOf();
    gathered.take(head());
    expect(gathered.take(chunk(Buffer.alloc(RESULT_LIMIT + 1)))).toMatch(/^response too large/);
    const streamed = relayOf({ sink: sink() });
    streamed.take(head());
    let why: string | undefined;
    for (let sent = 0; why === undefined && sent <= STREAM_LIMIT; sent += 1024 * 1024)
      why = streamed.take(chunk(Buffer.alloc(1024 * 1024)));
    expect(why).toMatch(/^response too large: a streamed answer is at most/);
  });

  it('pauses reading the loader while too much waits to reach the API, and reads again once it went', async () => {
    const s = sink();
    const paused: string[] = [];
    const relay = relayOf({ sink: s, paused });
    relay.take(head());
    const piece = Buffer.alloc(256 * 1024);
    for (let sent = 0; sent <= RELAY_BUFFER; sent += piece.length) relay.take(chunk(piece));
    expect(paused).toEqual(['pause']);
    for (const r of s.release.splice(0)) r();
    await new Promise((r) => setImmediate(r));
    expect(paused).toEqual(['pause', 'resume']);
  });
});
