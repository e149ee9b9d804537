// Retries, dead letters and replays in the DB service: a run (`ran`) that ends in ERROR or TIMEOUT of a
// function with `retries` puts the call back to PENDING until `retryAt` (the wait doubling), keeping the run
// in its history; one that fails every run is a dead letter, listed until replayed (once) or dismissed.
// What the platform ends itself, a cancelled call and a function without retries are final at once. Over
// a real ZMQ socket and through local(), on each store (a real LevelDB in a temp
// dir, a throwaway PostgreSQL: test/helpers/stores.ts), restarted on the same store.
import { createHash } from 'node:crypto';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DbUnderTest, finishCall, requeueCall, startCall } from '../test/helpers/db-service.js';
import { stores, type StoreKind } from '../test/helpers/stores.js';
import type { DbClient } from './client.js';
import type { Call, CallOutcome } from '../common/model.js';
import type { DbContent } from '../protocol/db.js';

let t: DbUnderTest;
let kind: StoreKind; // the store of the tests running now

beforeEach(async () => {
  t = await DbUnderTest.open('zfaas-db-retries-', await kind.store());
});

afterEach(async () => {
  await t.remove();
});

const blob = Buffer.from('an archive for the retry tests');
const digest = createHash('sha256').update(blob).digest('hex');

// A new version of `functionName` with these settings (the rest default), as the API deploys one.
async function deploy(db: DbClient, functionName: string, settings: DbContent<'addFunction'>['settings']): Promise<number> {
  await db.request('putRuntime', { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' });
  await db.request('putArchive', { digest }, [blob]);
  const fn = await db.request('addFunction', { functionName, runtimeName: 'py', digest, size: blob.length, format: 'tar.gz', settings });
  return fn.version;
}

const failed = (error: string, status: 'ERROR' | 'TIMEOUT' = 'ERROR'): CallOutcome => ({
  status,
  result: '',
  error,
  logs: `logs of ${error}`,
  durationMs: 7,
});
const done = (result: string): CallOutcome => ({ status: 'DONE', result, logs: '', durationMs: 3 });

// Sends a request and tells when (ms) it was sent and answered, to check times the DB set meanwhile.
async function timed<T>(send: () => Promise<T>): Promise<{ value: T; before: number; after: number }> {
  const before = Date.now();
  const value = await send();
  return { value, before, after: Date.now() };
}

// One run of the call on `node` that ends with `outcome`, reported by the node (`ran`).
async function run(db: DbClient, callNum: number, node: string, outcome: CallOutcome): Promise<Call> {
  expect((await startCall(db, { callNum, node })).changed).toBe(true);
  const r = await finishCall(db, { callNum, node, outcome, ran: true });
  expect(r.changed).toBe(true);
  return r.call!;
}

// A call of funcName@version that failed all its runs (`runs`: 1 + the function's retries).
async function deadLetter(db: DbClient, funcName: string, version: number, runs: number, params: unknown = {}): Promise<Call> {
  const { callNum } = await db.request('createCall', { funcName, version, params });
  let call: Call | undefined;
  for (let i = 1; i <= runs; i++) call = await run(db, callNum, `n${i}`, failed(`boom${i}`));
  expect(call).toMatchObject({ status: 'ERROR', deadLetter: 'listed' });
  return call!;
}

const listed = async (db: DbClient, funcName?: string, limit?: number): Promise<number[]> =>
  (await db.request('listDeadLetters', { ...(funcName ? { funcName } : {}), ...(limit ? { limit } : {}) })).map((c) => c.callNum);

describe.each(stores())('on $name', (k) => {
  beforeAll(() => {
    kind = k;
  });

  describe('retries of a failed run', () => {
    it('follows the settings of the version as deployed now: a function deleted and deployed again under its name', async () => {
      const db = t.remote;
      expect(await deploy(db, 'again', { retries: 2 })).toBe(1);
      const first = await db.request('createCall', { funcName: 'again', version: 1, params: {} });
      expect(await run(db, first.callNum, 'n1', failed('boom'))).toMatchObject({ status: 'PENDING', attempts: 1 });
      expect((await db.request('deleteFunction', { name: 'again' })).deleted).toBe(true);
      expect(await deploy(db, 'again', { retries: 0 })).toBe(1); // version 1 again, without retries
      const second = await db.request('createCall', { funcName: 'again', version: 1, params: {} });
      expect(await run(db, second.callNum, 'n1', failed('boom'))).toMatchObject({ status: 'ERROR', attempts: 1 });
    });

    it('runs a failing call again after 1 s, then 2 s, keeping each failed run, and lists it as a dead letter after the last', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 2, retryBackoff: 1000 });
      const { callNum } = await db.request('createCall', { funcName: 'f', version, params: { x: 1 } });

      // Run 1 fails: back to PENDING until retryAt, the run in its history, nothing of it on the call.
      await startCall(db, { callNum, node: 'n1' });
      const first = await timed(() => finishCall(db, { callNum, node: 'n1', outcome: failed('boom1'), ran: true }));
      expect(first.value.changed).toBe(true);
      const pending = await db.request('getCall', { callNum });
      expect(pending).toEqual(first.value.call);
      expect(pending).toMatchObject({ status: 'PENDING', result: '', attempts: 1, params: { x: 1 } });
      for (const gone of ['error', 'logs', 'node', 'startedAt', 'durationMs', 'finishedAt', 'deadLetter'])
        expect(pending).not.toHaveProperty(gone);
      const retryAt = Date.parse(pending!.retryAt!);
      expect(retryAt).toBeGreaterThanOrEqual(first.before + 1000);
      expect(retryAt).toBeLessThanOrEqual(first.after + 1000);
      expect(pending!.history).toEqual([
        {
          attempt: 1,
          status: 'ERROR',
          error: 'boom1',
          logs: 'logs of boom1',
          node: 'n1',
          startedAt: expect.any(String),
          finishedAt: expect.any(String),
          durationMs: 7,
        },
      ]);
      // Waiting for its retry, it is unfinished (so that a restarted API dispatches it at retryAt).
      expect((await db.request('listUnfinished', {})).map((c) => c.callNum)).toEqual([callNum]);

      // The same run reported again (the node, then the API for it) changes nothing.
      const dup = await finishCall(t.local, { callNum, node: 'n1', outcome: failed('boom1'), ran: true });
      expect(dup.changed).toBe(false);
      expect(await db.request('getCall', { callNum })).toEqual(pending);

      // Run 2 starts: no longer waiting; it times out, and the wait doubles.
      const started = await startCall(db, { callNum, node: 'n2' });
      expect(started.call).toMatchObject({ status: 'RUNNING', node: 'n2', attempts: 2 });
      expect(started.call).not.toHaveProperty('retryAt');
      const second = await timed(() => finishCall(db, { callNum, node: 'n2', outcome: failed('slow', 'TIMEOUT'), ran: true }));
      expect(second.value.call).toMatchObject({ status: 'PENDING', attempts: 2 });
      const retryAt2 = Date.parse(second.value.call!.retryAt!);
      expect(retryAt2).toBeGreaterThanOrEqual(second.before + 2000);
      expect(retryAt2).toBeLessThanOrEqual(second.after + 2000);
      expect(second.value.call!.history!.map((a) => [a.attempt, a.status, a.error, a.node])).toEqual([
        [1, 'ERROR', 'boom1', 'n1'],
        [2, 'TIMEOUT', 'slow', 'n2'],
      ]);

      // Run 3, the last the function allows, fails: final, a dead letter, with every run.
      const last = await run(db, callNum, 'n3', failed('boom3'));
      const final = await db.request('getCall', { callNum });
      expect(final).toEqual(last);
      expect(final).toMatchObject({
        status: 'ERROR',
        error: 'boom3',
        node: 'n3',
        attempts: 3,
        deadLetter: 'listed',
        finishedAt: expect.any(String),
      });
      expect(final).not.toHaveProperty('retryAt');
      expect(final!.history!.map((a) => a.attempt)).toEqual([1, 2]);
      expect(await db.request('listUnfinished', {})).toEqual([]);
      expect(await db.request('listDeadLetters', {})).toEqual([final]);

      // Reported again: the first final outcome stays.
      expect((await finishCall(db, { callNum, node: 'n3', outcome: done('late'), ran: true })).changed).toBe(false);
      expect(await db.request('getCall', { callNum })).toEqual(final);
    });

    it('records a failed run once when it is reported many times at once (the node, and the API for it)', async () => {
      const version = await deploy(t.local, 'f', { retries: 1, retryBackoff: 100 });
      const { callNum } = await t.local.request('createCall', { funcName: 'f', version, params: {} });
      await startCall(t.local, { callNum, node: 'n1' });
      const reports = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          finishCall(i % 2 ? t.remote : t.local, { callNum, node: 'n1', outcome: failed(`boom${i}`), ran: true }),
        ),
      );
      expect(reports.filter((r) => r.changed)).toHaveLength(1);
      const call = await t.remote.request('getCall', { callNum });
      expect(call).toMatchObject({ status: 'PENDING', attempts: 1, history: [{ attempt: 1, error: expect.stringMatching(/^boom\d+$/) }] });
      expect(call!.history).toHaveLength(1);
    });

    it('lists dead letters newest first, by function, up to a limit', async () => {
      const db = t.local;
      const f = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const g = await deploy(db, 'g', { retries: 2, retryBackoff: 100 });
      const a = await deadLetter(db, 'f', f, 2);
      const b = await deadLetter(db, 'g', g, 3);
      await db.request('createCall', { funcName: 'f', version: f, params: {} }); // not run: not a dead letter
      const c = await deadLetter(db, 'f', f, 2);
      expect(await listed(t.remote)).toEqual([c.callNum, b.callNum, a.callNum]);
      expect(await listed(t.remote, 'f')).toEqual([c.callNum, a.callNum]);
      expect(await listed(t.remote, 'g')).toEqual([b.callNum]);
      expect(await listed(t.remote, 'h')).toEqual([]);
      expect(await listed(t.remote, undefined, 2)).toEqual([c.callNum, b.callNum]);
      expect(await listed(t.remote, 'f', 1)).toEqual([c.callNum]);
    });

    it('ends a call that succeeds on a retry as DONE, not a dead letter', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 2, retryBackoff: 1000 });
      const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {} });
      expect(await run(db, callNum, 'n1', failed('boom1'))).toMatchObject({ status: 'PENDING' });
      const call = await run(db, callNum, 'n2', done('42'));
      expect(call).toMatchObject({
        status: 'DONE',
        result: '42',
        node: 'n2',
        attempts: 2,
        history: [{ attempt: 1, status: 'ERROR', error: 'boom1' }],
      });
      expect(call).not.toHaveProperty('deadLetter');
      expect(call).not.toHaveProperty('retryAt');
      expect(call).not.toHaveProperty('error');
      expect(await listed(db)).toEqual([]);
    });

    it('counts the run an outcome says ended, even when the word that it began never came', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 2, retryBackoff: 1000 });
      const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {} });
      expect(await run(db, callNum, 'n1', failed('boom1'))).toMatchObject({ status: 'PENDING', attempts: 1 });
      // the second run's startCall was lost (the DB service was down): its outcome says which run it was
      const r = await finishCall(db, { callNum, node: 'n2', outcome: { ...done('42'), attempt: 2 }, ran: true, attempt: 2 });
      expect(r.call).toMatchObject({ status: 'DONE', result: '42', attempts: 2, history: [{ attempt: 1 }] });
      expect(r.call).not.toHaveProperty('attempt');
    });

    it('ends at once a call the platform ended (ran unset or false), even with retries left', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 3, retryBackoff: 1000 });
      for (const ran of [undefined, false]) {
        const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {} });
        await startCall(db, { callNum, node: 'n1' });
        const r = await finishCall(db, {
          callNum,
          node: 'n1',
          outcome: failed('no node could run it'),
          ...(ran === undefined ? {} : { ran }),
        });
        expect(r.call).toMatchObject({ status: 'ERROR', error: 'no node could run it', attempts: 1 });
        for (const none of ['history', 'retryAt', 'deadLetter']) expect(r.call).not.toHaveProperty(none);
      }
      expect(await listed(db)).toEqual([]);
      expect(await db.request('listUnfinished', {})).toEqual([]);
    });

    it('does not retry a cancelled call, nor list it, even one cancelled while it waits for its retry', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 2, retryBackoff: 1000 });
      const cancelled: CallOutcome = { status: 'ERROR', result: '', error: 'cancelled', cancelled: true };

      // Cancelled while it runs (reported as the run's outcome).
      const a = await db.request('createCall', { funcName: 'f', version, params: {} });
      expect(await run(db, a.callNum, 'n1', cancelled)).toMatchObject({ status: 'ERROR', cancelled: true, attempts: 1 });

      // Cancelled between runs: the API ends it; its earlier run stays in its history.
      const b = await db.request('createCall', { funcName: 'f', version, params: {} });
      expect(await run(db, b.callNum, 'n1', failed('boom1'))).toMatchObject({ status: 'PENDING' });
      const r = await finishCall(db, { callNum: b.callNum, outcome: cancelled });
      expect(r.changed).toBe(true);
      const call = await db.request('getCall', { callNum: b.callNum });
      expect(call).toMatchObject({ status: 'ERROR', cancelled: true, history: [{ attempt: 1, error: 'boom1' }] });
      expect(call).not.toHaveProperty('retryAt'); // it will not run again
      for (const c of [a, b]) expect(await db.request('getCall', { callNum: c.callNum })).not.toHaveProperty('deadLetter');
      expect(await listed(db)).toEqual([]);
      expect(await db.request('listUnfinished', {})).toEqual([]);
    });

    it('never retries nor lists a call of a function without retries (the default)', async () => {
      const db = t.remote;
      for (const settings of [{}, { retries: 0, retryBackoff: 500 }]) {
        const version = await deploy(db, 'f', settings);
        for (const outcome of [failed('boom'), failed('slow', 'TIMEOUT'), done('ok')]) {
          const { callNum } = await db.request('createCall', { funcName: 'f', version, params: {} });
          const call = await run(db, callNum, 'n1', outcome);
          expect(call).toMatchObject({ status: outcome.status, attempts: 1 });
          for (const none of ['history', 'retryAt', 'deadLetter']) expect(call).not.toHaveProperty(none);
        }
      }
      expect(await listed(db)).toEqual([]);
      expect(await db.request('listUnfinished', {})).toEqual([]);
    });

    it('uses the retries of the version the call runs, not the current one', async () => {
      const db = t.remote;
      const v1 = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const v2 = await deploy(db, 'f', {}); // current now, without retries
      const { callNum } = await db.request('createCall', { funcName: 'f', version: v1, params: {} });
      expect(await run(db, callNum, 'n1', failed('boom1'))).toMatchObject({ status: 'PENDING' });
      expect(await run(db, callNum, 'n1', failed('boom2'))).toMatchObject({ status: 'ERROR', deadLetter: 'listed' });
      const other = await db.request('createCall', { funcName: 'f', version: v2, params: {} });
      expect(await run(db, other.callNum, 'n1', failed('boom'))).not.toHaveProperty('deadLetter');
    });

    it('keeps retryAt, history and the dead-letter list across a restart, and goes on from there', async () => {
      const version = await deploy(t.remote, 'f', { retries: 2, retryBackoff: 1000 });
      const dead = await deadLetter(t.remote, 'f', version, 3);
      const { callNum } = await t.remote.request('createCall', { funcName: 'f', version, params: {} });
      const waiting = await run(t.remote, callNum, 'n1', failed('boom1'));

      await t.stop();
      await t.start();

      expect(await t.remote.request('getCall', { callNum })).toEqual(waiting);
      expect(await t.local.request('listUnfinished', {})).toEqual([waiting]);
      expect(await t.remote.request('listDeadLetters', {})).toEqual([dead]);
      // The run reported again after the restart is still the same run.
      expect((await finishCall(t.local, { callNum, node: 'n1', outcome: failed('boom1'), ran: true })).changed).toBe(false);
      // The next run fails: the wait doubles from where it was.
      await startCall(t.remote, { callNum, node: 'n2' });
      const second = await timed(() => finishCall(t.remote, { callNum, node: 'n2', outcome: failed('boom2'), ran: true }));
      expect(Date.parse(second.value.call!.retryAt!)).toBeGreaterThanOrEqual(second.before + 2000);
      expect(second.value.call!.history).toHaveLength(2);
      const last = await run(t.local, callNum, 'n3', failed('boom3'));
      expect(await listed(t.remote)).toEqual([last.callNum, dead.callNum]);
    });
  });

  describe('replays and dismissals of dead letters', () => {
    it('replays a dead letter once, as a new call that refers to it; it leaves the list', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const dead = await deadLetter(db, 'f', version, 2, { order: 7 });
      const other = await deadLetter(db, 'f', version, 2);

      const replay = await db.request('createCall', { funcName: 'f', version, params: dead.params, replayOf: dead.callNum });
      expect(replay).toMatchObject({
        callNum: other.callNum + 1,
        status: 'PENDING',
        attempts: 0,
        params: { order: 7 },
        replayOf: dead.callNum,
      });
      for (const none of ['history', 'retryAt', 'deadLetter', 'replayedAs']) expect(replay).not.toHaveProperty(none);
      expect(await db.request('getCall', { callNum: replay.callNum })).toEqual(replay);
      // The dead letter keeps its outcome and says what replayed it.
      expect(await db.request('getCall', { callNum: dead.callNum })).toEqual({
        ...dead,
        deadLetter: 'replayed',
        replayedAs: replay.callNum,
      });
      expect(await listed(db)).toEqual([other.callNum]);

      // Again: CONFLICT, saying as what; and no call is made.
      await expect(db.request('createCall', { funcName: 'f', version, params: {}, replayOf: dead.callNum })).rejects.toMatchObject({
        code: 'CONFLICT',
        message: `call ${dead.callNum} was already replayed as call ${replay.callNum}`,
      });
      expect((await db.request('listCalls', {})).map((c) => c.callNum)).toEqual([dead.callNum, other.callNum, replay.callNum]);

      // The replay can fail in turn, and is then a dead letter of its own.
      await run(db, replay.callNum, 'n1', failed('again1'));
      await run(db, replay.callNum, 'n1', failed('again2'));
      expect(await listed(db)).toEqual([replay.callNum, other.callNum]);
      expect(await db.request('getCall', { callNum: replay.callNum })).toMatchObject({ deadLetter: 'listed', replayOf: dead.callNum });
    });

    it('refuses to replay a call that is not a listed dead letter (CONFLICT) or does not exist (NOT_FOUND)', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const pending = await db.request('createCall', { funcName: 'f', version, params: {} });
      const doneCall = await db.request('createCall', { funcName: 'f', version, params: {} });
      await run(db, doneCall.callNum, 'n1', done('ok'));
      const dismissed = await deadLetter(db, 'f', version, 2);
      await db.request('dismissDeadLetter', { callNum: dismissed.callNum });
      for (const callNum of [pending.callNum, doneCall.callNum, dismissed.callNum]) {
        await expect(db.request('createCall', { funcName: 'f', version, params: {}, replayOf: callNum })).rejects.toMatchObject({
          code: 'CONFLICT',
          message: `call ${callNum} is not a listed dead letter`,
        });
      }
      await expect(t.local.request('createCall', { funcName: 'f', version, params: {}, replayOf: 999 })).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: 'call 999 not found',
      });
      expect(await db.request('listCalls', {})).toHaveLength(3); // no call made by a refused replay
      expect((await db.request('createCall', { funcName: 'f', version, params: {} })).callNum).toBe(4);
    });

    it('makes one replay of 30 sent at once for the same dead letter', async () => {
      const version = await deploy(t.local, 'f', { retries: 1, retryBackoff: 100 });
      const dead = await deadLetter(t.local, 'f', version, 2);
      const results = await Promise.allSettled(
        Array.from({ length: 30 }, (_, i) =>
          (i % 2 ? t.remote : t.local).request('createCall', { funcName: 'f', version, params: {}, replayOf: dead.callNum }),
        ),
      );
      const made = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      expect(made).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'CONFLICT' });
      expect(await t.remote.request('getCall', { callNum: dead.callNum })).toMatchObject({
        deadLetter: 'replayed',
        replayedAs: made[0]!.callNum,
      });
      expect(await t.remote.request('listCalls', {})).toHaveLength(2);
    });

    it('dismisses a dead letter once: it leaves the list and can no longer be replayed', async () => {
      const db = t.remote;
      const version = await deploy(db, 'f', { retries: 1, retryBackoff: 100 });
      const dead = await deadLetter(db, 'f', version, 2);
      const kept = await deadLetter(db, 'f', version, 2);
      const r = await db.request('dismissDeadLetter', { callNum: dead.callNum });
      expect(r).toEqual({ call: { ...dead, deadLetter: 'dismissed' }, changed: true });
      expect(await db.request('getCall', { callNum: dead.callNum })).toEqual({ ...dead, deadLetter: 'dismissed' });
      expect(await listed(db)).toEqual([kept.callNum]);
      expect(await t.local.request('dismissDeadLetter', { callNum: dead.callNum })).toEqual({
        call: { ...dead, deadLetter: 'dismissed' },
        changed: false,
      });
      // Nothing else is a dead letter to dismiss.
      const plain = await db.request('createCall', { funcName: 'f', version, params: {} });
      expect(await db.request('dismissDeadLetter', { callNum: plain.callNum })).toEqual({ call: plain, changed: false });
      expect(await db.request('dismissDeadLetter', { callNum: 999 })).toEqual({ call: null, changed: false });
    });

    it('keeps replays and dismissals across a restart', async () => {
      const version = await deploy(t.remote, 'f', { retries: 1, retryBackoff: 100 });
      const replayed = await deadLetter(t.remote, 'f', version, 2);
      const dismissed = await deadLetter(t.remote, 'f', version, 2);
      const kept = await deadLetter(t.remote, 'f', version, 2);
      const replay = await t.remote.request('createCall', { funcName: 'f', version, params: {}, replayOf: replayed.callNum });
      await t.remote.request('dismissDeadLetter', { callNum: dismissed.callNum });

      await t.stop();
      await t.start();

      expect(await listed(t.remote)).toEqual([kept.callNum]);
      expect(await t.remote.request('getCall', { callNum: replayed.callNum })).toMatchObject({
        deadLetter: 'replayed',
        replayedAs: replay.callNum,
      });
      expect(await t.remote.request('getCall', { callNum: dismissed.callNum })).toMatchObject({ deadLetter: 'dismissed' });
      await expect(t.local.request('createCall', { funcName: 'f', version, params: {}, replayOf: replayed.callNum })).rejects.toMatchObject(
        {
          code: 'CONFLICT',
        },
      );
      expect((await t.local.request('createCall', { funcName: 'f', version, params: {}, replayOf: kept.callNum })).replayOf).toBe(
        kept.callNum,
      );
      expect(await listed(t.remote)).toEqual([]);
    });
  });

  describe('a call given back by a draining node', () => {
    it('is PENDING again without the start it was counted for; from another node, or once ended, nothing changes', async () => {
      const db = t.remote;
      const version = await deploy(db, 'g', {});
      const { callNum } = await db.request('createCall', { funcName: 'g', version, params: {} });
      await startCall(db, { callNum, node: 'n1' });
      const other = await requeueCall(db, { callNum, unstartedOn: 'n2' });
      expect(other).toMatchObject({ changed: false, call: { status: 'RUNNING', node: 'n1', attempts: 1 } });
      const back = await requeueCall(db, { callNum, unstartedOn: 'n1' });
      expect(back).toMatchObject({ changed: true, call: { status: 'PENDING', attempts: 0 } });
      expect(back.call!.node).toBeUndefined();
      await run(db, callNum, 'n3', done('1'));
      expect((await requeueCall(db, { callNum, unstartedOn: 'n3' })).changed).toBe(false);
      expect(await db.request('getCall', { callNum })).toMatchObject({ status: 'DONE', attempts: 1 });
    });
  });
});
