// The build gate in front of the scheduler, against fakes (a DB of calls with the real call table, a build
// follower released by hand): a call of a version still building waits in the API and reaches the
// scheduler (a node's slot) only once the build is ready; a call of a failed build ends at once in ERROR,
// its fault the function's, saying what failed; a cancelled call is not sent on; others pass straight on.
import { pino } from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Build } from '../common/build.js';
import { FunctionSettingsSchema, type Call, type FunctionMeta, type Runtime } from '../common/model.js';
import { applyIntent } from '../db/call-life.js';
import type { DbClient } from '../db/client.js';
import type { CallIntent, DbContent, DbMsgType, DbResults } from '../protocol/db.js';
import type { QueuedCall } from './broker.js';
import { BuildGate } from './build-gate.js';
import type { Ended } from './ended.js';
import type { MetaEntry } from './meta-cache.js';

const runtime = { name: 'rt', image: 'zfaas/node:latest', path: '/ws', dependencies: 'npm install', run: 'node index.js' } as Runtime;
const version = (build?: Build): FunctionMeta => ({
  functionName: 'f',
  runtimeName: 'rt',
  version: 2,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-12-01T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse({}),
  ...(build ? { build } : {}),
});
const building: Build = { state: 'building', startedAt: '2026-12-01T00:00:00.000Z' };
const ready: Build = { ...building, state: 'ready', finishedAt: '2026-12-01T00:00:03.000Z', node: 'n1' };
const failed: Build = {
  ...building,
  state: 'failed',
  finishedAt: '2026-12-01T00:00:03.000Z',
  error: 'dependencies step failed (exit 3): boom',
};

class FakeDb implements Pick<DbClient, 'request'> {
  readonly calls = new Map<number, Call>();

  async request<K extends DbMsgType>(msgType: K, content: DbContent<K>): Promise<DbResults[K]> {
    const c = content as { callNum: number; intent?: CallIntent };
    const call = this.calls.get(c.callNum);
    if (msgType === 'getCall') return (call ? { ...call } : null) as DbResults[K];
    if (msgType !== 'callIntent' || !c.intent) throw new Error(`unexpected ${msgType}`);
    if (!call) return { call: null, changed: false, why: 'not found' } as DbResults[K];
    const v = applyIntent(call, c.intent, { now: new Date(), settings: null });
    if (v.changed) this.calls.set(c.callNum, v.next);
    return (v.changed ? { call: v.next, changed: true } : { call, changed: false, why: v.why }) as DbResults[K];
  }

  add(callNum: number): void {
    this.calls.set(callNum, { callNum, funcName: 'f', version: 2, params: {}, status: 'PENDING', result: '', attempts: 0, createdAt: '' });
  }
}

let db: FakeDb;
let queued: QueuedCall[];
let current: FunctionMeta; // the version as the DB service has it now
let release: Array<() => void>;
let ended: Ended[];
let gate: BuildGate;

beforeEach(() => {
  db = new FakeDb();
  queued = [];
  release = [];
  ended = [];
  current = version(building);
  gate = new BuildGate({
    queue: { enqueue: (c) => void queued.push(c), knows: () => false },
    builds: { follow: () => new Promise((resolve) => release.push(() => resolve(current))) },
    meta: { get: async (): Promise<MetaEntry> => ({ fn: current, runtime }) },
    db,
    settle: (_n, e) => void ended.push(e),
    log: pino({ level: 'silent' }),
  });
});

const call = (callNum: number, fn: FunctionMeta): QueuedCall => {
  db.add(callNum);
  return { callNum, funcName: 'f', params: {}, def: { fn, runtime } };
};
const settled = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe('the build gate', () => {
  it('passes a call of a built version, or of one with nothing to build, straight to the scheduler', () => {
    gate.enqueue(call(1, version(ready)));
    gate.enqueue(call(2, version()));
    expect(queued.map((c) => c.callNum)).toEqual([1, 2]);
  });

  it('holds a call of a version still building off the nodes, then sends it with the built version', async () => {
    gate.enqueue(call(1, version(building)));
    await settled();
    expect(queued).toEqual([]);
    expect(gate.knows(1)).toBe(true); // recovery leaves it alone
    expect(gate.waiting).toBe(1);
    current = version(ready);
    release.forEach((r) => r());
    await settled();
    expect(queued.map((c) => [c.callNum, c.def.fn.build?.state])).toEqual([[1, 'ready']]);
    expect(gate.knows(1)).toBe(false);
  });

  it('ends a call of a failed build at once in ERROR, the function at fault, saying what failed', async () => {
    gate.enqueue(call(1, version(failed)));
    await settled();
    expect(queued).toEqual([]);
    const rec = db.calls.get(1)!;
    expect(rec).toMatchObject({ status: 'ERROR', fault: 'function' });
    expect(rec.error).toBe('version 2 of f cannot run: its build failed at deploy: dependencies step failed (exit 3): boom');
    expect(ended.map((e) => e.call.callNum)).toEqual([1]);
  });

  it('ends the calls that waited when the build fails', async () => {
    gate.enqueue(call(1, version(building)));
    gate.enqueue(call(2, version(building)));
    current = version(failed);
    release.forEach((r) => r());
    await settled();
    expect(queued).toEqual([]);
    expect([db.calls.get(1)!.status, db.calls.get(2)!.status]).toEqual(['ERROR', 'ERROR']);
    expect(db.calls.get(2)!.error).toMatch(/exit 3\): boom$/);
  });

  it('does not send on a call cancelled while it waited', async () => {
    gate.enqueue(call(1, version(building)));
    await db.request('callIntent', { callNum: 1, intent: { kind: 'cancel' } });
    current = version(ready);
    release.forEach((r) => r());
    await settled();
    expect(queued).toEqual([]);
    expect(gate.knows(1)).toBe(false);
  });
});
