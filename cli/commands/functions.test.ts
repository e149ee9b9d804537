// `zfaas deploy`'s --memory, --timeout, --retries and --retry-backoff: read like the API reads them, sent
// as the numbers it stores, and a bad one refused locally (exit 2, the API's words) before anything is
// packed or sent; the function's settings line shows its retries only when it has some.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FunctionMetaSchema } from '../../common/model.js';
import { EXIT } from '../client/errors.js';
import { settingsFields, settingsLine } from './functions.js';
import { runCli } from '../../test/helpers/cli-run.js';

describe('deploy settings', () => {
  it('sends sizes and durations as the plain numbers the API stores', () => {
    expect(settingsFields({ memory: '1g', timeout: '1m30s', retry: true })).toEqual([
      ['timeout', '90'],
      ['memory', '1024'],
    ]);
    expect(settingsFields({ memory: '128Mi', timeout: '30', retry: true })).toEqual([
      ['timeout', '30'],
      ['memory', '128'],
    ]);
  });

  it('sends --format, --public and --rate-limit as the fields format, public and rateLimit', () => {
    expect(settingsFields({ format: 'lambda', public: true, rateLimit: 200, retry: true })).toEqual([
      ['format', 'lambda'],
      ['public', 'true'],
      ['rateLimit', '200'],
    ]);
    expect(settingsFields({ public: false, retry: true })).toEqual([]);
  });

  it('sends --retries as is and --retry-backoff in milliseconds, with their unit', () => {
    expect(settingsFields({ retries: '3', retryBackoff: '500ms', retry: true })).toEqual([
      ['retries', '3'],
      ['retryBackoff', '500ms'],
    ]);
    // A plain number is seconds, as the API reads it; sent as the milliseconds it is.
    expect(settingsFields({ retries: 0, retryBackoff: '1.5', retry: true })).toEqual([
      ['retries', '0'],
      ['retryBackoff', '1500ms'],
    ]);
    expect(settingsFields({ retryBackoff: '2m', retry: false })).toEqual([
      ['retry', 'false'],
      ['retryBackoff', '120000ms'],
    ]);
  });

  async function deploy(...flags: string[]): Promise<{ code: number; notes: string[]; fetched: boolean }> {
    let fetched = false;
    const fetchFn = async (): Promise<Response> => {
      fetched = true;
      throw new Error('nothing may be sent');
    };
    // The path does not exist: a refusal that names the setting shows it was checked before packing.
    const r = await runCli(['deploy', 'fn', '/nonexistent/fn', '--runtime', 'node', ...flags], { fetchFn });
    return { code: r.code, notes: r.notes, fetched };
  }

  it('refuses a bad --memory or --timeout with exit 2 and the message the API would give, sending nothing', async () => {
    expect(await deploy('--memory', '12x')).toEqual({
      code: EXIT.USAGE,
      notes: ['zfaas: memory: expected a size such as 128, 128m, 128Mi or 1g (16 MiB to 8 GiB), got "12x"'],
      fetched: false,
    });
    expect(await deploy('--timeout', '500ms')).toEqual({
      code: EXIT.USAGE,
      notes: [
        'zfaas: timeout: expected a duration such as 30, 30s, 2m or 1m30s (whole seconds, 1 s to 15 min), got "500ms", which is not a whole number of seconds',
      ],
      fetched: false,
    });
  });

  it("refuses a bad --retries or --retry-backoff with exit 2 in the API's words, sending nothing", async () => {
    expect(await deploy('--retries', '11')).toEqual({
      code: EXIT.USAGE,
      notes: ['zfaas: retries: expected a whole number of retries from 0 to 10 (unset: 0), got "11"'],
      fetched: false,
    });
    expect((await deploy('--retries', '-1')).code).toBe(EXIT.USAGE);
    expect(await deploy('--retry-backoff', '50ms')).toEqual({
      code: EXIT.USAGE,
      notes: [
        'zfaas: retryBackoff: expected a duration such as 500ms, 1s, 0.5 or 2m (no unit: seconds; 100 ms to 60 min), got "50ms", which is 50 ms',
      ],
      fetched: false,
    });
    expect(await deploy('--retry-backoff', 'soon')).toMatchObject({ code: EXIT.USAGE, fetched: false });
  });
});

describe('deploy --retries --retry-backoff', () => {
  let dir: string | undefined;
  afterAll(async () => dir && rm(dir, { recursive: true, force: true }));

  it('sends them as the multipart fields retries and retryBackoff', async () => {
    dir = await mkdtemp(join(tmpdir(), 'zfaas-deploy-'));
    await writeFile(join(dir, 'index.js'), 'module.exports = () => 1;\n');
    let sent = '';
    const fetchFn = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      sent = Buffer.from(await new Response(init?.body).arrayBuffer()).toString('latin1');
      return Response.json({ ...meta({ retries: 3, retryBackoff: 500 }), files: ['index.js'] }, { status: 201 });
    };
    const r = await runCli(['deploy', 'charge', dir, '--runtime', 'node', '--retries', '3', '--retry-backoff', '500ms'], { fetchFn });
    expect(r).toMatchObject({ code: 0, printed: [expect.stringMatching(/^deployed charge version 1 \(runtime node, /)] });
    expect(sent).toContain('name="retries"\r\n\r\n3\r\n');
    expect(sent).toContain('name="retryBackoff"\r\n\r\n500ms\r\n');
  });
});

describe('deploy following the build', () => {
  let dir: string | undefined;
  afterAll(async () => dir && rm(dir, { recursive: true, force: true }));
  const building = { state: 'building', startedAt: '2026-11-23T00:00:00.000Z' };

  // The API: the deploy answers at once with the build running; GET of the version shows it `ends` reads later.
  async function deployWith(
    ends: Record<string, unknown>,
  ): Promise<{ run: Awaited<ReturnType<typeof runCli>>; sent: string; gets: number }> {
    dir ??= await mkdtemp(join(tmpdir(), 'zfaas-deploy-'));
    await writeFile(join(dir, 'index.js'), 'module.exports = () => 1;\n');
    let sent = '';
    let gets = 0;
    const fetchFn = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      if (init?.method === 'POST') {
        sent = Buffer.from(await new Response(init.body).arrayBuffer()).toString('latin1');
        return Response.json({ ...meta({}), build: building }, { status: 201 });
      }
      expect(String(url)).toMatch(/\/functions\/charge\?version=1$/);
      gets++;
      return Response.json({ ...meta({}), build: gets < 2 ? building : { ...building, ...ends }, versions: [] });
    };
    const run = await runCli(['deploy', 'charge', dir, '--runtime', 'node'], { fetchFn });
    return { run, sent, gets };
  }

  it('asks the API not to wait, follows the build, and says where it was built', async () => {
    const ready = { state: 'ready', finishedAt: '2026-11-23T00:00:02.500Z', node: 'n1', digest: 'b'.repeat(64), size: 2048 };
    const { run, sent, gets } = await deployWith(ready);
    expect(sent).toContain('name="wait"\r\n\r\nfalse\r\n');
    expect(gets).toBe(2);
    expect(run.code).toBe(0);
    expect(run.printed).toEqual([expect.stringMatching(/^deployed charge version 1 \(.*, built in 2\.5s on n1\)$/)]);
  });

  it("prints the build's log and exits 1 when the build failed", async () => {
    const failed = {
      state: 'failed',
      finishedAt: '2026-11-23T00:00:01.000Z',
      error: 'dependencies step failed (exit 3): npm ERR! E404',
      log: 'npm ERR! code E404\nnpm ERR! E404',
    };
    const { run } = await deployWith(failed);
    expect(run.code).toBe(EXIT.FAILURE);
    expect(run.printed).toEqual([]);
    expect(run.notes.join('\n')).toContain("the build's log (its end):\nnpm ERR! code E404\nnpm ERR! E404");
    expect(run.notes.at(-1)).toMatch(/its build failed .*: dependencies step failed \(exit 3\): npm ERR! E404$/);
  });
});

const meta = (settings: Record<string, unknown>) =>
  FunctionMetaSchema.parse({
    functionName: 'charge',
    runtimeName: 'node',
    version: 1,
    digest: 'a'.repeat(64),
    size: 100,
    format: 'tar.gz',
    createdAt: '2026-11-23T00:00:00.000Z',
    settings,
  });

describe('the settings line of "zfaas function NAME"', () => {
  it('shows retries and their first wait only when the function has retries', () => {
    expect(settingsLine(meta({}))).toBe('timeout 30s, memory 256 MiB, cpus 1, policy node default');
    expect(settingsLine(meta({ retries: 3, retryBackoff: 500 }))).toBe(
      'timeout 30s, memory 256 MiB, cpus 1, policy node default, retries 3 (first after 500ms, doubling)',
    );
    expect(settingsLine(meta({ retries: 1, retryBackoff: 90_000, concurrency: 2 }))).toBe(
      'timeout 30s, memory 256 MiB, cpus 1, policy node default, at most 2 at once, retries 1 (first after 1m30s, doubling)',
    );
    expect(settingsLine(meta({ retries: 0, retryBackoff: 5000 }))).not.toContain('retries');
  });
});
