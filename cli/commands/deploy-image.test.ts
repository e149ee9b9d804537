// The CLI's image deploy without Docker: the engine's build messages read into progress lines, a failure
// or the image id; the tag a build gets; the settings sent as a JSON body; --readiness and --image checked
// before anything is built or sent.
import { describe, expect, it } from 'vitest';
import { buildEvent, builtTag, repoPart } from '../client/image-build.js';
import { fieldsBody, readinessSeconds } from './deploy-image.js';
import { runCli } from '../../test/helpers/cli-run.js';

describe('buildEvent', () => {
  it('prints the steps, reports the failure, keeps the image id', () => {
    expect(buildEvent({ stream: 'Step 1/3 : FROM zfaas/node:latest\n ---> 1a2b\n' })).toEqual({
      lines: ['Step 1/3 : FROM zfaas/node:latest', ' ---> 1a2b'],
    });
    expect(buildEvent({ error: 'The command /bin/sh -c false returned a non-zero code: 1', errorDetail: { message: 'x' } })).toEqual({
      lines: [],
      error: 'The command /bin/sh -c false returned a non-zero code: 1',
    });
    expect(buildEvent({ aux: { ID: 'sha256:abc' } })).toEqual({ lines: [], imageId: 'sha256:abc' });
    expect(buildEvent({ status: 'Pushed', id: 'f00d', progress: '[====>   ]' })).toEqual({ lines: ['f00d: Pushed'] });
    expect(buildEvent({})).toEqual({ lines: [] });
  });
});

describe('builtTag', () => {
  it('names the image after the function and the start of its id', () => {
    expect(builtTag('hello', `sha256:${'0123456789abcdef'.repeat(4)}`)).toBe('zfaas-fn/hello:0123456789ab');
    expect(repoPart('My.Func__2')).toBe('my-func-2');
    expect(repoPart('__')).toBe('fn');
  });
});

describe('fieldsBody and readinessSeconds', () => {
  it('sends repeated fields as lists', () => {
    expect(
      fieldsBody([
        ['memory', '128'],
        ['env', 'A=1'],
        ['env', 'B=2'],
        ['env', 'C=3'],
      ]),
    ).toEqual({ memory: '128', env: ['A=1', 'B=2', 'C=3'] });
  });
  it('reads --readiness as a duration within the limits', () => {
    expect(readinessSeconds('15')).toBe(15);
    expect(readinessSeconds('1m')).toBe(60);
    expect(() => readinessSeconds('0')).toThrow(/--readiness: expected a whole number of seconds from 1 to 300/);
    expect(() => readinessSeconds('1h')).toThrow(/--readiness/);
  });
});

describe('zfaas deploy --image', () => {
  it('refuses a reference that is not one, and --image with a path, before asking the API', async () => {
    const fetchFn = (() => {
      throw new Error('the API was asked');
    }) as unknown as typeof fetch;
    const bad = await runCli(['deploy', 'web', '--image', 'Not/Valid'], { fetchFn });
    expect(bad.code).toBe(2);
    expect(bad.notes.join('\n')).toMatch(/--image: "Not\/Valid" is not an image reference/);
    const both = await runCli(['deploy', 'web', './x', '--image', 'acme/web:1'], { fetchFn });
    expect(both.code).toBe(2);
    expect(both.notes.join('\n')).toMatch(/either --image REF or a path, not both/);
  });

  it('sends the image, its port and readiness with the settings', async () => {
    let sent: { url: string; body: Record<string, unknown> } | undefined;
    const fetchFn = (async (url: string, init: RequestInit) => {
      sent = { url: String(url), body: JSON.parse(String(init.body)) as Record<string, unknown> };
      const meta = {
        functionName: 'web',
        runtimeName: 'zfaas-image',
        version: 3,
        digest: 'a'.repeat(64),
        size: 1536,
        format: 'tar',
        createdAt: 'now',
        settings: {
          timeout: 30,
          memory: 128,
          cpus: 1,
          pids: 128,
          network: false,
          retry: true,
          retries: 0,
          retryBackoff: 1000,
          env: {},
          public: false,
          secrets: [],
        },
        image: { ref: 'acme/web:1', port: 3000, readiness: 20 },
      };
      return new Response(JSON.stringify(meta), { status: 201, headers: { 'content-type': 'application/json' } });
    }) as unknown as typeof fetch;
    const r = await runCli(
      ['deploy', 'web', '--image', 'acme/web:1', '--port', '3000', '--readiness', '20s', '--memory', '128m', '-e', 'A=1'],
      {
        fetchFn,
      },
    );
    expect(r.code, r.notes.join('\n')).toBe(0);
    expect(sent?.url).toMatch(/\/registerImageFunction\/web$/);
    expect(sent?.body).toEqual({ image: 'acme/web:1', port: 3000, readiness: 20, memory: '128', env: 'A=1' });
    expect(r.printed.join('\n')).toMatch(/deployed web version 3 \(image acme\/web:1, port 3000\)/);
  });
});
