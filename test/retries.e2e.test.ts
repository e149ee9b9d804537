// Retries and dead letters against the real services (`zfaas up`): a function that fails twice and then
// succeeds with retries=3 ends DONE with three attempts kept (a caller waiting with `wait` sees only the
// end); one that fails every run is a dead letter, replayed by hand after a fix or dismissed; a cancelled
// call waiting for its retry never runs again; a retry due while the platform is down runs when it is
// back; without `retries` a failed run stays final, as before.
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { http, restartUp, sleep, startUp, upload, waitFor, type Platform, type Proc } from './helpers/platform.js';

interface Attempt {
  attempt: number;
  status: string;
  error?: string;
  node?: string;
}
interface CallRecord {
  callNum: number;
  status: string;
  result: string;
  error?: string;
  attempts: number;
  history?: Attempt[];
  retryAt?: string;
  deadLetter?: string;
  replayOf?: number;
  replayedAs?: number;
  cancelled?: boolean;
}

let p: Platform;
let proc: Proc; // the running `zfaas up` (the first is p.proc)

// Fails while ZFAAS_ATTEMPT (which run of the call this is) is below params.okAt.
const FLAKY = `module.exports = (p) => {
  const a = Number(process.env.ZFAAS_ATTEMPT);
  if (a < p.okAt) throw new Error('attempt ' + a + ' failed');
  return { attempt: a };
};`;

async function deploy(name: string, source: string, fields: Record<string, string>): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/node/${name}`, await packFiles({ 'index.js': source }), `${name}.tar.gz`, fields);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

const invoke = (funcName: string, params: object, wait = false) =>
  http<CallRecord>('POST', `${p.api}/invokeFunction`, { funcName, params, ...(wait ? { wait: true } : {}) });
const call = async (n: number): Promise<CallRecord> => (await http<CallRecord>('GET', `${p.api}/call/${n}`)).body;
const ended = (n: number, timeoutMs = 60_000): Promise<CallRecord> =>
  waitFor(
    `call ${n} to end`,
    async () => {
      const c = await call(n);
      return ['DONE', 'ERROR', 'TIMEOUT'].includes(c.status) ? c : undefined;
    },
    timeoutMs,
  );
const deadLetters = async (query = ''): Promise<number[]> =>
  (await http<CallRecord[]>('GET', `${p.api}/dead-letters${query}`)).body.map((c) => c.callNum);

beforeAll(async () => {
  p = await startUp();
  proc = p.proc;
  await deploy('flaky', FLAKY, { retries: '3', retryBackoff: '200ms' });
  await deploy('doomed', FLAKY, { retries: '1', retryBackoff: '100ms' });
  await deploy('plain', FLAKY, {});
  await deploy('slowpoke', 'module.exports = () => new Promise(() => {});', { retries: '1', retryBackoff: '100ms', timeout: '1' });
});

afterAll(async () => {
  await proc?.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
});

it('runs a call that failed twice again, and answers a waiting caller with its end: DONE, three attempts kept', async () => {
  const r = await invoke('flaky', { okAt: 3 }, true);
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ status: 'DONE', attempts: 3 });
  expect(JSON.parse(r.body.result)).toEqual({ attempt: 3 });
  expect(r.body.history).toHaveLength(2);
  expect(r.body.history!.map((a) => [a.attempt, a.status, a.error])).toEqual([
    [1, 'ERROR', expect.stringMatching(/attempt 1 failed/)],
    [2, 'ERROR', expect.stringMatching(/attempt 2 failed/)],
  ]);
  expect(r.body.history![0]!.node).toBeTruthy();
  expect(r.body.retryAt).toBeUndefined();
  expect(r.body.deadLetter).toBeUndefined();
});

it('keeps a failed run final without `retries`, as before', async () => {
  const r = await invoke('plain', { okAt: 2 }, true);
  expect(r.body).toMatchObject({ status: 'ERROR', attempts: 1 });
  expect(r.body.history).toBeUndefined();
  expect(r.body.deadLetter).toBeUndefined();
});

let doomed: number;
it('lists a call that failed every run as a dead letter, ERROR and TIMEOUT alike', async () => {
  doomed = (await invoke('doomed', { okAt: 5 })).body.callNum;
  const slow = (await invoke('slowpoke', {})).body.callNum;
  const c = await ended(doomed);
  expect(c).toMatchObject({ status: 'ERROR', attempts: 2, deadLetter: 'listed' });
  expect(c.error).toMatch(/attempt 2 failed/);
  expect(c.history).toHaveLength(1);
  const t = await ended(slow);
  expect(t).toMatchObject({ status: 'TIMEOUT', attempts: 2, deadLetter: 'listed' });
  expect(t.history!.map((a) => a.status)).toEqual(['TIMEOUT']);
  expect(await deadLetters()).toEqual([slow, doomed]); // newest first
  expect(await deadLetters('?funcName=doomed')).toEqual([doomed]);
  expect(await deadLetters('?funcName=flaky')).toEqual([]);
});

it('replays a dead letter by hand on the fixed version; a second replay is 409; dismissing takes one off the list', async () => {
  // The fix: the same function, now succeeding at once.
  await deploy('doomed', FLAKY.replace('p.okAt', '0'), { retries: '1' });
  const r = await http<CallRecord>('POST', `${p.api}/dead-letters/${doomed}/replay`, {});
  expect(r.status).toBe(201);
  expect(r.body.replayOf).toBe(doomed);
  expect(await ended(r.body.callNum)).toMatchObject({ status: 'DONE', attempts: 1 });
  expect(await call(doomed)).toMatchObject({ deadLetter: 'replayed', replayedAs: r.body.callNum });
  expect(await deadLetters('?funcName=doomed')).toEqual([]);
  const again = await http<{ error: string }>('POST', `${p.api}/dead-letters/${doomed}/replay`, {});
  expect(again.status).toBe(409);
  expect(again.body.error).toMatch(new RegExp(`already replayed as call ${r.body.callNum}`));

  const [slow] = await deadLetters('?funcName=slowpoke');
  const gone = await http<CallRecord>('DELETE', `${p.api}/dead-letters/${slow}`);
  expect(gone.status).toBe(200);
  expect(gone.body.deadLetter).toBe('dismissed');
  expect(await deadLetters()).toEqual([]);
  expect((await http('DELETE', `${p.api}/dead-letters/${slow}`)).status).toBe(409);
  expect((await http('POST', `${p.api}/dead-letters/999999/replay`, {})).status).toBe(404);
  expect((await http('GET', `${p.api}/dead-letters?limit=0`)).status).toBe(400);
});

it('never runs a cancelled call again that was waiting for its retry', async () => {
  await deploy('patient', FLAKY, { retries: '2', retryBackoff: '3s' });
  const n = (await invoke('patient', { okAt: 9 })).body.callNum;
  const waiting = await waitFor('the call to wait for its retry', async () => {
    const c = await call(n);
    return c.status === 'PENDING' && c.retryAt ? c : undefined;
  });
  expect(waiting.history).toHaveLength(1);
  expect((await http('DELETE', `${p.api}/call/${n}`)).status).toBe(200);
  await sleep(Date.parse(waiting.retryAt!) - Date.now() + 1500);
  expect(await call(n)).toMatchObject({ status: 'ERROR', cancelled: true, attempts: 1 });
  expect(await deadLetters()).toEqual([]);
});

it('runs a retry that fell due while the platform was down once it is back', async () => {
  await deploy('later', FLAKY, { retries: '1', retryBackoff: '4s' });
  const n = (await invoke('later', { okAt: 2 })).body.callNum;
  await waitFor('the call to wait for its retry', async () => ((await call(n)).retryAt ? true : undefined));
  expect(await proc.stop()).toBe(0);
  await sleep(4500);
  proc = await restartUp(p);
  const c = await ended(n);
  expect(c).toMatchObject({ status: 'DONE', attempts: 2 });
  expect(JSON.parse(c.result)).toEqual({ attempt: 2 });
});

it('refuses retries and retryBackoff out of range, naming the setting', async () => {
  const src = await packFiles({ 'index.js': FLAKY });
  const many = await upload<{ error: string }>(`${p.api}/registerFunction/node/bad`, src, 'bad.tar.gz', { retries: '11' });
  expect(many.status).toBe(400);
  expect(many.body.error).toMatch(/retries: expected a whole number of retries from 0 to 10/);
  const quick = await upload<{ error: string }>(`${p.api}/registerFunction/node/bad`, src, 'bad.tar.gz', { retryBackoff: '1ms' });
  expect(quick.status).toBe(400);
  expect(quick.body.error).toMatch(/retryBackoff: expected a duration/);
});
