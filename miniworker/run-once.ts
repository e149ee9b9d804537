// Policy `none`: a fresh container per call, running the runtime's `run` command, removed after.
import type Docker from 'dockerode';
import { runContainer } from '../common/docker.js';
import type { CallOutcome } from '../common/model.js';
import type { Job } from '../protocol/worker.js';
import { outcomeOf } from './outcome.js';

const MAX_ENV_PARAMS = 96 * 1024; // Linux caps one environment string near 128 KiB

// A call's params as the function gets them: `null` stays null; only missing params are {}.
export const paramsOf = (job: Job): unknown => (job.params === undefined ? {} : job.params);

export function callEnv(job: Job): string[] {
  const params = JSON.stringify(paramsOf(job));
  const env = [
    'HOME=/tmp',
    `ZFAAS_FUNCTION=${job.fn.functionName}`,
    `ZFAAS_VERSION=${job.fn.version}`,
    `ZFAAS_CALL=${job.callNum}`,
    `ZFAAS_DIR=${job.runtime.path}`,
    ...Object.entries(job.fn.settings.env).map(([k, v]) => `${k}=${v}`),
  ];
  if (params.length <= MAX_ENV_PARAMS) env.push(`ZFAAS_PARAMS=${params}`);
  if (job.fn.settings.handler) env.push(`ZFAAS_HANDLER=${job.fn.settings.handler}`);
  if (job.replica !== undefined) env.push(`ZFAAS_REPLICA=${job.replica}`); // redundant calls: which run this is
  return env;
}

// `owner` (the miniworker) is in the labels so a dead miniworker's containers can be found and removed.
export async function runOnce(docker: Docker, job: Job, nodeId: string, owner = ''): Promise<CallOutcome> {
  const s = job.fn.settings;
  const r = await runContainer(docker, {
    image: job.runtime.image,
    cmd: ['sh', '-c', job.runtime.run],
    workdir: job.runtime.path,
    env: callEnv(job),
    binds: [`${job.treeDir}:${job.runtime.path}:ro`],
    labels: { 'zfaas.node': nodeId, 'zfaas.miniworker': owner, 'zfaas.function': job.fn.functionName, 'zfaas.call': String(job.callNum) },
    limits: { memoryMiB: s.memory, cpus: s.cpus, pids: s.pids, network: s.network },
    stdin: JSON.stringify(paramsOf(job)),
    timeoutMs: s.timeout * 1000,
  });
  return outcomeOf(r, s.timeout, s.memory);
}
