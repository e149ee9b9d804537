// Real message brokers for the trigger tests, from Debian's packages (scripts/ensure-brokers.sh installs
// them): nats-server (JetStream), mosquitto, rabbitmq-server and redis-server, each started on a loopback
// port picked here with its data in a temp folder, each stopped by its own pid (RabbitMQ: its process
// group, which holds the Erlang VM and the epmd started for it) and its folder removed. A broker can be
// stopped and started again on the same port and data (the broker-restart case).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rm, writeFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort, sleep, tempDir } from './platform.js';

export type BrokerKind = 'nats' | 'mqtt' | 'amqp' | 'redis';

const BINARIES: Record<BrokerKind, string> = {
  nats: '/usr/sbin/nats-server',
  mqtt: '/usr/sbin/mosquitto',
  amqp: '/usr/lib/rabbitmq/bin/rabbitmq-server',
  redis: '/usr/bin/redis-server',
};

// Why a broker cannot run here (its package is missing), or null.
export function missingBroker(kind: BrokerKind): string | null {
  const r = spawnSync('test', ['-x', BINARIES[kind]]);
  return r.status === 0 ? null : `${BINARIES[kind]} is not installed (bash scripts/ensure-brokers.sh installs it)`;
}

export interface RunningBroker {
  kind: BrokerKind;
  url: string;
  port: number;
  output(): string;
  stop(): Promise<void>; // the process only (data kept)
  start(): Promise<void>; // again, same port and data
  dispose(): Promise<void>; // stop and remove its data
}

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

async function waitPort(port: number, ms: number, proc: ChildProcess, out: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`broker exited (${proc.exitCode}):\n${out().slice(-3000)}`);
    if (await portOpen(port)) return;
    await sleep(100);
  }
  throw new Error(`broker did not listen on ${port} within ${ms} ms:\n${out().slice(-3000)}`);
}

// `password`: the broker asks for it (redis only: requirepass).
export async function startBroker(kind: BrokerKind, o: { password?: string } = {}): Promise<RunningBroker> {
  const dir = await tempDir('zfaas-broker-');
  const port = await freePort();
  const extra = kind === 'amqp' ? { dist: await freePort(), epmd: await freePort() } : undefined;
  let proc: ChildProcess | undefined;
  let out = '';
  const keep = (b: Buffer): void => {
    out = (out + b.toString()).slice(-100_000);
  };

  const launch = async (): Promise<void> => {
    let cmd: string;
    let args: string[];
    let env: NodeJS.ProcessEnv = process.env;
    if (kind === 'nats') {
      cmd = BINARIES.nats;
      args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', join(dir, 'js')];
    } else if (kind === 'redis') {
      cmd = BINARIES.redis;
      args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'];
      if (o.password) args.push('--requirepass', o.password);
    } else if (kind === 'mqtt') {
      const conf = join(dir, 'mosquitto.conf');
      await writeFile(
        conf,
        `listener ${port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location ${dir}/\nmax_queued_messages 0\n`,
      );
      cmd = BINARIES.mqtt;
      args = ['-c', conf];
    } else {
      await mkdir(join(dir, 'home'), { recursive: true });
      await writeFile(join(dir, 'rabbit.conf'), `listeners.tcp.default = 127.0.0.1:${port}\nloopback_users = none\n`);
      await writeFile(join(dir, 'plugins'), '[].\n');
      env = {
        ...process.env,
        HOME: join(dir, 'home'),
        RABBITMQ_NODENAME: `zfaas${port}@localhost`,
        RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
        RABBITMQ_NODE_PORT: String(port),
        RABBITMQ_DIST_PORT: String(extra!.dist),
        ERL_EPMD_PORT: String(extra!.epmd),
        RABBITMQ_MNESIA_BASE: join(dir, 'mnesia'),
        RABBITMQ_LOG_BASE: join(dir, 'log'),
        RABBITMQ_CONFIG_FILE: join(dir, 'rabbit'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'plugins'),
        RABBITMQ_PID_FILE: join(dir, 'rabbit.pid'),
      };
      // Its own epmd, in the same process group (else the VM starts a detached daemon nothing stops).
      cmd = '/bin/sh';
      args = ['-c', `epmd -port ${extra!.epmd} & sleep 0.3; exec ${BINARIES.amqp}`];
    }
    out = '';
    // A process group of its own, so that stopping it stops what it started.
    proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    await waitPort(port, kind === 'amqp' ? 60_000 : 15_000, proc, () => out);
  };

  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (!p || p.pid === undefined) return;
    const exited = p.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => p.once('exit', () => r()));
    try {
      process.kill(-p.pid, 'SIGTERM');
    } catch {
      /* gone already */
    }
    const hard = setTimeout(() => {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 10_000);
    await exited;
    // The group may outlive its leader for a moment (the VM, epmd): wait until its port is free.
    for (let i = 0; i < 100 && (await portOpen(port)); i++) await sleep(100);
    try {
      process.kill(-p.pid, 'SIGKILL'); // whatever of the group is left
    } catch {
      /* none */
    }
    clearTimeout(hard);
  };

  await launch();
  const scheme = { nats: 'nats', mqtt: 'mqtt', amqp: 'amqp', redis: 'redis' }[kind];
  return {
    kind,
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    output: () => out,
    stop,
    start: launch,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
