// The runner with a fake DB service: it consumes a trigger only while it holds its lease, stops when the
// lease goes to another API or the trigger is deleted, and shows a missing secret in the trigger's stats
// instead of consuming without the password.
import { pino } from 'pino';
import { expect, it } from 'vitest';
import type { Trigger, TriggerStats } from '../../protocol/db.js';
import { CallEnds } from './delivery.js';
import { EventEmitter } from 'node:events';
import type { CallEvents } from '../calls.js';
import { TriggerRunner } from './runner.js';
import type { SourceSpec } from './source.js';

const log = pino({ level: 'silent' });
const trigger = (more: Partial<Trigger> = {}): Trigger => ({
  id: 'ab12',
  funcName: 'fn',
  type: 'redis',
  url: 'redis://127.0.0.1:1',
  source: 'orders',
  settings: { inFlight: 4, maxQueue: 100, maxBytes: 100, deadLetter: 'list', dedupWindowS: 3600 },
  paused: false,
  createdAt: new Date().toISOString(),
  ...more,
});

function fakeDb(t: Trigger | null, o: { held?: () => boolean; missing?: string[] } = {}) {
  const leases: { stats?: TriggerStats }[] = [];
  const db = {
    request: async (msgType: string, content: unknown): Promise<never> => {
      if (msgType === 'listTriggers') return (t ? [t] : []) as never;
      if (msgType === 'leaseTrigger') {
        leases.push(content as { stats?: TriggerStats });
        const held = o.held ? o.held() : true;
        return { trigger: t, held } as never;
      }
      throw new Error(`unexpected ${msgType}`);
    },
    requestWithBlobs: async (): Promise<never> =>
      ({ data: { secrets: [], missing: o.missing ?? [] }, blobs: [Buffer.from('pw')] }) as never,
  };
  return { db, leases };
}

function runnerWith(db: ReturnType<typeof fakeDb>['db']) {
  const started: SourceSpec[] = [];
  const closed: string[] = [];
  const ends = new CallEnds({ events: new EventEmitter<CallEvents>(), getCall: async () => null });
  const runner = new TriggerRunner({
    db: db as never,
    log,
    invoke: async () => {
      throw new Error('no call expected');
    },
    ends,
    queueLength: () => 0,
    factory: async () => (spec) => {
      started.push(spec);
      return {
        start: async () => undefined,
        setPaused: () => undefined,
        settled: () => undefined,
        lag: async () => 0,
        close: async () => void closed.push(spec.trigger.id),
      };
    },
  });
  return { runner, started, closed, ends };
}

it('consumes a trigger only while it holds the lease, with the password of its secret', async () => {
  let held = true;
  const t = trigger({ auth: { secret: 'pw' } });
  const { db } = fakeDb(t, { held: () => held });
  const { runner, started, closed, ends } = runnerWith(db);
  await runner.sync();
  expect(runner.held()).toEqual(['ab12']);
  expect(started[0]!.password).toBe('pw');
  held = false; // another API took it
  await runner.sync();
  expect(runner.held()).toEqual([]);
  expect(closed).toEqual(['ab12']);
  await runner.stop();
  ends.stop();
});

it('shows a missing secret in the stats and consumes nothing', async () => {
  const { db, leases } = fakeDb(trigger({ auth: { secret: 'gone' } }), { missing: ['gone'] });
  const { runner, started, ends } = runnerWith(db);
  await runner.sync();
  await runner.sync();
  expect(started).toEqual([]);
  expect(leases.at(-1)!.stats).toMatchObject({
    connected: false,
    lastError: expect.stringMatching(/secret gone of namespace default is missing/),
  });
  await runner.stop();
  ends.stop();
});
