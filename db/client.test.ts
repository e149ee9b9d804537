// The DB client against a peer that answers whatever it likes: a reply is checked against its message's
// declaration before anyone reads it, and a wrong one is an error that says what was wrong.
import { Router } from 'zeromq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DbClient, DbError } from './client.js';
import { freePort } from '../test/helpers/platform.js';

let bind: string;
let peer: Router;
let client: DbClient;
// What the peer answers each request with (its `data`), by message type.
let answers: Record<string, unknown>;

beforeEach(async () => {
  bind = `tcp://127.0.0.1:${await freePort()}`;
  peer = new Router({ linger: 0 });
  await peer.bind(bind);
  answers = {};
  void (async () => {
    for await (const [identity, , body] of peer) {
      const req = JSON.parse(body!.toString()) as { id: number; msgType: string };
      await peer.send([identity!, Buffer.alloc(0), Buffer.from(JSON.stringify({ id: req.id, ok: true, data: answers[req.msgType] }))]);
    }
  })().catch(() => undefined); // the socket closes at the end of each test
  client = new DbClient(bind, 5_000);
});

afterEach(() => {
  client.close();
  peer.close();
});

describe('DbClient replies', () => {
  it('hands on a reply that matches its declaration, with fields the declaration does not name kept', async () => {
    answers.getCall = null;
    expect(await client.request('getCall', { callNum: 1 })).toBeNull();
    answers.deleteRuntime = { deleted: true, note: 'kept' };
    expect(await client.request('deleteRuntime', { name: 'x' })).toEqual({ deleted: true, note: 'kept' });
  });

  it('refuses a reply of the wrong shape, saying which message and which field', async () => {
    answers.getCall = { callNum: 'seven' };
    const e = await client.request('getCall', { callNum: 7 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DbError);
    expect((e as DbError).code).toBe('INTERNAL');
    expect((e as DbError).message).toMatch(/answered getCall with a reply that does not match its declaration \(callNum: /);
    answers.listRuntimes = { not: 'a list' };
    await expect(client.request('listRuntimes', {})).rejects.toThrow(/answered listRuntimes .*\(\(root\): Expected array/);
  });
});
