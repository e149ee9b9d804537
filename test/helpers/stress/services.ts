// The services of one stress run as separate processes on loopback, each killable on its own and started
// again on the same address and data: the DB service, the API and one or two nodes. Every process's whole
// output goes to a file of its own under the run's folder, across restarts, for the checks that read logs.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { childrenOf } from '../cluster.js';
import { freePort, instanceProc, sleep, waitHealthy, zfaas, type Proc } from '../platform.js';

export interface ServicesOptions {
  dir: string; // the run's folder: data and logs
  runId: string;
  nodes: number;
  miniworkers: number;
  maxContainers: number;
}

export class Services {
  readonly url: string;
  readonly nodeIds: string[];
  private db?: Proc;
  private api?: Proc;
  private readonly nodes = new Map<string, Proc>();
  private readonly turns = new Map<string, Promise<void>>();

  private constructor(
    private readonly o: ServicesOptions,
    private readonly port: number,
    private readonly dbAddr: string,
    private readonly brokerAddr: string,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    this.nodeIds = Array.from({ length: o.nodes }, (_, i) => `${o.runId}-n${i}`);
  }

  static async start(o: ServicesOptions): Promise<Services> {
    const s = new Services(o, await freePort(), `tcp://127.0.0.1:${await freePort()}`, `tcp://127.0.0.1:${await freePort()}`);
    s.startDb();
    s.startApi();
    for (const id of s.nodeIds) s.startNode(id);
    await waitHealthy(s.url, o.nodes, s.api);
    return s;
  }

  log(name: string): string {
    return join(this.o.dir, `${name}.log`);
  }

  startDb(): void {
    this.db = zfaas(['db', '--bind', this.dbAddr, '--data', join(this.o.dir, 'db')], {}, this.log('db'));
  }

  startApi(): void {
    const args = ['api', '--port', String(this.port), '--db', this.dbAddr, '--broker-bind', this.brokerAddr];
    this.api = zfaas(args, {}, this.log('api'));
  }

  startNode(id: string): void {
    const env = { ZFAAS_MAX_CONTAINERS: String(this.o.maxContainers), ZFAAS_LOG_LEVEL: 'debug', ZFAAS_DRAIN_TIMEOUT: '10' };
    const p = instanceProc({
      broker: this.brokerAddr,
      db: this.dbAddr,
      data: this.o.dir,
      id,
      miniworkers: this.o.miniworkers,
      policy: 'function',
      env,
      logFile: this.log(id),
    });
    this.nodes.set(id, p);
  }

  node(id: string): Proc | undefined {
    return this.nodes.get(id);
  }

  // SIGKILL, as a crash would; `restartAfterMs` later the service starts again on the same address and data.
  // Faults on one service take turns: one that comes while it is down waits until it is back.
  kill(what: 'db' | 'api' | string, restartAfterMs: number): Promise<void> {
    const turn = (this.turns.get(what) ?? Promise.resolve()).then(() => this.killNow(what, restartAfterMs));
    this.turns.set(what, turn);
    return turn;
  }

  private async killNow(what: string, restartAfterMs: number): Promise<void> {
    const p = what === 'db' ? this.db : what === 'api' ? this.api : this.nodes.get(what);
    if (!p) return;
    p.child.kill('SIGKILL');
    await p.stop();
    await sleep(restartAfterMs);
    if (what === 'db') this.startDb();
    else if (what === 'api') this.startApi();
    else this.startNode(what);
  }

  // The miniworkers of a node: the instance's child processes.
  async miniworkerPids(id: string): Promise<number[]> {
    const child = this.nodes.get(id)?.child;
    // A node that exited (killed, not restarted yet) has no children, and its pid may be another's now.
    if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return [];
    return childrenOf(child.pid);
  }

  // Every process of this run still in the process table (the services, their miniworkers, orphans).
  async leftProcesses(): Promise<string[]> {
    const out: string[] = [];
    for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
      if (cmd.includes(this.o.runId) || cmd.includes(this.o.dir)) out.push(`${pid}: ${cmd.trim().slice(0, 160)}`);
    }
    return out;
  }

  // Nodes first, while the API and the DB service still answer them: each drains, records what it ran,
  // removes its containers and sockets; then the API and the DB service. How long each stop took.
  async stop(): Promise<Record<string, number>> {
    const took: Record<string, number> = {};
    const timed = async (name: string, p: Proc | undefined): Promise<void> => {
      const t0 = Date.now();
      await p?.stop();
      took[name] = Date.now() - t0;
    };
    await Promise.all([...this.nodes].map(([id, p]) => timed(id, p)));
    await timed('api', this.api);
    await timed('db', this.db);
    return took;
  }
}
