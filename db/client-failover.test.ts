// The DB client over several DB services (`--db a,b`), against fake services: when the one it uses stops
// answering it moves to the next and sends the requests in flight there again (a createCall with the same
// request id, so the store makes one call), fails those that are not safe to send twice, and with one
// address it never moves nor marks a request.
import { Router } from 'zeromq';
import { afterEach, describe, expect, it } from 'vitest';
import { DbClient, DbError } from './client.js';
import { requestIdAt, requestKey, requestKeysBefore } from './call-group.js';
import { freePort } from '../test/helpers/platform.js';

interface Seen {
  id: number;
  msgType: string;
  content: Record<string, unknown>;
}

// A fake DB service: records what it gets; answers (every message the same `data`) unless silent.
class FakeDb {
  readonly seen: Seen[] = [];
  silent = false;
  private readonly socket = new Router({ linger: 0 });

  static async start(): Promise<{ fake: FakeDb; address: string }> {
    const fake = new FakeDb();
    const address = `tcp://127.0.0.1:${await freePort()}`;
    await fake.socket.bind(address);
    void fake.loop();
    return { fake, address };
  }

  private async loop(): Promise<void> {
    try {
      for await (const [identity, , body] of this.socket) {
        const req = JSON.parse(body!.toString()) as Seen;
        this.seen.push(req);
        if (this.silent) continue;
        const data = req.msgType === 'ping' ? { ok: true } : null;
        await this.socket.send([identity!, Buffer.alloc(0), Buffer.from(JSON.stringify({ id: req.id, ok: true, data }))]);
      }
    } catch {
      // closed at the end of a test
    }
  }

  types(): string[] {
    return this.seen.map((s) => s.msgType);
  }

  close(): void {
    this.socket.close();
  }
}

const open: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function two(): Promise<{ a: FakeDb; b: FakeDb; client: DbClient; moves: string[] }> {
  const [{ fake: a, address: aa }, { fake: b, address: ba }] = await Promise.all([FakeDb.start(), FakeDb.start()]);
  const client = new DbClient(`${aa}, ${ba}`, 8_000, undefined, 200);
  const moves: string[] = [];
  client.onSwitch = (s) => moves.push(`${s.from} -> ${s.to} (${s.resent} resent)`);
  open.push(a, b, client);
  return { a, b, client, moves };
}

describe('DbClient over several DB services', () => {
  it('moves to the next service when the one it uses falls silent, and sends the waiting requests there', async () => {
    const { a, b, client, moves } = await two();
    a.silent = true;
    const got = await client.request('getCall', { callNum: 7 });
    expect(got).toBeNull(); // B's answer
    expect(a.types()).toContain('getCall');
    expect(a.types()).toContain('ping'); // asked whether it lives before being given up
    expect(b.seen.find((s) => s.msgType === 'getCall')?.content).toEqual({ callNum: 7 });
    expect(moves).toHaveLength(1);
    // It stays with B: the next request goes there alone.
    await client.request('getCall', { callNum: 8 });
    expect(a.seen.some((s) => s.content.callNum === 8)).toBe(false);
  });

  it('sends a createCall again with the same request id, so that the store answers the call it made', async () => {
    const { a, b, client } = await two();
    a.silent = true;
    await client.request('createCall', { funcName: 'fn', version: 1, params: {} }).catch(() => undefined); // B answers null: not a call
    const sentA = a.seen.find((s) => s.msgType === 'createCall');
    const sentB = b.seen.find((s) => s.msgType === 'createCall');
    expect(sentA?.content.requestId).toMatch(/^[0-9a-z]{9}-[0-9a-f]{12}-\d+$/);
    expect(sentB?.content.requestId).toBe(sentA?.content.requestId);
  });

  it('makes request ids that sort by the time they were made, so that old ones go by one range of keys', () => {
    const made = (ms: number, rest = 'ffffffffffff-99') => requestKey(`${requestIdAt(ms)}-${rest}`);
    const cut = requestKeysBefore(Date.UTC(2026, 11, 5, 3));
    expect(made(Date.UTC(2026, 11, 5, 2, 59)) < cut).toBe(true);
    expect(made(Date.UTC(2026, 11, 5, 3), '000000000000-1') < cut).toBe(false);
    expect(made(Date.UTC(2027, 0, 1)) < cut).toBe(false);
  });

  it('fails a request that is not safe to apply twice, saying it may have been applied', async () => {
    const { a, b, client } = await two();
    a.silent = true;
    const e = await client.request('deleteFunction', { name: 'fn' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DbError);
    expect((e as DbError).code).toBe('UNAVAILABLE');
    expect((e as DbError).message).toMatch(/deleteFunction may or may not have been applied/);
    expect(b.types()).not.toContain('deleteFunction');
  });

  it('moves on when the first service is not there at all', async () => {
    const { fake: b, address: ba } = await FakeDb.start();
    const client = new DbClient(`tcp://127.0.0.1:${await freePort()},${ba}`, 8_000, undefined, 200);
    open.push(b, client);
    expect(await client.request('getCall', { callNum: 3 })).toBeNull();
    expect(b.types()).toEqual(['getCall']);
  });

  it('with one address, never moves and never marks a createCall', async () => {
    const { fake: a, address } = await FakeDb.start();
    a.silent = true;
    const client = new DbClient(address, 1_000, undefined, 100);
    open.push(a, client);
    const e = await client.request('createCall', { funcName: 'fn', version: 1, params: {} }).catch((x: unknown) => x);
    expect((e as DbError).message).toMatch(/did not answer createCall within 1000 ms/);
    expect(a.types()).toEqual(['createCall']); // no ping, no second send
    expect(a.seen[0]!.content.requestId).toBeUndefined();
  });
});
