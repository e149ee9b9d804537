// A real DB service on a LevelDB folder in a temp dir (or on a PostgreSQL database: `store`), reached over
// its ZMQ socket and in-process (local()), for the DB service's own tests: stopped and started again on the
// same store as a restart.
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { DbClient } from '../../db/client.js';
import type { CallOutcome } from '../../common/model.js';
import { DbServer } from '../../db/server.js';
import { freePort, tempDir } from './platform.js';

export class DbUnderTest {
  server!: DbServer;
  remote!: DbClient; // over the socket
  local!: DbClient; // through local(), as the API in `zfaas up`

  constructor(
    readonly dir: string,
    readonly bind: string,
    readonly store?: string,
  ) {}

  static async open(prefix: string, store?: string): Promise<DbUnderTest> {
    const t = new DbUnderTest(await tempDir(prefix), `tcp://127.0.0.1:${await freePort()}`, store);
    await t.start();
    return t;
  }

  async start(): Promise<void> {
    this.server = new DbServer({ bind: this.bind, dataDir: this.dir, store: this.store, log: pino({ level: 'silent' }) });
    await this.server.start();
    this.remote = new DbClient(this.bind, 30_000);
    this.local = new DbClient(this.server);
  }

  async stop(): Promise<void> {
    this.remote.close();
    this.local.close();
    await this.server.stop();
  }

  async remove(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

// The call writes the DB service's tests make, as the intents of a call's table (db/call-life.ts): a run
// began on a node; a call ended (`ran`: a run's outcome, to which its retry rule applies); a draining node
// gave it back unstarted.
type Requester = Pick<DbClient, 'request'>;
export const startCall = (db: Requester, c: { callNum: number; node: string; attempt?: number }) =>
  db.request('callIntent', { callNum: c.callNum, intent: { kind: 'started', node: c.node, ...(c.attempt ? { attempt: c.attempt } : {}) } });
export const finishCall = (db: Requester, c: { callNum: number; outcome: CallOutcome; node?: string; ran?: boolean; attempt?: number }) =>
  db.request('callIntent', {
    callNum: c.callNum,
    intent: {
      kind: 'outcome',
      outcome: c.outcome,
      ran: c.ran ?? false,
      ...(c.node ? { node: c.node } : {}),
      ...(c.attempt ? { attempt: c.attempt } : {}),
    },
  });
export const requeueCall = (db: Requester, c: { callNum: number; unstartedOn: string }) =>
  db.request('callIntent', { callNum: c.callNum, intent: { kind: 'givenBack', node: c.unstartedOn } });
