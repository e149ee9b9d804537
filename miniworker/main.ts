// A miniworker: a small process that owns its containers, runs one job at a time and asks for the next.
// Crashing loses no job: the instance sees the process exit and gives its job to another miniworker.
import Docker from 'dockerode';
import { Dealer } from 'zeromq';
import { createLogger, errText } from '../common/log.js';
import { SendQueue } from '../common/zmq.js';
import { decode, encode } from '../protocol/codec.js';
import { ToWorkerSchema, type FromWorker, type Job } from '../protocol/worker.js';
import type { CallOutcome } from '../common/model.js';
import { runOnce } from './run-once.js';

export interface MiniworkerOptions {
  broker: string;
  nodeId: string;
  name: string;
}

export async function runMiniworker(opts: MiniworkerOptions): Promise<void> {
  const log = createLogger(`miniworker ${opts.name}`);
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

  await send({ type: 'ready', pid: process.pid, warmKey: null });
  try {
    for await (const frames of socket) {
      const { msg } = decode(ToWorkerSchema, frames as Buffer[]);
      if (msg.type === 'shutdown') break;
      const outcome = await execute(docker, msg.job, opts.nodeId).catch(
        (e): CallOutcome => ({ status: 'ERROR', result: '', error: `zfaas could not run the function: ${errText(e)}` }),
      );
      await send({ type: 'result', jobId: msg.job.jobId, callNum: msg.job.callNum, outcome });
      await send({ type: 'ready', pid: process.pid, warmKey: null });
    }
  } catch (e) {
    if (!stopping) log.error({ err: errText(e) }, 'miniworker loop failed');
  }
  if (!socket.closed) socket.close();
}

function execute(docker: Docker, job: Job, nodeId: string): Promise<CallOutcome> {
  return runOnce(docker, job, nodeId);
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
