// Policy `none`: a fresh container per call, running the runtime's `run` command, removed after. The
// container is named by the instance, so a call can be cancelled by removing it while it runs. A function
// with secrets runs gated: the container starts, its secrets are written into its tmpfs by `docker exec`s,
// and only then does the line on stdin that lets the run command start arrive (the params after it).
import type Docker from 'dockerode';
import { callContainer, callEnv, functionEnv, paramsOf, type CallIdentity, type Owner } from '../common/container-spec.js';
import { runContainer } from '../common/docker.js';
import type { CallOutcome } from '../common/model.js';
import type { RunJob } from '../protocol/worker.js';
import { outcomeOf } from './outcome.js';
import { syncSecrets } from './secrets.js';

const identity = (job: RunJob): CallIdentity => ({
  callNum: job.callNum,
  replica: job.replica,
  attempt: job.attempt,
  deadline: job.deadline,
});

// The environment of a `docker exec` of the run command: the function's, the call's and the params.
export function callEnvList(job: RunJob): string[] {
  const env = { HOME: '/tmp', ...functionEnv(job.fn, job.runtime), ...callEnv(identity(job)) };
  const params = JSON.stringify(paramsOf(job.params));
  return [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...(params.length <= 96 * 1024 ? [`ZFAAS_PARAMS=${params}`] : [])];
}

export async function runOnce(docker: Docker, job: RunJob, owner: Owner): Promise<CallOutcome> {
  const s = job.fn.settings;
  const secrets = job.secrets ?? [];
  const gated = secrets.length > 0;
  const create = callContainer(
    { name: job.name, fn: job.fn, runtime: job.runtime, treeDir: job.treeDir, call: identity(job), params: job.params, gated },
    owner,
  );
  const params = JSON.stringify(paramsOf(job.params));
  const r = await runContainer(docker, create, {
    stdin: gated ? `\n${params}` : params,
    timeoutMs: s.timeout * 1000,
    ...(gated ? { beforeInput: (c: Docker.Container) => syncSecrets(c, secrets) } : {}),
  });
  return outcomeOf(r, s.timeout, s.memory);
}
