// A call's table (call-life.ts), pure: every move it allows and refuses, words said twice, said late by a
// run the call has left behind or said out of order; and, for any sequence of intents, that a final call
// never changes again, its attempts never go back but for a start given back, and its history numbers its
// failed runs in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Call, CallOutcome } from '../common/model.js';
import type { CallIntent } from '../protocol/db.js';
import { applyIntent, MAX_NODE_LOSSES, type LifeContext, type Verdict } from './call-life.js';

const T0 = new Date('2026-12-04T00:00:00Z');
const ctx = (o: Partial<LifeContext['settings'] & object> = {}): LifeContext => ({
  now: T0,
  settings: { retry: true, retries: 0, retryBackoff: 1000, ...o },
});
const pending = (o: Partial<Call> = {}): Call => ({
  callNum: 1,
  funcName: 'f',
  version: 1,
  params: {},
  status: 'PENDING',
  result: '',
  attempts: 0,
  createdAt: T0.toISOString(),
  ...o,
});
const done: CallOutcome = { status: 'DONE', result: '42' };
const failed: CallOutcome = { status: 'ERROR', result: '', error: 'boom' };

const next = (v: Verdict): Call => {
  if (!v.changed) throw new Error(`refused: ${v.why}`);
  return v.next;
};
const refused = (v: Verdict): string => {
  if (v.changed) throw new Error(`taken: ${JSON.stringify(v.next)}`);
  return v.why;
};
// A call run on n1 (life L1) as its first attempt.
const running = (o: Partial<Call> = {}): Call => next(applyIntent(pending(o), { kind: 'started', node: 'n1', life: 'L1' }, ctx()));

describe('started', () => {
  it('makes a PENDING call RUNNING on that node and life, one attempt more, its retry wait over', () => {
    const c = next(applyIntent(pending({ attempts: 1, retryAt: 'x' }), { kind: 'started', node: 'n1', life: 'L1' }, ctx()));
    expect(c).toMatchObject({ status: 'RUNNING', node: 'n1', life: 'L1', attempts: 2, startedAt: T0.toISOString() });
    expect(c.retryAt).toBeUndefined();
  });
  it('takes the same word twice once, and refuses a run the call has left behind', () => {
    const c = running();
    expect(refused(applyIntent(c, { kind: 'started', node: 'n1', life: 'L1', attempt: 1 }, ctx()))).toBe('said twice');
    const c3 = next(applyIntent(c, { kind: 'started', node: 'n2', attempt: 3 }, ctx()));
    expect(c3).toMatchObject({ attempts: 3, node: 'n2' });
    expect(c3.life).toBeUndefined();
    expect(refused(applyIntent(c3, { kind: 'started', node: 'n1', attempt: 2 }, ctx()))).toMatch(/left behind/);
  });
});

describe('outcome', () => {
  it('ends a running call with its node`s outcome, and refuses it from another node or life', () => {
    const c = running();
    expect(refused(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n2', attempt: 1 }, ctx()))).toMatch(
      /runs on node n1/,
    );
    expect(refused(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n1', life: 'L0', attempt: 1 }, ctx()))).toMatch(
      /runs on node n1/,
    );
    const end = next(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n1', life: 'L1', attempt: 1 }, ctx()));
    expect(end).toMatchObject({ status: 'DONE', result: '42', attempts: 1, node: 'n1', finishedAt: T0.toISOString() });
    expect(end.life).toBeUndefined();
    // the first final state wins: the same word again, or any other, changes nothing
    expect(refused(applyIntent(end, { kind: 'outcome', outcome: failed, ran: true, node: 'n1', attempt: 1 }, ctx()))).toMatch(/has ended/);
    expect(refused(applyIntent(end, { kind: 'cancel' }, ctx()))).toMatch(/has ended/);
  });
  it('counts a run whose start was not heard, from the node that holds it; not from one that does not', () => {
    const c = pending();
    expect(refused(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n9', holder: false, attempt: 1 }, ctx()))).toMatch(
      /does not run it/,
    );
    expect(next(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n1', attempt: 1 }, ctx()))).toMatchObject({
      status: 'DONE',
      attempts: 1,
    });
  });
  it('with retries: a failed run waits PENDING for the next, kept in history; the same run said again changes nothing', () => {
    const c = running();
    const wait = next(
      applyIntent(c, { kind: 'outcome', outcome: failed, ran: true, node: 'n1', life: 'L1', attempt: 1 }, ctx({ retries: 2 })),
    );
    expect(wait).toMatchObject({ status: 'PENDING', attempts: 1, retryAt: new Date(T0.getTime() + 1000).toISOString() });
    expect(wait.history).toEqual([expect.objectContaining({ attempt: 1, status: 'ERROR', error: 'boom', node: 'n1' })]);
    expect(wait.node).toBeUndefined();
    expect(refused(applyIntent(wait, { kind: 'outcome', outcome: failed, ran: true, node: 'n1', attempt: 1 }, ctx({ retries: 2 })))).toBe(
      'the failed run said twice',
    );
    // the second run's start was not heard: its end counts it, and its failure waits twice as long
    const wait2 = next(applyIntent(wait, { kind: 'outcome', outcome: failed, ran: true, node: 'n2', attempt: 2 }, ctx({ retries: 2 })));
    expect(wait2).toMatchObject({ attempts: 2, retryAt: new Date(T0.getTime() + 2000).toISOString() });
    const run3 = next(applyIntent(wait2, { kind: 'started', node: 'n1', attempt: 3 }, ctx()));
    const dead = next(applyIntent(run3, { kind: 'outcome', outcome: failed, ran: true, node: 'n1', attempt: 3 }, ctx({ retries: 2 })));
    expect(dead).toMatchObject({ status: 'ERROR', attempts: 3, deadLetter: 'listed' });
    expect(dead.history?.map((h) => h.attempt)).toEqual([1, 2]);
  });
  it('ends at once what the platform ended (ran: false), retries or not', () => {
    const c = running();
    expect(next(applyIntent(c, { kind: 'outcome', outcome: failed, ran: false }, ctx({ retries: 3 })))).toMatchObject({ status: 'ERROR' });
  });
  it('keeps the outcome`s own fields only, whatever else the object carried (in-process writes are not parsed)', () => {
    const carried = { ...done, logs: 'hi', durationMs: 3, node: 'n9', ran: true, secret: 'x' } as CallOutcome;
    const ended = next(applyIntent(running(), { kind: 'outcome', outcome: carried, ran: true, node: 'n1', attempt: 1 }, ctx()));
    expect(ended).toMatchObject({ status: 'DONE', result: '42', logs: 'hi', durationMs: 3, node: 'n1' });
    expect(ended).not.toHaveProperty('ran');
    expect(ended).not.toHaveProperty('secret');
  });

  it('keeps a web answer`s status, headers and size, not its body', () => {
    const c = running();
    const web: CallOutcome = { ...done, response: { status: 201, headers: { a: 'b' }, body: Buffer.from('hello').toString('base64') } };
    expect(next(applyIntent(c, { kind: 'outcome', outcome: web, ran: true, node: 'n1', attempt: 1 }, ctx())).response).toEqual({
      status: 201,
      headers: { a: 'b' },
      bytes: 5,
    });
  });
  it('keeps that a web answer was streamed, with its whole size, not its first KiB', () => {
    const c = running();
    const first = Buffer.from('x'.repeat(1024)).toString('base64');
    const web: CallOutcome = { ...done, response: { status: 200, headers: {}, body: first, bytes: 5000, streamed: true } };
    expect(next(applyIntent(c, { kind: 'outcome', outcome: web, ran: true, node: 'n1', attempt: 1 }, ctx())).response).toEqual({
      status: 200,
      headers: {},
      bytes: 5000,
      streamed: true,
    });
  });
});

describe('nodeLost', () => {
  it('sends a run lost with its node back to PENDING, and ends it after MAX_NODE_LOSSES or for retry=false', () => {
    let c = running();
    c = next(applyIntent(c, { kind: 'nodeLost', node: 'n1', life: 'L1', why: 'gone' }, ctx()));
    expect(c).toMatchObject({ status: 'PENDING', attempts: 1 });
    expect(c.node).toBeUndefined();
    for (let i = 2; i <= MAX_NODE_LOSSES; i++) {
      c = next(applyIntent(c, { kind: 'started', node: 'n1', life: `L${i}` }, ctx()));
      c = next(applyIntent(c, { kind: 'nodeLost', node: 'n1', life: `L${i}`, why: 'gone' }, ctx()));
    }
    expect(c).toMatchObject({ status: 'ERROR', error: `gone; gave up after ${MAX_NODE_LOSSES} attempts` });
    const once = next(applyIntent(running(), { kind: 'nodeLost', node: 'n1', why: 'node n1 lost' }, ctx({ retry: false })));
    expect(once).toMatchObject({
      status: 'ERROR',
      error: 'node n1 lost while running the call; not retried (the function has retry=false)',
    });
  });
  it('leaves alone a call that was not running, runs on another node, or on another life of it', () => {
    expect(refused(applyIntent(pending(), { kind: 'nodeLost', node: 'n1', why: 'x' }, ctx()))).toMatch(/not running/);
    expect(refused(applyIntent(running(), { kind: 'nodeLost', node: 'n2', why: 'x' }, ctx()))).toMatch(/runs on node n1/);
    expect(refused(applyIntent(running(), { kind: 'nodeLost', node: 'n1', life: 'L9', why: 'x' }, ctx()))).toMatch(/another life/);
  });
  it('takes a lost run`s late outcome while the call waits to run again (the run did end)', () => {
    const c = next(applyIntent(running(), { kind: 'nodeLost', node: 'n1', life: 'L1', why: 'silent' }, ctx()));
    expect(next(applyIntent(c, { kind: 'outcome', outcome: done, ran: true, node: 'n1', attempt: 1 }, ctx()))).toMatchObject({
      status: 'DONE',
      attempts: 1,
    });
  });
});

describe('givenBack, cancel, fail', () => {
  it('gives back a start from that node only, without counting it', () => {
    expect(refused(applyIntent(running(), { kind: 'givenBack', node: 'n2' }, ctx()))).toMatch(/did not run it/);
    expect(next(applyIntent(running(), { kind: 'givenBack', node: 'n1' }, ctx()))).toMatchObject({ status: 'PENDING', attempts: 0 });
    expect(refused(applyIntent(pending(), { kind: 'givenBack', node: 'n1' }, ctx()))).toMatch(/did not run it/);
  });
  it('cancels and fails an open call, waiting for its retry too (it will not run again)', () => {
    const waiting = pending({ attempts: 1, retryAt: 'x', history: [] });
    const c = next(applyIntent(waiting, { kind: 'cancel' }, ctx()));
    expect(c).toMatchObject({ status: 'ERROR', error: 'cancelled by request', cancelled: true });
    expect(c.retryAt).toBeUndefined();
    expect(next(applyIntent(running(), { kind: 'fail', error: 'runtime gone' }, ctx()))).toMatchObject({
      status: 'ERROR',
      error: 'runtime gone',
    });
  });
});

describe('a run whose start was not heard', () => {
  it('counts as the next run, and a failed run already in the history is not taken again', () => {
    // Run 1 failed and waits for its retry; run 2 began and was given back (it never ran); then an outcome
    // without its attempt (a node of an earlier version) arrives for the run that followed.
    const timeout: CallOutcome = { status: 'TIMEOUT', result: '' };
    const c1 = next(
      applyIntent(running(), { kind: 'outcome', outcome: timeout, ran: true, node: 'n1', life: 'L1', attempt: 1 }, ctx({ retries: 2 })),
    );
    expect(c1).toMatchObject({ status: 'PENDING', attempts: 1 });
    const c2 = next(applyIntent(c1, { kind: 'started', node: 'n2', life: 'L2' }, ctx({ retries: 2 })));
    const c3 = next(applyIntent(c2, { kind: 'givenBack', node: 'n2' }, ctx({ retries: 2 })));
    expect(c3).toMatchObject({ status: 'PENDING', attempts: 1 });
    expect(refused(applyIntent(c3, { kind: 'outcome', outcome: timeout, ran: true, node: 'n2', attempt: 1 }, ctx({ retries: 2 })))).toBe(
      'the failed run said twice',
    );
    const c4 = next(applyIntent(c3, { kind: 'outcome', outcome: timeout, ran: true, node: 'n2' }, ctx({ retries: 2 })));
    expect(c4.attempts).toBe(2);
    expect(c4.history?.map((h) => h.attempt)).toEqual([1, 2]);
  });
});

describe('any sequence of intents', () => {
  const intent: fc.Arbitrary<CallIntent> = fc.oneof(
    fc.record({
      kind: fc.constant('started' as const),
      node: fc.constantFrom('n1', 'n2'),
      life: fc.constantFrom('a', 'b'),
      attempt: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
    }),
    fc.record({
      kind: fc.constant('outcome' as const),
      outcome: fc.constantFrom(done, failed, { status: 'TIMEOUT' as const, result: '' }),
      ran: fc.boolean(),
      node: fc.constantFrom('n1', 'n2'),
      life: fc.constantFrom('a', 'b'),
      attempt: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      holder: fc.option(fc.boolean(), { nil: undefined }),
    }),
    fc.record({
      kind: fc.constant('nodeLost' as const),
      node: fc.constantFrom('n1', 'n2'),
      life: fc.constantFrom('a', 'b'),
      why: fc.constant('lost'),
    }),
    fc.record({ kind: fc.constant('givenBack' as const), node: fc.constantFrom('n1', 'n2') }),
    fc.constant({ kind: 'cancel' as const }),
    fc.record({ kind: fc.constant('fail' as const), error: fc.constant('x') }),
  );

  it('never changes a final call, never takes attempts back but for a start given back, and keeps history in order', () => {
    fc.assert(
      fc.property(fc.array(intent, { maxLength: 25 }), fc.boolean(), fc.integer({ min: 0, max: 3 }), (intents, retry, retries) => {
        let c = pending();
        for (const i of intents) {
          const v = applyIntent(c, i, ctx({ retry, retries }));
          if (!v.changed) continue;
          expect(['DONE', 'ERROR', 'TIMEOUT']).not.toContain(c.status);
          if (i.kind !== 'givenBack') expect(v.next.attempts).toBeGreaterThanOrEqual(c.attempts);
          else expect(v.next.attempts).toBe(c.attempts - 1);
          const h = v.next.history ?? [];
          for (let k = 1; k < h.length; k++) expect(h[k]!.attempt).toBeGreaterThan(h[k - 1]!.attempt);
          expect(h.length).toBeLessThanOrEqual(retries);
          if (v.next.status === 'RUNNING') expect(v.next.node).toBeDefined();
          if (v.next.status !== 'PENDING') expect(v.next.retryAt).toBeUndefined();
          c = v.next;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
