// An image function's container: the sandbox every function gets, the image's own server handed to the
// bridge, and the user it runs as (never root).
import { describe, expect, it } from 'vitest';
import { imageConfigOf, imageContainer, runAs } from './image-spec.js';
import { FunctionSettingsSchema, type FunctionMeta } from './model.js';
import { IMAGE_RUNTIME_RECORD, imageRuntime } from './image-function.js';

const fn = (over: Record<string, unknown> = {}): FunctionMeta & { image: { ref: string; port: number; readiness: number } } => ({
  functionName: 'web',
  runtimeName: 'zfaas-image',
  version: 2,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar',
  createdAt: 'now',
  settings: FunctionSettingsSchema.parse({ env: { GREETING: 'hi' }, ...over }),
  image: { ref: 'acme/api:1', port: 9000, readiness: 4 },
});

describe('runAs', () => {
  it("keeps the image's user unless it is root", () => {
    expect(runAs('')).toEqual({ user: '1000:1000', secretsUid: 1000 });
    expect(runAs('root')).toEqual({ user: '1000:1000', secretsUid: 1000 });
    expect(runAs('0:0')).toEqual({ user: '1000:1000', secretsUid: 1000 });
    expect(runAs('1001')).toEqual({ user: '1001:1001', secretsUid: 1001 });
    expect(runAs('1001:50')).toEqual({ user: '1001:50', secretsUid: 1001 });
    expect(runAs('node')).toEqual({ user: 'node', secretsUid: 1000 });
  });
});

describe('imageConfigOf', () => {
  it('reads the entrypoint and command in both forms', () => {
    expect(imageConfigOf({ Config: { Entrypoint: null, Cmd: ['python3', '-m', 'http.server'], User: '', WorkingDir: '/app' } })).toEqual({
      entrypoint: [],
      cmd: ['python3', '-m', 'http.server'],
      user: '',
      workingDir: '/app',
    });
    expect(imageConfigOf({ Config: { Entrypoint: 'serve --fast' } }).entrypoint).toEqual(['/bin/sh', '-c', 'serve --fast']);
    expect(imageConfigOf({})).toEqual({ entrypoint: [], cmd: [], user: '', workingDir: '' });
  });
});

describe('imageContainer', () => {
  const owner = { node: 'n1', miniworker: 'mw1' };
  const cfg = { entrypoint: ['/docker-entrypoint.sh'], cmd: ['serve'], user: 'root', workingDir: '/app' };
  const make = (over: Record<string, unknown> = {}) => {
    const f = fn(over);
    return imageContainer(
      { name: 'c1', fn: f, runtime: imageRuntime(IMAGE_RUNTIME_RECORD, f.image), lineDir: '/data/lines/c1', bridgeDir: '/data/bridge' },
      cfg,
      owner,
    );
  };

  it('runs the bridge from a read-only mount, handing it the image’s server, its port and readiness', () => {
    const o = make();
    expect(o.Image).toBe('acme/api:1');
    expect(o.Entrypoint).toEqual(['/run/zfaas-bridge/zfaas-bridge']);
    expect(o.Cmd).toEqual([]);
    expect(o.WorkingDir).toBe('/app');
    expect(o.User).toBe('1000:1000');
    expect(o.Env).toEqual(
      expect.arrayContaining([
        'PORT=9000',
        'ZFAAS_BRIDGE_READINESS=4',
        `ZFAAS_BRIDGE_CMD=${JSON.stringify(['/docker-entrypoint.sh', 'serve'])}`,
        'ZFAAS_LINE=/run/zfaas/line.sock',
        'GREETING=hi',
        'ZFAAS_FUNCTION=web',
      ]),
    );
    expect(o.HostConfig?.Binds).toEqual(['/data/lines/c1:/run/zfaas:ro', '/data/bridge:/run/zfaas-bridge:ro']);
  });

  it('gets the sandbox every function gets: no network unless asked, caps dropped, read-only root, limits', () => {
    const o = make({ memory: 128 });
    expect(o.NetworkDisabled).toBe(true);
    expect(o.HostConfig).toMatchObject({
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      ReadonlyRootfs: true,
      Memory: 128 * 1024 * 1024,
      Init: true,
    });
    expect(o.HostConfig?.SecurityOpt).toContain('no-new-privileges');
    expect(make({ network: true }).HostConfig?.NetworkMode).toBe('zfaas-fn');
  });

  it('gives the secrets folder to the user it runs as', () => {
    const f = fn({ secrets: ['token'] });
    const o = imageContainer(
      { name: 'c1', fn: f, runtime: IMAGE_RUNTIME_RECORD, lineDir: '/l', bridgeDir: '/b' },
      { ...cfg, user: '1001' },
      owner,
    );
    expect(o.User).toBe('1001:1001');
    expect(o.HostConfig?.Tmpfs?.['/var/zfaas/secrets']).toMatch(/uid=1001,gid=1001/);
  });
});
