// A real DB service on a LevelDB folder in a temp dir, reached over its ZMQ socket and in-process
// (local()), for the DB service's own tests: stopped and started again on the same folder as a restart.
import { rm } from 'node:fs/promises';
import { pino } from 'pino';
import { DbClient } from '../../db/client.js';
import { DbServer } from '../../db/server.js';
import { freePort, tempDir } from './platform.js';

export class DbUnderTest {
  server!: DbServer;
  remote!: DbClient; // over the socket
  local!: DbClient; // through local(), as the API in `zfaas up`

  private constructor(
    readonly dir: string,
    readonly bind: string,
  ) {}

  static async open(prefix: string): Promise<DbUnderTest> {
    const t = new DbUnderTest(await tempDir(prefix), `tcp://127.0.0.1:${await freePort()}`);
    await t.start();
    return t;
  }

  async start(): Promise<void> {
    this.server = new DbServer({ bind: this.bind, dataDir: this.dir, log: pino({ level: 'silent' }) });
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
