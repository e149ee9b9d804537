// Telling an out-of-memory kill from another SIGKILL, against the real engine: the engine's event log keeps
// every `oom` of a container (common/docker.ts's oomEvent), which inspectExited reads when the container's
// state lost the mark. Each container carries the zfaas label and a label of this file, and is removed.
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { LABEL } from '../common/container-spec.js';
import { inspectExited, oomEvent, removeLabelled } from '../common/docker.js';

const docker = new Docker();
const MINE = 'zfaas-test-docker-oom';

// Runs `cmd` in the node image with 32 MiB and no swap, until it exits.
async function ran(cmd: string[]): Promise<Docker.Container> {
  const c = await docker.createContainer({
    Image: 'zfaas/node:latest',
    Cmd: cmd,
    Labels: { [LABEL]: 'true', [MINE]: 'true' },
    HostConfig: { Memory: 32 * 1024 * 1024, MemorySwap: 32 * 1024 * 1024, NetworkMode: 'none' },
  });
  await c.start();
  await c.wait();
  return c;
}

afterAll(async () => {
  await removeLabelled(docker, { [MINE]: 'true' });
});

describe("the engine's word on an out-of-memory kill", () => {
  it('finds the oom of a container killed for its memory, and none for another exit 137', async () => {
    const hog = await ran(['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));']);
    const self = await ran(['sh', '-c', 'exit 137']); // as a SIGKILL that was not the kernel's
    const [h, s] = await Promise.all([hog.inspect(), self.inspect()]);
    expect([h.State.ExitCode, s.State.ExitCode]).toEqual([137, 137]);
    expect(await oomEvent(docker, hog, h.State.StartedAt)).toBe(true);
    expect(await oomEvent(docker, self, s.State.StartedAt)).toBe(false);
    // Whatever the state says, inspectExited names the memory kill and only it.
    expect((await inspectExited(docker, hog))?.State.OOMKilled).toBe(true);
    expect((await inspectExited(docker, self))?.State.OOMKilled).toBe(false);
  }, 60_000);
});
