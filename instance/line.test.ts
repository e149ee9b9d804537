// The node's line to a warm loader (instance/line.ts, protocol/loader.ts), with a real unix socket in a
// temp dir and a fake loader in this process (a `net.connect` client). Shows the hello and the load, call
// and ping round trips; that whatever breaks the protocol (a reply to another call, a reply when nothing
// was asked, a line that is not JSON or not a reply, a line over MAX_LINE, a hello of another protocol
// version) closes the line and fails the pending request with LineBroken; that the loader hanging up fails
// it with LineClosed and silence with LineTimeout; that only the first connection is the loader's; and
// that the line's folder is gone once it is closed. With several calls at once (allowCalls, protocol 3):
// calls answered by id in any order, up to the number allowed; one past its timeout fails alone and its
// late answer is ignored; a hang-up fails them all; an older loader is never given more than one. A call
// sent behind the call in flight: written at once, its timeout counting from the answer ahead of it, and
// if the line closes first, NotBegun (certain only when the loader hung up).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CONCURRENT_PROTOCOL, LINE_FILE, LOADER_PROTOCOL, MAX_LINE, OLDEST_LOADER_PROTOCOL } from '../protocol/loader.js';
import { LineBroken, LineClosed, LineTimeout, LoaderLine, NotBegun } from './line.js';

// A loader as the node sees it: it dials the socket, reads requests as JSON lines and writes what it is told.
class FakeLoader {
  private readonly got: Record<string, unknown>[] = [];
  private readonly waiting: ((r: Record<string, unknown>) => void)[] = [];
  private buf = '';
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buf += chunk;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const msg = JSON.parse(this.buf.slice(0, nl)) as Record<string, unknown>;
        this.buf = this.buf.slice(nl + 1);
        const w = this.waiting.shift();
        if (w) w(msg);
        else this.got.push(msg);
      }
    });
    socket.on('error', () => undefined); // the node may close it while we write
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static dial(dir: string): Promise<FakeLoader> {
    return new Promise((resolve, reject) => {
      const s = connect(join(dir, LINE_FILE));
      s.once('connect', () => resolve(new FakeLoader(s)));
      s.once('error', reject);
    });
  }

  // The next request the node sent.
  next(): Promise<Record<string, unknown>> {
    const m = this.got.shift();
    return m ? Promise.resolve(m) : new Promise((resolve) => this.waiting.push(resolve));
  }

  send(msg: object | string): void {
    this.socket.write(typeof msg === 'string' ? msg : JSON.stringify(msg) + '\n');
  }

  hello(v = LOADER_PROTOCOL): void {
    this.send({ op: 'hello', v, pid: 42 });
  }
}

// What a promise ended with, caught at once (a rejection must not go unhandled while the test waits).
const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: Error) => ({ ok: false as const, error }),
  );

let root: string;
const lines: LoaderLine[] = [];
const loaders: FakeLoader[] = [];

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'zfaas-line-'));
});

afterEach(async () => {
  for (const l of lines.splice(0)) l.close();
  for (const f of loaders.splice(0)) f.socket.destroy();
  await rm(root, { recursive: true, force: true });
});

async function open(): Promise<{ line: LoaderLine; dir: string }> {
  const dir = join(root, 'c1');
  const line = await LoaderLine.listen(dir);
  lines.push(line);
  return { line, dir };
}

async function dial(dir: string): Promise<FakeLoader> {
  const f = await FakeLoader.dial(dir);
  loaders.push(f);
  return f;
}

// A line with a loader that said hello.
async function connected(): Promise<{ line: LoaderLine; dir: string; loader: FakeLoader }> {
  const { line, dir } = await open();
  const loader = await dial(dir);
  loader.hello();
  await line.ready(10_000);
  return { line, dir, loader };
}

const call = (id: number, params: unknown = {}) => ({ op: 'call' as const, id, params, env: { ZFAAS_CALL: String(id) } });

describe('a loader line', () => {
  it('listens on a socket only the owner may dial, in a fresh folder', async () => {
    const dir = join(root, 'c1');
    await mkdir(dir);
    await writeFile(join(dir, 'stale'), 'from an earlier life');
    const line = await LoaderLine.listen(dir);
    lines.push(line);
    expect(existsSync(join(dir, 'stale'))).toBe(false);
    const st = await stat(join(dir, LINE_FILE));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    if (process.getuid?.() === 0) expect(st.uid).toBe(1000);
  });

  it('is ready once the loader says hello, then answers load, call and ping in turn', async () => {
    const { line, dir } = await open();
    const ready = settle(line.ready(10_000));
    const loader = await dial(dir);
    loader.hello();
    expect(await ready).toEqual({ ok: true, value: undefined });

    const loaded = line.request({ op: 'load', dir: '/ws', handler: 'index.handler', env: { ZFAAS_FUNCTION: 'f' } }, 10_000);
    expect(await loader.next()).toEqual({ op: 'load', dir: '/ws', handler: 'index.handler', env: { ZFAAS_FUNCTION: 'f' } });
    loader.send({ op: 'loaded', ok: true });
    expect(await loaded).toEqual({ op: 'loaded', ok: true });

    const result = line.request(call(7, { x: [1, 2] }), 10_000);
    expect(await loader.next()).toEqual(call(7, { x: [1, 2] }));
    loader.send({ op: 'result', id: 7, ok: true, result: '{"sum":3}', logs: 'hi\n' });
    expect(await result).toEqual({ op: 'result', id: 7, ok: true, result: '{"sum":3}', logs: 'hi\n' });

    const pong = line.request({ op: 'ping' }, 10_000);
    expect(await loader.next()).toEqual({ op: 'ping' });
    loader.send({ op: 'pong' });
    expect(await pong).toEqual({ op: 'pong' });

    // a failed call and the loader's own error are answers too, not broken lines
    const failed = line.request(call(8), 10_000);
    await loader.next();
    loader.send({ op: 'result', id: 8, ok: false, error: 'boom', logs: '' });
    expect(await failed).toMatchObject({ op: 'result', id: 8, ok: false, error: 'boom' });
    const refused = line.request(call(9), 10_000);
    await loader.next();
    loader.send({ op: 'error', error: 'cannot read params', id: 9 });
    expect(await refused).toEqual({ op: 'error', error: 'cannot read params', id: 9 });
    expect(line.open).toBe(true);
  });

  it("passes a call's streamed head and chunks on as they come, before its result", async () => {
    const { line, loader } = await connected();
    const got: unknown[] = [];
    const r = line.request(call(3), 10_000, (m) => void got.push(m));
    await loader.next();
    loader.send({ op: 'head', id: 3, status: 200, headers: { 'content-type': 'text/plain' } });
    loader.send({ op: 'chunk', id: 3, data: Buffer.from('hi').toString('base64') });
    await vi.waitFor(() => expect(got).toHaveLength(2));
    loader.send({ op: 'result', id: 3, ok: true, http: { status: 200, headers: {}, body: '' }, streamed: 2 });
    expect(await r).toMatchObject({ op: 'result', id: 3, streamed: 2 });
    expect(got).toEqual([
      { op: 'head', id: 3, status: 200, headers: { 'content-type': 'text/plain' } },
      { op: 'chunk', id: 3, data: 'aGk=' },
    ]);
  });

  it('breaks on a chunk for another call, a stream its caller does not take, or one its caller refuses', async () => {
    for (const [take, msg] of [
      [() => undefined, { op: 'chunk', id: 9, data: '' }], // another call's
      [undefined, { op: 'head', id: 1, status: 200, headers: {} }], // a call that does not take a stream
      [() => 'a chunk before its head', { op: 'chunk', id: 1, data: '' }], // refused by its relay
    ] as const) {
      const { line, loader } = await connected();
      const r = settle(line.request(call(1), 10_000, take));
      await loader.next();
      loader.send(msg);
      const out = await r;
      expect(out.ok).toBe(false);
      expect(!out.ok && out.error).toBeInstanceOf(LineBroken);
      line.close();
      lines.splice(lines.indexOf(line), 1);
      await rm(join(root, 'c1'), { recursive: true, force: true });
    }
  });

  it('reads a reply that arrives in pieces, and skips blank lines', async () => {
    const { line, loader } = await connected();
    const r = line.request(call(1), 10_000);
    await loader.next();
    const text = JSON.stringify({ op: 'result', id: 1, ok: true, result: 'é'.repeat(1000) });
    loader.send('\n\n' + text.slice(0, 10));
    await new Promise((resolve) => setImmediate(resolve));
    loader.send(text.slice(10, 500));
    await new Promise((resolve) => setImmediate(resolve));
    loader.send(text.slice(500) + '\n');
    expect(await r).toMatchObject({ op: 'result', id: 1, result: 'é'.repeat(1000) });
    expect(line.open).toBe(true);
  });

  it('refuses a second request while one is in flight, and the first still gets its answer', async () => {
    const { line, loader } = await connected();
    const first = line.request(call(1), 10_000);
    const second = await settle(line.request(call(2), 10_000));
    expect(second.ok === false && second.error).toBeInstanceOf(LineBroken);
    expect((await loader.next()).id).toBe(1);
    loader.send({ op: 'result', id: 1, ok: true, result: '1' });
    expect(await first).toMatchObject({ id: 1, result: '1' });
  });

  it('refuses a request before the loader has dialled in', async () => {
    const { line } = await open();
    const r = await settle(line.request(call(1), 10_000));
    expect(r.ok === false && r.error).toBeInstanceOf(LineClosed);
  });
});

describe('a loader that breaks the protocol', () => {
  // Sends request, lets the loader misbehave, and returns how the request ended.
  async function broken(
    misbehave: (loader: FakeLoader) => void,
    request = call(3),
  ): Promise<{ error: Error; loader: FakeLoader; line: LoaderLine }> {
    const { line, loader } = await connected();
    const r = settle(line.request(request, 10_000));
    await loader.next();
    misbehave(loader);
    const out = await r;
    if (out.ok) throw new Error(`the request was answered: ${JSON.stringify(out.value)}`);
    await loader.closed; // the node hung up on it
    expect(line.open).toBe(false);
    return { error: out.error, loader, line };
  }

  it('closes the line on a result for another call', async () => {
    const { error } = await broken((l) => l.send({ op: 'result', id: 4, ok: true, result: 'not yours' }));
    expect(error).toBeInstanceOf(LineBroken);
    expect(error.message).toMatch(/out of order/);
  });

  it('closes the line on a reply of the wrong kind', async () => {
    const { error } = await broken((l) => l.send({ op: 'loaded', ok: true }));
    expect(error).toBeInstanceOf(LineBroken);
    expect(error.message).toMatch(/out of order \("loaded", expected the result of call \d+\)/);
  });

  it('closes the line on a line that is not JSON', async () => {
    const { error } = await broken((l) => l.send('{"op":"result","id":3,\n'));
    expect(error).toBeInstanceOf(LineBroken);
    expect(error.message).toMatch(/not JSON/);
  });

  it('closes the line on JSON that is not a reply', async () => {
    const { error } = await broken((l) => l.send({ op: 'result', id: 3, ok: 'yes' }));
    expect(error).toBeInstanceOf(LineBroken);
    expect(error.message).toMatch(/malformed/);
    const { error: e2 } = await broken((l) => l.send('[1,2,3]\n'));
    expect(e2).toBeInstanceOf(LineBroken);
  });

  it('closes the line on a line longer than MAX_LINE, without waiting for its end', async () => {
    const { error } = await broken((l) => {
      const chunk = 'x'.repeat(1024 * 1024);
      l.send('{"op":"result","id":3,"ok":true,"result":"');
      // no newline: the node must give up on its own once the line is past MAX_LINE
      for (let sent = 0; sent <= MAX_LINE; sent += chunk.length) l.send(chunk);
    });
    expect(error).toBeInstanceOf(LineBroken);
    expect(error.message).toMatch(/longer than 48 MiB/);
  });

  it('closes the line on a hello of another protocol version, failing the request and the wait for hello', async () => {
    const { line, dir } = await open();
    const ready = settle(line.ready(10_000));
    const loader = await dial(dir);
    const r = settle(line.request(call(1), 10_000));
    await loader.next();
    loader.hello(LOADER_PROTOCOL + 1);
    const [out, hello] = await Promise.all([r, ready]);
    expect(out.ok === false && out.error).toBeInstanceOf(LineBroken);
    expect(hello.ok === false && hello.error).toBeInstanceOf(LineBroken);
    expect(hello.ok === false && hello.error.message).toMatch(`protocol ${LOADER_PROTOCOL + 1}`);
    await loader.closed;
    expect(line.open).toBe(false);
  });

  it('serves a loader of an older version it still speaks (an image built before the last change)', async () => {
    const { line, dir } = await open();
    const loader = await dial(dir);
    loader.hello(OLDEST_LOADER_PROTOCOL);
    await line.ready(10_000);
    const r = line.request({ op: 'load', dir: '/ws', handler: null, env: {} }, 10_000);
    expect(await loader.next()).toMatchObject({ op: 'load' });
    loader.send({ op: 'loaded', ok: true }); // version 1: no format
    expect(await r).toEqual({ op: 'loaded', ok: true });
    expect(line.open).toBe(true);
  });

  it('refuses a loader older than the oldest version it speaks', async () => {
    const { line, dir } = await open();
    const ready = settle(line.ready(10_000));
    (await dial(dir)).hello(OLDEST_LOADER_PROTOCOL - 1);
    const refused = await ready;
    expect(refused.ok === false && refused.error.message).toMatch(`protocol ${OLDEST_LOADER_PROTOCOL - 1}, this node`);
  });

  it('closes the line on a reply when nothing was asked', async () => {
    const { line, loader } = await connected();
    loader.send({ op: 'pong' });
    await loader.closed;
    expect(line.open).toBe(false);
    const r = await settle(line.request(call(1), 10_000));
    expect(r.ok === false && r.error).toBeInstanceOf(LineClosed);
  });
});

describe('a loader that goes away or goes silent', () => {
  it('fails the pending request with LineClosed when the loader hangs up', async () => {
    const { line, loader } = await connected();
    const r = settle(line.request(call(1), 10_000));
    await loader.next();
    loader.socket.end();
    const out = await r;
    expect(out.ok === false && out.error).toBeInstanceOf(LineClosed);
    expect(line.open).toBe(false);
  });

  it('fails the wait for hello with LineClosed when the loader hangs up first', async () => {
    const { line, dir } = await open();
    const ready = settle(line.ready(10_000));
    const loader = await dial(dir);
    loader.socket.end();
    const out = await ready;
    expect(out.ok === false && out.error).toBeInstanceOf(LineClosed);
  });

  it('fails a request with LineTimeout when no answer comes in time; an answer after that breaks the line', async () => {
    const { line, loader } = await connected();
    const out = await settle(line.request(call(1), 50));
    expect(out.ok === false && out.error).toBeInstanceOf(LineTimeout);
    await loader.next();
    loader.send({ op: 'result', id: 1, ok: true, result: 'late' });
    await loader.closed;
    expect(line.open).toBe(false);
  });

  it('fails the wait for hello with LineTimeout when no loader dials in', async () => {
    const { line } = await open();
    const out = await settle(line.ready(50));
    expect(out.ok === false && out.error).toBeInstanceOf(LineTimeout);
  });

  it('closes a request in flight when the node closes the line', async () => {
    const { line, loader } = await connected();
    const r = settle(line.request(call(1), 10_000));
    await loader.next();
    line.close();
    const out = await r;
    expect(out.ok === false && out.error).toBeInstanceOf(LineClosed);
    await loader.closed;
  });
});

describe('a call behind the call in flight', () => {
  it('is written at once and begins when the loader has answered the call ahead, its timeout from then', async () => {
    const { line, loader } = await connected();
    const first = line.request(call(1), 10_000);
    expect(line.callInFlight).toBe(true);
    let begun = 0;
    const second = settle(line.request(call(2), 80, undefined, { onBegin: () => begun++ }));
    expect(line.callInFlight).toBe(false); // one behind at most
    expect(await loader.next()).toEqual(call(1));
    expect(await loader.next()).toEqual(call(2)); // already on the line
    await new Promise((r) => setTimeout(r, 120)); // longer than its own timeout, while the first runs
    expect(begun).toBe(0);
    loader.send({ op: 'result', id: 1, ok: true, result: 'a' });
    expect(await first).toMatchObject({ id: 1, result: 'a' });
    expect(begun).toBe(1);
    loader.send({ op: 'result', id: 2, ok: true, result: 'b' });
    expect(await second).toMatchObject({ ok: true, value: { id: 2, result: 'b' } });
    expect(line.open).toBe(true);
  });

  it('times out from when it began', async () => {
    const { line, loader } = await connected();
    const first = line.request(call(1), 10_000);
    const second = settle(line.request(call(2), 50, undefined, { onBegin: () => undefined }));
    await loader.next();
    await loader.next();
    loader.send({ op: 'result', id: 1, ok: true, result: 'a' });
    await first;
    const out = await second;
    expect(out.ok === false && out.error).toBeInstanceOf(LineTimeout);
  });

  it('is refused with nothing in flight, behind a request that is not a call, or behind another', async () => {
    const { line, loader } = await connected();
    const behind = { onBegin: () => undefined };
    const alone = await settle(line.request(call(1), 1000, undefined, behind));
    expect(alone.ok === false && alone.error).toBeInstanceOf(LineBroken);
    const ping = line.request({ op: 'ping' }, 1000);
    const afterPing = await settle(line.request(call(2), 1000, undefined, behind));
    expect(afterPing.ok === false && afterPing.error).toBeInstanceOf(LineBroken);
    await loader.next();
    loader.send({ op: 'pong' });
    await ping;
    const first = line.request(call(3), 1000);
    const second = line.request(call(4), 1000, undefined, behind);
    const third = await settle(line.request(call(5), 1000, undefined, behind));
    expect(third.ok === false && third.error).toBeInstanceOf(LineBroken);
    await loader.next();
    await loader.next();
    loader.send({ op: 'result', id: 3, ok: true, result: '' });
    loader.send({ op: 'result', id: 4, ok: true, result: '' });
    await Promise.all([first, second]);
  });

  it('fails with NotBegun, certain, when the loader hangs up before answering the call ahead', async () => {
    const { line, loader } = await connected();
    const first = settle(line.request(call(1), 10_000));
    const second = settle(line.request(call(2), 10_000, undefined, { onBegin: () => undefined }));
    await loader.next();
    await loader.next();
    loader.socket.end();
    expect((await first).ok).toBe(false);
    const out = await second;
    expect(out.ok === false && out.error).toBeInstanceOf(NotBegun);
    expect(out.ok === false && (out.error as NotBegun).certain).toBe(true);
  });

  it('fails with NotBegun, certain, when the loader goes with requests it never read (a reset)', async () => {
    const { line, loader } = await connected();
    const first = settle(line.request(call(1), 10_000));
    await loader.next();
    loader.socket.pause(); // the loader reads nothing more
    const second = settle(line.request(call(2, 'x'.repeat(300_000)), 10_000, undefined, { onBegin: () => undefined }));
    await new Promise((r) => setTimeout(r, 50));
    loader.socket.destroy();
    expect((await first).ok).toBe(false);
    const out = await second;
    expect(out.ok === false && (out.error as NotBegun).certain).toBe(true);
  });

  it('fails with NotBegun, not certain, when the node closes the line (the answer ahead may be on its way)', async () => {
    const { line, loader } = await connected();
    const first = settle(line.request(call(1), 10_000));
    const second = settle(line.request(call(2), 10_000, undefined, { onBegin: () => undefined }));
    await loader.next();
    line.close();
    expect((await first).ok).toBe(false);
    const out = await second;
    expect(out.ok === false && (out.error as NotBegun).certain).toBe(false);
  });

  it('once begun, fails as any call in flight when the loader hangs up', async () => {
    const { line, loader } = await connected();
    const first = line.request(call(1), 10_000);
    const second = settle(line.request(call(2), 10_000, undefined, { onBegin: () => undefined }));
    await loader.next();
    await loader.next();
    loader.send({ op: 'result', id: 1, ok: true, result: '' });
    await first;
    loader.socket.end();
    const out = await second;
    expect(out.ok === false && out.error).toBeInstanceOf(LineClosed);
    expect(out.ok === false && out.error).not.toBeInstanceOf(NotBegun);
  });

  it('breaks the line when the loader answers it before the call ahead', async () => {
    const { line, loader } = await connected();
    const first = settle(line.request(call(1), 10_000));
    const second = settle(line.request(call(2), 10_000, undefined, { onBegin: () => undefined }));
    await loader.next();
    loader.send({ op: 'result', id: 2, ok: true, result: '' });
    const out = await first;
    expect(out.ok === false && out.error).toBeInstanceOf(LineBroken);
    expect((await second).ok).toBe(false);
  });
});

describe('who may use the line', () => {
  it('takes only the first connection: a second one is refused while the first keeps working', async () => {
    const { line, dir } = await open();
    // Both dial at once: the second is reset (the listener closes once it has the first) or destroyed.
    const [first, second] = await Promise.all([dial(dir), dial(dir).catch((e: Error) => e)]);
    if (second instanceof FakeLoader) await second.closed;
    else expect((second as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE|ENOENT|ECONNREFUSED/);
    // One more dials after the line is taken: nothing listens any more.
    const third = await dial(dir).catch((e: Error) => e);
    if (third instanceof FakeLoader) await third.closed;
    else expect((third as NodeJS.ErrnoException).code).toMatch(/ENOENT|ECONNREFUSED/);

    first.hello();
    await line.ready(10_000);
    const r = line.request(call(1, 'p'), 10_000);
    expect(await first.next()).toMatchObject({ op: 'call', id: 1, params: 'p' });
    first.send({ op: 'result', id: 1, ok: true, result: '"p"' });
    expect(await r).toMatchObject({ id: 1, ok: true, result: '"p"' });
  });

  it('a second connection never receives the requests meant for the loader', async () => {
    const { line, dir } = await open();
    const [first, second] = await Promise.all([dial(dir), dial(dir).catch(() => undefined)]);
    const seen: string[] = [];
    second?.socket.on('data', (d) => seen.push(String(d)));
    first.hello();
    await line.ready(10_000);
    const r = line.request(call(1), 10_000);
    await first.next();
    first.send({ op: 'result', id: 1, ok: true });
    await r;
    if (second) await second.closed;
    expect(seen).toEqual([]);
  });
});

describe('cleaning up', () => {
  it('removes its folder once closed', async () => {
    const { line, dir } = await connected();
    expect(existsSync(dir)).toBe(true);
    line.close();
    expect(line.open).toBe(false);
    await vi.waitFor(() => expect(existsSync(dir)).toBe(false));
  });

  it('removes its folder when the loader breaks the line', async () => {
    const { line, dir, loader } = await connected();
    loader.send('garbage\n');
    await loader.closed;
    expect(line.open).toBe(false);
    await vi.waitFor(() => expect(existsSync(dir)).toBe(false));
  });

  it('removes its folder when closed before any loader dialled in', async () => {
    const { line, dir } = await open();
    line.close();
    await vi.waitFor(() => expect(existsSync(dir)).toBe(false));
  });
});

describe('a loader line with several calls at once (allowCalls)', () => {
  it('carries up to that many calls at once, each answered by id in any order, and refuses one more', async () => {
    const { line, loader } = await connected();
    line.allowCalls(3);
    const r = [1, 2, 3].map((id) => line.request(call(id), 10_000));
    const more = await settle(line.request(call(4), 10_000));
    expect(more.ok === false && more.error).toBeInstanceOf(LineBroken);
    for (let i = 0; i < 3; i++) await loader.next();
    for (const id of [3, 1, 2]) loader.send({ op: 'result', id, ok: true, result: String(id) });
    expect(await Promise.all(r)).toMatchObject([
      { id: 1, result: '1' },
      { id: 2, result: '2' },
      { id: 3, result: '3' },
    ]);
    // a request of another kind goes beside the calls
    const ping = line.request({ op: 'ping' }, 10_000);
    const c5 = line.request(call(5), 10_000);
    expect((await loader.next()).op).toBe('ping');
    await loader.next();
    loader.send({ op: 'result', id: 5, ok: true, result: '5' });
    loader.send({ op: 'pong' });
    expect(await c5).toMatchObject({ id: 5 });
    expect(await ping).toEqual({ op: 'pong' });
  });

  it('fails one call past its timeout alone, sends cancel for it, and ignores its late answer', async () => {
    const { line, loader } = await connected();
    line.allowCalls(2);
    const slow = settle(line.request(call(1), 50));
    const other = line.request(call(2), 10_000);
    await loader.next();
    await loader.next();
    const out = await slow;
    expect(out.ok === false && out.error).toBeInstanceOf(LineTimeout);
    line.cancel(1);
    expect(await loader.next()).toEqual({ op: 'cancel', id: 1 });
    loader.send({ op: 'result', id: 1, ok: false, error: 'cancelled' });
    loader.send({ op: 'result', id: 2, ok: true, result: 'two' });
    expect(await other).toMatchObject({ id: 2, result: 'two' });
    expect(line.open).toBe(true);
  });

  it('fails every call in flight with LineClosed when the loader hangs up', async () => {
    const { line, loader } = await connected();
    line.allowCalls(4);
    const r = [1, 2, 3].map((id) => settle(line.request(call(id), 10_000)));
    await loader.next();
    loader.socket.destroy();
    for (const out of await Promise.all(r)) expect(out.ok === false && out.error).toBeInstanceOf(LineClosed);
  });

  it('refuses several calls at once to a loader older than the protocol that carries them', async () => {
    const { line, dir } = await open();
    const loader = await dial(dir);
    loader.hello(CONCURRENT_PROTOCOL - 1);
    await line.ready(10_000);
    expect(line.version).toBe(CONCURRENT_PROTOCOL - 1);
    expect(() => line.allowCalls(2)).toThrow(LineBroken);
  });
});
