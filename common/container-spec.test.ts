// What a function container is (common/container-spec.ts), for the secrets and isolation settings: every
// kind of container of a function naming secrets, and every stem cell, gets the secrets tmpfs (owned by the
// function's uid, 0500), a function naming none and the dependencies step do not; a runtime's `isolation` becomes HostConfig.Runtime of all of them; a gated call waits for a
// line on stdin before its run command starts; no value of a secret can be in any spec (there is none to put);
// a function with network=true is on the node's function network, never Docker's default bridge.
import { describe, expect, it } from 'vitest';
import { FunctionSettingsSchema, RuntimeSchema, type FunctionMeta } from './model.js';
import { callContainer, dependenciesContainer, FUNCTION_NETWORK, GATE, heldContainer, SECRETS_TMPFS, UID } from './container-spec.js';

const runtime = RuntimeSchema.parse({ name: 'node', image: 'zfaas/node', path: '/ws', run: 'node run.js', loader: 'node loader.js' });
const isolated = { ...runtime, isolation: 'runsc' };
const fn: FunctionMeta = {
  functionName: 'f',
  runtimeName: 'node',
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: new Date(0).toISOString(),
  settings: FunctionSettingsSchema.parse({ secrets: ['db'] }),
};
const owner = { node: 'n1', miniworker: 'mw1' };
const call = { callNum: 1, deadline: 0 };

const specs = (rt: typeof runtime) => ({
  call: callContainer({ name: 'c', fn, runtime: rt, treeDir: '/t', call, params: {} }, owner),
  warm: heldContainer({ name: 'w', runtime: rt, treeDir: '/t', lineDir: '/l', fn }, owner),
  stem: heldContainer({ name: 's', runtime: rt, treeDir: '/t', lineDir: '/l' }, owner),
  exec: heldContainer({ name: 'e', runtime: { ...rt, loader: undefined }, treeDir: '/t', fn }, owner),
  deps: dependenciesContainer(
    { name: 'd', fn, runtime: rt, srcDir: '/s', srcMount: '/zfaas/src', script: 'true', maxMiB: 10, network: false },
    owner,
  ),
});

describe('container specs', () => {
  it('mount the secrets tmpfs, the function`s uid`s only, where a function naming secrets may run, and nowhere else', () => {
    expect(SECRETS_TMPFS).toContain(`uid=${UID}`);
    expect(SECRETS_TMPFS).toContain('mode=0500');
    expect(SECRETS_TMPFS).toMatch(/noexec/);
    const s = specs(runtime);
    for (const kind of ['call', 'warm', 'stem', 'exec'] as const)
      expect(s[kind].HostConfig?.Tmpfs?.['/var/zfaas/secrets']).toBe(SECRETS_TMPFS);
    expect(s.deps.HostConfig?.Tmpfs?.['/var/zfaas/secrets']).toBeUndefined();
    // a function naming none gets no folder, except in a stem cell (which may take any function)
    const plain = { ...fn, settings: FunctionSettingsSchema.parse({}) };
    const call0 = callContainer({ name: 'c', fn: plain, runtime, treeDir: '/t', call, params: {} }, owner);
    const warm0 = heldContainer({ name: 'w', runtime, treeDir: '/t', lineDir: '/l', fn: plain }, owner);
    expect(call0.HostConfig?.Tmpfs).not.toHaveProperty(['/var/zfaas/secrets']);
    expect(warm0.HostConfig?.Tmpfs).not.toHaveProperty(['/var/zfaas/secrets']);
  });

  it('run every container of an isolated runtime under its Docker runtime, and others under the default', () => {
    for (const spec of Object.values(specs(isolated))) expect(spec.HostConfig?.Runtime).toBe('runsc');
    for (const spec of Object.values(specs(runtime))) expect(spec.HostConfig).not.toHaveProperty('Runtime');
  });

  it('gate a call: one line on stdin first, the run command as an argument (not interpolated)', () => {
    const gated = callContainer({ name: 'c', fn, runtime, treeDir: '/t', call, params: {}, gated: true }, owner);
    expect(gated.Cmd).toEqual(['sh', '-c', GATE, 'zfaas-gate', 'node run.js']);
    expect(GATE).toMatch(/^IFS= read -r _ /);
    expect(callContainer({ name: 'c', fn, runtime, treeDir: '/t', call, params: {} }, owner).Cmd).toEqual(['sh', '-c', 'node run.js']);
  });

  it('name no secret in the environment or labels', () => {
    for (const spec of Object.values(specs(runtime))) {
      expect(JSON.stringify(spec.Env)).not.toMatch(/secret/i);
      expect(JSON.stringify(spec.Labels)).not.toMatch(/secret/i);
    }
  });

  it('put every container of a function with network=true on the function network, and every other on none', () => {
    const networked = { ...fn, settings: FunctionSettingsSchema.parse({ network: true }) };
    const on = [
      callContainer({ name: 'c', fn: networked, runtime, treeDir: '/t', call, params: {} }, owner),
      heldContainer({ name: 'w', runtime, treeDir: '/t', lineDir: '/l', fn: networked }, owner),
      dependenciesContainer(
        { name: 'd', fn: networked, runtime, srcDir: '/s', srcMount: '/zfaas/src', script: 'true', maxMiB: 10, network: true },
        owner,
      ),
    ];
    expect(FUNCTION_NETWORK).toBe('zfaas-fn');
    for (const spec of on) {
      expect(spec.HostConfig?.NetworkMode).toBe(FUNCTION_NETWORK);
      expect(spec.NetworkDisabled).toBe(false);
    }
    for (const spec of Object.values(specs(runtime))) {
      expect(spec.HostConfig?.NetworkMode).toBe('none');
      expect(spec.NetworkDisabled).toBe(true);
    }
  });
});
