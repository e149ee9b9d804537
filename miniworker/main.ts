// A miniworker: a small process that owns its containers, runs one job at a time and asks for the next.
// Crashing loses no job: the instance sees the process exit and gives its job to another miniworker.
import '../common/lean.js'; // first: keeps what the miniworker never uses out of memory
import Docker from 'dockerode';
import { Dealer } from 'zeromq';
import { errText } from '../common/errors.js';
import { SendQueue } from '../common/zmq.js';
import { decode, encode } from '../protocol/codec.js';
import { ToWorkerSchema, type FromWorker, type Job } from '../protocol/worker.js';
import type { CallOutcome } from '../common/model.js';
import { runOnce } from './run-once.js';
import { TimeoutError, WarmContainer } from './warm.js';

export interface MiniworkerOptions {
  broker: string;
  nodeId: string;
  name: string;
}

export async function runMiniworker(opts: MiniworkerOptions): Promise<void> {
  const docker = new Docker();
  const socket = new Dealer({ routingId: opts.name, linger: 1000 });
  const out = new SendQueue(socket);
  socket.connect(opts.broker);
  const send = (m: FromWorker): Promise<void> => out.send(encode(m));

  let stopping = false;
  const stop = (): void => {
    stopping = true;
    socket.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The instance is our parent: if it goes, so do we.
  process.on('disconnect', stop);

  const containers = new Map<string, WarmContainer>();
  await send({ type: 'ready', pid: process.pid });
  try {
    for await (const frames of socket) {
      const { msg } = decode(ToWorkerSchema, frames as Buffer[]);
      if (msg.type === 'shutdown') break;
      if (msg.type === 'job') {
        const job = msg.job;
        const { outcome, alive } = await execute(docker, containers, job, opts.nodeId, opts.name).catch(
          (e): { outcome: CallOutcome; alive: boolean } => ({
            outcome: { status: 'ERROR', result: '', error: `zfaas could not run the function: ${errText(e)}` },
            alive: false,
          }),
        );
        await send({ type: 'result', jobId: job.jobId, callNum: job.callNum, outcome, containerAlive: alive });
      } else if (msg.type === 'prestart') {
        try {
          const w = await WarmContainer.create(docker, msg.spec);
          containers.set(msg.spec.id, w);
          if (msg.load) await w.load(msg.load, 30_000);
          await send({ type: 'started', id: msg.spec.id, ok: true });
        } catch (e) {
          await containers.get(msg.spec.id)?.remove();
          containers.delete(msg.spec.id);
          await send({ type: 'started', id: msg.spec.id, ok: false, error: errText(e) });
        }
      } else if (msg.type === 'remove') {
        // Removal goes on in the background: this miniworker is free for the next call at once.
        const w = containers.get(msg.id);
        containers.delete(msg.id);
        if (w) void w.remove();
        await send({ type: 'removed', id: msg.id });
      }
      await send({ type: 'ready', pid: process.pid });
    }
  } catch (e) {
    // The instance logs this miniworker's exit; this line says why (pino stays out of the miniworker: memory).
    if (!stopping)
      console.error(
        JSON.stringify({ level: 50, time: Date.now(), name: `miniworker ${opts.name}`, msg: 'miniworker loop failed', err: errText(e) }),
      );
  }
  await Promise.all([...containers.values()].map((w) => w.remove()));
  if (!socket.closed) socket.close();
}

// Runs one job where the instance said: a fresh container, or one of ours (created now if asked).
async function execute(
  docker: Docker,
  containers: Map<string, WarmContainer>,
  job: Job,
  nodeId: string,
  name: string,
): Promise<{ outcome: CallOutcome; alive: boolean }> {
  const use = job.use;
  if (!use) return { outcome: await runOnce(docker, job, nodeId, name), alive: false };
  let w = containers.get(use.id);
  if (use.create) {
    try {
      w = await WarmContainer.create(docker, use.create);
    } catch (e) {
      return {
        outcome: { status: 'ERROR', result: '', error: `zfaas could not start a container for the function: ${errText(e)}` },
        alive: false,
      };
    }
    containers.set(use.id, w);
  }
  // The instance believed we hold a container we do not: run the call in a fresh one instead.
  if (!w || !w.alive) {
    containers.delete(use.id);
    return { outcome: await runOnce(docker, job, nodeId, name), alive: false };
  }
  if (use.load) {
    try {
      if (use.limits) await w.limit(use.limits);
      await w.load(use.load, job.fn.settings.timeout * 1000);
    } catch (e) {
      // A function that cannot load (no handler, a syntax error) fails its call; the container is spent.
      await w.remove();
      containers.delete(use.id);
      return {
        outcome: {
          status: 'ERROR',
          result: '',
          error: e instanceof TimeoutError ? 'the function did not finish loading within its timeout' : errText(e),
        },
        alive: false,
      };
    }
  }
  const outcome = await w.call(job);
  if (!w.alive) containers.delete(use.id);
  return { outcome, alive: w.alive };
}

// Spawned by the instance: node miniworker/main.js BROKER NODE_ID NAME
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [broker, nodeId, name] = process.argv.slice(2);
  if (!broker || !nodeId || !name) {
    console.error('usage: miniworker BROKER NODE_ID NAME');
    process.exit(2);
  }
  runMiniworker({ broker, nodeId, name }).then(
    () => process.exit(0),
    (e) => {
      console.error(errText(e));
      process.exit(1);
    },
  );
}
