// A miniworker: a small process that holds containers for its instance and does the Docker work on them
// (protocol/worker.ts), so that the instance's event loop never waits on the engine. It has one job slot
// (create, adopt, run, exec, deps, sweep), whose reply is its "ready"; `remove` is taken at any time, also
// while the slot is busy, so a running call can be cancelled. Every container it makes is known by name
// before its create is sent: a shutdown waits for creates in flight and removes everything it holds.
// Crashing loses no job: the instance sees the process exit and gives the job to another miniworker.
import '../common/lean.js'; // first: keeps what the miniworker never uses out of memory
import Docker from 'dockerode';
import { Dealer } from 'zeromq';
import { heldContainer, type Owner } from '../common/container-spec.js';
import { imageCreateOptions } from './image.js';
import { removeContainer, removeLabelled } from '../common/docker.js';
import { failure } from '../common/faults.js';
import { errText } from '../common/errors.js';
import type { CallOutcome } from '../common/model.js';
import { SendQueue } from '../common/zmq.js';
import { decode, encode } from '../protocol/codec.js';
import { ToWorkerSchema, type FromWorker, type ToWorker } from '../protocol/worker.js';
import { runDependencies } from './dependencies.js';
import { Held } from './held.js';
import { runOnce } from './run-once.js';

export interface MiniworkerOptions {
  broker: string;
  nodeId: string;
  name: string;
  // The instance that spawned it, by pid: a parent that died before this process could look stays dead to it.
  parent?: number;
}

type Job = Exclude<ToWorker, { type: 'remove' | 'shutdown' }>;

// The process's own states: taking commands, doing its one job, finishing before it exits.
type State = 'idle' | 'working' | 'stopping';

export async function runMiniworker(opts: MiniworkerOptions): Promise<void> {
  const docker = new Docker();
  const owner: Owner = { node: opts.nodeId, miniworker: opts.name };
  const socket = new Dealer({ routingId: opts.name, linger: 1000 });
  const out = new SendQueue(socket);
  socket.connect(opts.broker);
  // The instance is gone when a send fails: this process follows it (see `orphaned`).
  const send = (m: FromWorker): Promise<void> => out.send(encode(m)).catch(() => undefined);

  let state: State = 'idle';
  let current: Promise<void> = Promise.resolve();
  const held = new Map<string, Promise<Held | undefined>>(); // by name, from the moment its create is sent
  const running = new Set<string>(); // fresh containers of calls and dependency steps, by name

  const stop = (): void => {
    state = 'stopping';
    if (!socket.closed) socket.close();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The instance is our parent: if it dies, so do we, within a second, whatever we were doing. What we
  // held is removed as far as that second allows; the node's next start sweeps the rest by its labels.
  const orphaned = (): void => {
    stop();
    setTimeout(() => process.exit(0), 500).unref();
    for (const id of [...held.keys(), ...running]) void removeContainer(docker.getContainer(id));
  };
  // The parent may have died while this process was loading, before any listener was there to hear it:
  // its pid as given (not as found now) and the state of the IPC channel say so all the same.
  process.on('disconnect', orphaned);
  const parent = opts.parent ?? process.ppid;
  const forked = process.send !== undefined;
  const watch = (): void => {
    if (state !== 'stopping' && (process.ppid !== parent || (forked && !process.connected))) orphaned();
  };
  setInterval(watch, 250).unref();
  watch();

  const remove = async (id: string, report: boolean): Promise<FromWorker> => {
    const h = held.get(id);
    held.delete(id);
    // A create that failed holds nothing: it is removed by name below.
    const container = await h?.catch(() => undefined);
    if (container) return { type: 'removed', id, exit: await container.remove(report) };
    // A fresh container of a call (or a create that failed half-way): by name. A call's run whose create
    // the engine has not done yet is removed again until its job ends, so a cancel cannot be overtaken.
    await removeContainer(docker.getContainer(id));
    while (running.has(id)) {
      await new Promise((r) => setTimeout(r, 200));
      await removeContainer(docker.getContainer(id));
    }
    return { type: 'removed', id };
  };

  const work = async (m: Job): Promise<FromWorker> => {
    switch (m.type) {
      case 'create': {
        const mode = m.plan.runtime.loader && m.plan.lineDir ? 'loader' : 'exec';
        const id = m.plan.id;
        const plan = m.plan;
        // An image function's container comes from its own image, with zfaas-bridge as its loader.
        const options = async (): Promise<Docker.ContainerCreateOptions> =>
          plan.fn?.image ? imageCreateOptions(docker, plan, owner) : heldContainer({ name: id, ...plan }, owner);
        const p = options().then((o) =>
          Held.create(docker, o, mode, () => {
            if (held.has(id)) void send({ type: 'exited', id });
          }),
        );
        held.set(
          m.plan.id,
          // Its failure is answered below, to the create; the table keeps only what was made.
          p.catch(() => undefined),
        );
        try {
          await p;
          return { type: 'created', id: m.plan.id, ok: true };
        } catch (e) {
          held.delete(m.plan.id);
          return { type: 'created', id: m.plan.id, ok: false, error: errText(e) };
        }
      }
      case 'adopt': {
        // A create that failed holds nothing: the adopt says the stem cell is gone.
        const h = await held.get(m.id)?.catch(() => undefined);
        if (!h?.alive) return { type: 'adopted', id: m.id, ok: false, error: 'the stem cell is gone' };
        try {
          await Held.fillSlot(m.treeDir, m.slotDir);
          await h.limit(m.limits);
          return { type: 'adopted', id: m.id, ok: true };
        } catch (e) {
          return { type: 'adopted', id: m.id, ok: false, error: errText(e) };
        }
      }
      case 'run': {
        running.add(m.job.name);
        const outcome = await runOnce(docker, m.job, owner)
          .catch((e): CallOutcome => failure('platform', `zfaas could not run the function: ${errText(e)}`))
          .finally(() => running.delete(m.job.name));
        return { type: 'ran', jobId: m.jobId, outcome };
      }
      case 'exec': {
        // `alive: false` tells the instance the container is gone: it is removed before that is said (one
        // whose process ended on its own, or was killed, still stands on the engine until then).
        // A create that failed holds nothing: the call is told its container is gone.
        const h = await held.get(m.id)?.catch(() => undefined);
        if (!h?.alive) {
          held.delete(m.id);
          await (h ? h.remove() : removeContainer(docker.getContainer(m.id)));
          const outcome: CallOutcome = failure('platform', 'zfaas lost the container for this call');
          return { type: 'ran', jobId: m.jobId, outcome, alive: false };
        }
        const r = await h.exec(m.job).catch((e) => ({
          outcome: failure('platform', `zfaas could not run the function: ${errText(e)}`),
          alive: false,
        }));
        if (!r.alive) {
          held.delete(m.id);
          await h.remove();
        }
        return { type: 'ran', jobId: m.jobId, outcome: r.outcome as CallOutcome, alive: r.alive };
      }
      case 'deps': {
        running.add(m.deps.name);
        try {
          return { type: 'depsDone', jobId: m.jobId, run: await runDependencies(docker, m.deps, owner) };
        } catch (e) {
          const run = {
            exitCode: null,
            timedOut: false,
            tooLarge: false,
            oomKilled: false,
            log: `zfaas could not run the step: ${errText(e)}`,
          };
          return { type: 'depsDone', jobId: m.jobId, run };
        } finally {
          running.delete(m.deps.name);
        }
      }
      case 'sweep': {
        // What this node left behind in an earlier life (before anything of this life exists), or what a
        // miniworker that died left behind.
        const filter: Record<string, string> = m.miniworker ? { 'zfaas.miniworker': m.miniworker } : { 'zfaas.node': opts.nodeId };
        const keep = m.keep;
        const ours = keep ? (labels: Record<string, string>) => (labels['zfaas.miniworker'] ?? '').startsWith(keep) : undefined;
        return { type: 'swept', removed: await removeLabelled(docker, filter, ours) };
      }
    }
  };

  await send({ type: 'ready', pid: process.pid });
  try {
    for await (const frames of socket) {
      const { msg } = decode(ToWorkerSchema, frames as Buffer[]);
      if (msg.type === 'shutdown') break;
      if (msg.type === 'remove') {
        void remove(msg.id, msg.report ?? false).then(send);
        continue;
      }
      if (state === 'working') {
        // The instance leases one job at a time: a second one means its bookkeeping is broken.
        console.error(
          JSON.stringify({
            level: 50,
            time: Date.now(),
            name: `miniworker ${opts.name}`,
            msg: 'invariant broken: a second job while one runs',
            job: msg.type,
          }),
        );
        break;
      }
      state = 'working';
      current = work(msg).then(async (reply) => {
        if (state === 'working') state = 'idle';
        await send(reply);
      });
    }
  } catch (e) {
    // The instance logs this miniworker's exit; this line says why (pino stays out of the miniworker: memory).
    if ((state as State) !== 'stopping')
      console.error(
        JSON.stringify({ level: 50, time: Date.now(), name: `miniworker ${opts.name}`, msg: 'miniworker loop failed', err: errText(e) }),
      );
  }
  state = 'stopping';
  // Whatever is in flight is cut short: its containers are removed (a job waiting on one then ends), and
  // again until the job has ended, since a create the engine was still doing may finish after a removal.
  let settled = false;
  void current.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let round = 0; round < 6; round++) {
    await Promise.all([...held.keys()].map((id) => remove(id, false)));
    await Promise.all([...running].map((name) => remove(name, false)));
    await removeLabelled(docker, { 'zfaas.miniworker': opts.name }).catch(() => 0);
    if (settled) break;
    // Only waits for the job to end; its own outcome was already sent or is moot.
    await Promise.race([current.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
  if (!socket.closed) socket.close();
}

// Spawned by the instance: node miniworker/main.js BROKER NODE_ID NAME [PARENT_PID]
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [broker, nodeId, name, parentPid] = process.argv.slice(2);
  const parent = parentPid === undefined ? undefined : Number(parentPid);
  if (!broker || !nodeId || !name || (parent !== undefined && !Number.isInteger(parent))) {
    console.error('usage: miniworker BROKER NODE_ID NAME [PARENT_PID]');
    process.exit(2);
  }
  runMiniworker({ broker, nodeId, name, parent }).then(
    () => process.exit(0),
    (e) => {
      console.error(errText(e));
      process.exit(1);
    },
  );
}
