// `zfaas dead-letters` (the table, the filters sent), `dead-letters replay` (the version asked for, the new
// call printed), `dead-letters rm`, the API's 409 and 404 as one line and exit 1, and `zfaas call N` for a
// call that was retried, is a dead letter or a replay, or has a callback. A fake API behind fetch: the
// commands run in process, their stdout rendered as a terminal would show it (tables without colour).
import { Command } from 'commander';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXIT } from '../client/errors.js';
import { renderTable, type Output } from '../client/output.js';
import { makeDeps } from './common.js';
import { registerClientCommands } from './index.js';
import { runCli } from '../../test/helpers/cli-run.js';

const API = 'http://api.test';
const NOW = Date.parse('2026-11-23T12:00:00.000Z');
const at = (msAgo: number): string => new Date(NOW - msAgo).toISOString();

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterAll(() => {
  vi.useRealTimers();
});

interface Seen {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
}
type Route = (r: Seen) => [number, unknown];

/** A fake API: "METHOD /path" -> [status, body]; records every request. Unknown routes answer 404. */
function fakeApi(routes: Record<string, Route>): { fetchFn: typeof fetch; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(String(input));
    const r: Seen = {
      method: init?.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: init?.body === undefined ? undefined : (JSON.parse(String(init.body)) as unknown),
    };
    seen.push(r);
    const route = routes[`${r.method} ${r.path}`];
    const [status, body] = route ? route(r) : [404, { error: `no route ${r.method} ${r.path}` }];
    return Response.json(body, { status });
  };
  return { fetchFn, seen };
}

/** Runs a client command with `fetchFn`; stdout as a terminal shows it (tables and fields rendered). */
async function run(args: string[], fetchFn: typeof fetch): Promise<{ code: number; stdout: string; notes: string[] }> {
  const lines: string[] = [];
  const notes: string[] = [];
  let code = 0;
  const out: Output = {
    print: (t) => void lines.push(t),
    note: (t) => void notes.push(t),
    json: (v) => void lines.push(JSON.stringify(v, null, 2)),
    table: (head, rows) => void lines.push(renderTable(head, rows, false)),
    fields: (pairs) => {
      const w = Math.max(0, ...pairs.map(([k]) => k.length)) + 1;
      lines.push(pairs.map(([k, v]) => `${`${k}:`.padEnd(w)} ${v}`).join('\n'));
    },
    progress: () => undefined,
  };
  const p = new Command('zfaas');
  const stdin = Object.assign(Readable.from([]), { isTTY: true });
  registerClientCommands(p, makeDeps({ out, env: { ZFAAS_API: API }, stdin, fetchFn, setExitCode: (c) => (code = c) }));
  await p.parseAsync(args, { from: 'user' });
  return { code, stdout: lines.join('\n'), notes };
}

// A dead letter: three runs, the last two shown in its history, the last one its own fields.
const dead = (callNum: number, o: Record<string, unknown> = {}): Record<string, unknown> => ({
  callNum,
  funcName: 'charge',
  version: 2,
  params: { order: callNum },
  status: 'ERROR',
  result: '',
  error: `Error: card declined\n    at charge (index.js:3:9)`,
  node: 'node-b',
  attempts: 3,
  createdAt: at(600_000),
  startedAt: at(125_000),
  finishedAt: at(120_000),
  durationMs: 5000,
  history: [
    { attempt: 1, status: 'ERROR', error: 'Error: card declined\n    at x', node: 'node-a', finishedAt: at(300_000), durationMs: 12 },
    { attempt: 2, status: 'TIMEOUT', error: 'timed out after 30 s', node: 'node-b', finishedAt: at(200_000), durationMs: 30_000 },
  ],
  deadLetter: 'listed',
  ...o,
});

describe('zfaas dead-letters [list]', () => {
  it('prints the listed dead letters as a table, asking for the function and the limit given', async () => {
    const api = fakeApi({
      'GET /dead-letters': () => [200, [dead(12), dead(9, { funcName: 'mail', version: 1, status: 'TIMEOUT', error: 'timed out' })]],
    });
    const r = await run(['dead-letters'], api.fetchFn);
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe(
      [
        'CALL   FUNCTION   VERSION   STATUS    ATTEMPTS   FAILED   LAST ERROR',
        '12     charge     2         ERROR     3          2m ago   Error: card declined',
        '9      mail       1         TIMEOUT   3          2m ago   timed out',
      ].join('\n'),
    );
    expect(r.notes).toEqual([
      'replay one: zfaas dead-letters replay CALL; dismiss one: zfaas dead-letters rm CALL; see one: zfaas call CALL',
    ]);
    expect(api.seen).toEqual([{ method: 'GET', path: '/dead-letters', query: { limit: '20' }, body: undefined }]);

    await run(['dead-letters', 'list', '--function', 'charge', '-n', '2'], api.fetchFn);
    expect(api.seen[1]?.query).toEqual({ funcName: 'charge', limit: '2' });
    const page = await run(['dead-letters', 'ls', '--function', 'charge', '--limit', '2'], api.fetchFn);
    expect(page.notes[0]).toBe('the newest 2; more: zfaas dead-letters --limit 10 --function charge');
  });

  it('cuts a long last error to its first line', async () => {
    const long = dead(5, { error: `RangeError: ${'x'.repeat(80)}\nsecond line` });
    const r = await run(['dead-letters'], fakeApi({ 'GET /dead-letters': () => [200, [long]] }).fetchFn);
    const last = r.stdout.split('\n')[1] ?? '';
    expect(last).toMatch(/RangeError: x+…$/);
    expect(last).not.toContain('second line');
    expect(last.slice(last.indexOf('RangeError'))).toHaveLength(50);
  });

  it('says so when there are none, and prints the raw list with --json', async () => {
    const none = fakeApi({ 'GET /dead-letters': () => [200, []] });
    expect(await run(['dead-letters', '--function', 'charge'], none.fetchFn)).toEqual({
      code: EXIT.OK,
      stdout: '',
      notes: ['no dead letters for charge'],
    });
    const one = dead(12);
    const json = await run(['dead-letters', '--json'], fakeApi({ 'GET /dead-letters': () => [200, [one]] }).fetchFn);
    expect(JSON.parse(json.stdout)).toEqual([one]);
  });

  it('refuses a word that is not a subcommand with exit 2', async () => {
    expect(await runCli(['dead-letters', 'replya', '12'])).toMatchObject({
      code: EXIT.USAGE,
      notes: ['zfaas: unexpected "replya": "zfaas dead-letters" takes list, replay N or rm N'],
    });
  });
});

describe('zfaas dead-letters replay', () => {
  const replayed = (version: number): Record<string, unknown> => ({
    callNum: 57,
    funcName: 'charge',
    version,
    params: { order: 12 },
    status: 'PENDING',
    result: '',
    attempts: 0,
    createdAt: at(0),
    replayOf: 12,
  });

  it("asks for the current version by default, the dead letter's own with --same-version, or --version V", async () => {
    const api = fakeApi({ 'POST /dead-letters/12/replay': (r) => [201, replayed((r.body as { version?: number }).version ?? 3)] });
    expect(await run(['dead-letters', 'replay', '12'], api.fetchFn)).toEqual({
      code: EXIT.OK,
      stdout: 'replayed call 12 as call 57 (charge@3)',
      notes: ['follow it: zfaas call 57; its logs: zfaas logs 57'],
    });
    await run(['dead-letters', 'replay', '12', '--same-version'], api.fetchFn);
    await run(['dead-letters', 'replay', '12', '--version', '1'], api.fetchFn);
    expect(api.seen.map((r) => r.body)).toEqual([{}, { version: 'same' }, { version: 1 }]);

    const json = await run(['dead-letters', 'replay', '12', '--json'], api.fetchFn);
    expect(JSON.parse(json.stdout)).toMatchObject({ callNum: 57, replayOf: 12 });
    expect(json.notes).toEqual([]);
  });

  it('refuses --same-version with --version, and a call number that is not one, sending nothing (exit 2)', async () => {
    expect(await runCli(['dead-letters', 'replay', '12', '--same-version', '--version', '2'])).toEqual({
      code: EXIT.USAGE,
      printed: [],
      notes: ['zfaas: give --same-version or --version, not both (neither: the current version of the function)'],
    });
    expect(await runCli(['dead-letters', 'replay', 'twelve'])).toEqual({
      code: EXIT.USAGE,
      printed: [],
      notes: ['zfaas: call number must be a whole number from 1'],
    });
  });

  it("prints the API's 409 and 404 as one line, exit 1", async () => {
    const api = fakeApi({
      'POST /dead-letters/12/replay': () => [409, { error: 'call 12 was already replayed as call 57' }],
      'POST /dead-letters/13/replay': () => [409, { error: 'call 13 is not a listed dead letter' }],
      'POST /dead-letters/99/replay': () => [404, { error: 'call 99 not found' }],
    });
    expect(await runCli(['dead-letters', 'replay', '12'], { fetchFn: api.fetchFn })).toEqual({
      code: EXIT.FAILURE,
      printed: [],
      notes: ['zfaas: call 12 was already replayed as call 57'],
    });
    expect((await runCli(['dead-letters', 'replay', '13'], { fetchFn: api.fetchFn })).notes).toEqual([
      'zfaas: call 13 is not a listed dead letter',
    ]);
    expect(await runCli(['dead-letters', 'replay', '99'], { fetchFn: api.fetchFn })).toMatchObject({
      code: EXIT.FAILURE,
      notes: ['zfaas: call 99 not found'],
    });
  });
});

describe('zfaas dead-letters rm', () => {
  it('dismisses the dead letter (DELETE), and prints a 409 as one line, exit 1', async () => {
    const api = fakeApi({
      'DELETE /dead-letters/12': () => [200, dead(12, { deadLetter: 'dismissed' })],
      'DELETE /dead-letters/13': () => [409, { error: 'call 13 is not a listed dead letter' }],
    });
    expect(await runCli(['dead-letters', 'rm', '12'], { fetchFn: api.fetchFn })).toEqual({
      code: EXIT.OK,
      printed: ['dismissed dead letter 12 (charge@2); "zfaas call 12" still shows it'],
      notes: [],
    });
    expect(await runCli(['dead-letters', 'dismiss', '13'], { fetchFn: api.fetchFn })).toEqual({
      code: EXIT.FAILURE,
      printed: [],
      notes: ['zfaas: call 13 is not a listed dead letter'],
    });
    expect(api.seen.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /dead-letters/12', 'DELETE /dead-letters/13']);
  });
});

describe('zfaas call N', () => {
  const show = async (c: Record<string, unknown>, ...flags: string[]) =>
    run(['call', String(c.callNum), ...flags], fakeApi({ [`GET /call/${String(c.callNum)}`]: () => [200, c] }).fetchFn);

  it('shows a dead letter: its earlier runs, its error, and how to replay or dismiss it', async () => {
    const r = await show(dead(12));
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toBe(
      [
        'call:        12',
        'function:    charge@2',
        'status:      ERROR',
        'node:        node-b',
        'attempts:    3',
        `created:     ${at(600_000)} (10m ago)`,
        'duration:    5.00 s',
        'params:      {"order":12}',
        'dead letter: listed: replay it with "zfaas dead-letters replay 12", or dismiss it with "zfaas dead-letters rm 12"',
        'earlier runs:',
        'ATTEMPT   STATUS    NODE     FINISHED   DURATION   ERROR',
        '1         ERROR     node-a   5m ago     12 ms      Error: card declined',
        '2         TIMEOUT   node-b   3m ago     30.0 s     timed out after 30 s',
        'error:',
        'Error: card declined\n    at charge (index.js:3:9)',
      ].join('\n'),
    );
  });

  it('shows when a call waiting for its retry runs again', async () => {
    const waiting = dead(14, {
      status: 'PENDING',
      error: undefined,
      node: undefined,
      finishedAt: undefined,
      durationMs: undefined,
      deadLetter: undefined,
      attempts: 1,
      history: [{ attempt: 1, status: 'ERROR', error: 'Error: busy', node: 'node-a', finishedAt: at(2000), durationMs: 40 }],
      retryAt: new Date(NOW + 30_000).toISOString(),
    });
    const r = await show(waiting);
    expect(r.stdout).toContain(`status:   PENDING\nretry at: ${new Date(NOW + 30_000).toISOString()} (in 30s)\nnode:`);
    expect(r.stdout).toContain('failed runs (another follows):\nATTEMPT   STATUS   NODE     FINISHED   DURATION   ERROR\n1         ERROR');
  });

  it('links a replayed dead letter to its replay, and the replay to it', async () => {
    expect((await show(dead(12, { deadLetter: 'replayed', replayedAs: 57 }))).stdout).toContain(
      'dead letter: replayed as call 57 ("zfaas call 57")',
    );
    expect((await show(dead(12, { deadLetter: 'dismissed' }))).stdout).toContain('dead letter: dismissed');
    const replay = await show({
      ...dead(57, { history: undefined, deadLetter: undefined }),
      status: 'DONE',
      result: '{"ok":1}',
      error: undefined,
      replayOf: 12,
    });
    expect(replay.stdout).toContain('replay of: call 12 ("zfaas call 12")');
    expect(replay.stdout).toContain('result:\n{\n  "ok": 1\n}');
    expect(replay.stdout).not.toContain('earlier runs');
  });

  it("shows the callback's state and each delivery: when, and the status or the error", async () => {
    const url = 'https://hooks.example.com/zfaas';
    const done = { ...dead(20, { history: undefined, deadLetter: undefined }), status: 'DONE', result: '1', error: undefined };
    const pending = await show({
      ...done,
      callback: {
        url,
        state: 'pending',
        nextAt: new Date(NOW + 8000).toISOString(),
        deliveries: [
          { at: at(4000), error: 'connect ECONNREFUSED 10.0.0.5:443' },
          { at: at(2000), status: 503 },
        ],
      },
    });
    expect(pending.stdout).toContain(`callback: ${url}: pending after 2 tries, next try in 8s\n`);
    expect(pending.stdout).toContain(
      [
        'callback deliveries:',
        'TRY   AT                                  ANSWER',
        `1     ${at(4000)} (4s ago)   connect ECONNREFUSED 10.0.0.5:443`,
        `2     ${at(2000)} (2s ago)   HTTP 503`,
      ].join('\n'),
    );
    const delivered = await show({ ...done, callback: { url, state: 'delivered', deliveries: [{ at: at(1000), status: 204 }] } });
    expect(delivered.stdout).toContain(`callback: ${url}: delivered\n`);
    expect(delivered.stdout).toContain('HTTP 204');
    const failed = await show({ ...done, callback: { url, state: 'failed', deliveries: [{ at: at(1000), status: 500 }] } });
    expect(failed.stdout).toContain(`${url}: failed after 1 try`);
    const waiting = await show({ ...done, status: 'RUNNING', result: '', callback: { url, state: 'waiting', deliveries: [] } });
    expect(waiting.stdout).toContain(`${url}: waiting for the call to end`);
    expect(waiting.stdout).not.toContain('callback deliveries');
  });

  it('keeps --json the raw record', async () => {
    const c = dead(12, { callback: { url: 'https://h.example/x', state: 'failed', deliveries: [{ at: at(1000), status: 500 }] } });
    expect(JSON.parse((await show(c, '--json')).stdout)).toEqual(c);
  });
});
