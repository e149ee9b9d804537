// The API's side of builds at deploy, against fakes (a DB holding one version, a node table and what was
// told to each node): a build goes to the least loaded node that is not draining, waits while no node is
// there, goes to another node when its node is lost or restarts, and wakes whoever follows it (after the
// API's cache is told) once the node has ended it in the DB service.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Build } from '../common/build.js';
import { FunctionSettingsSchema, type FunctionMeta, type Runtime } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import type { NodeInfo, NodeLoad } from '../protocol/broker.js';
import type { DbContent, DbMsgType, DbResults } from '../protocol/db.js';
import type { ControlMessage, NodeControl, NodeRegistry, NodeView, QueuedCall } from './broker.js';
import { Builds } from './builds.js';

const runtime: Runtime = { name: 'rt', image: 'zfaas/node:latest', path: '/ws', dependencies: 'npm install', run: 'node index.js' };
const building: Build = { state: 'building', startedAt: '2026-12-01T00:00:00.000Z' };
const meta = (build: Build): FunctionMeta => ({
  functionName: 'f',
  runtimeName: 'rt',
  version: 1,
  digest: 'a'.repeat(64),
  size: 1,
  format: 'tar.gz',
  createdAt: '2026-12-01T00:00:00.000Z',
  settings: FunctionSettingsSchema.parse({}),
  build,
});

let version: FunctionMeta;
const db: Pick<DbClient, 'request'> = {
  async request<K extends DbMsgType>(msgType: K, _content: DbContent<K>): Promise<DbResults[K]> {
    if (msgType === 'getFunction') return version as DbResults[K];
    if (msgType === 'getRuntime') return runtime as DbResults[K];
    if (msgType === 'listFunctions') return [version] as DbResults[K];
    throw new Error(`unexpected ${msgType}`);
  },
};

interface FakeNode extends NodeView {
  info: NodeInfo;
  load: NodeLoad;
  state: 'alive' | 'dead';
  inflight: Map<number, QueuedCall | null>;
}

class FakeNodes implements NodeRegistry, NodeControl {
  readonly table = new Map<string, FakeNode>();
  readonly told: Array<[string, ControlMessage]> = [];

  add(id: string, busy = 0, draining = false): FakeNode {
    const inflight = new Map<number, QueuedCall | null>(Array.from({ length: busy }, (_, i) => [i + 1, null]));
    const n: FakeNode = {
      info: { id, capacity: 4, policy: 'none', labels: {}, images: [], version: '', protocol: 2, life: `${id}-L1` },
      load: { running: [], warm: {}, miniworkers: 2, containers: {}, stems: {}, ...(draining ? { draining } : {}) },
      state: 'alive',
      inflight,
      lastSeen: 0,
      joinedAt: 0,
    };
    this.table.set(id, n);
    return n;
  }
  list(): NodeView[] {
    return [...this.table.values()];
  }
  get(id: string): NodeView | undefined {
    return this.table.get(id);
  }
  alive(): NodeView[] {
    return this.list().filter((n) => n.state === 'alive');
  }
  capacity(): number {
    return 0;
  }
  tell(nodeId: string, m: ControlMessage): void {
    this.told.push([nodeId, m]);
  }
  builds(): string[] {
    return this.told.filter(([, m]) => m.type === 'build').map(([id]) => id);
  }
}

let nodes: FakeNodes;
let ended: FunctionMeta[];
let builds: Builds;
const look = (): Promise<void> => (builds as unknown as { tick(): Promise<void> }).tick();

beforeEach(() => {
  version = meta(building);
  nodes = new FakeNodes();
  ended = [];
  // Looked at by hand (look()), not by its timer.
  builds = new Builds({
    db,
    nodes,
    log: pino({ level: 'silent' }),
    onEnd: (fn) => void ended.push(fn),
    pollMs: 3_600_000,
    recoverAfterMs: 3_600_000,
  });
  builds.start();
});
afterEach(() => builds.stop());

describe('builds at deploy', () => {
  it('sends a build to the least loaded node that is not draining, once', async () => {
    nodes.add('busy', 3);
    nodes.add('leaving', 0, true);
    nodes.add('idle', 1);
    void builds.follow(version);
    await look();
    await look();
    expect(nodes.builds()).toEqual(['idle']);
    expect(nodes.told[0]![1]).toMatchObject({ type: 'build', fn: { functionName: 'f', version: 1 }, runtime: { name: 'rt' } });
  });

  it('waits for a node when none is there, and sends it when one joins', async () => {
    expect(builds.canBuild()).toBe(false);
    void builds.follow(version);
    await look();
    expect(nodes.builds()).toEqual([]);
    nodes.add('n1');
    await look();
    expect(nodes.builds()).toEqual(['n1']);
  });

  it('sends it to another node when its node is lost, and again when that one restarts', async () => {
    nodes.add('n1');
    void builds.follow(version);
    await look();
    nodes.table.get('n1')!.state = 'dead';
    nodes.add('n2');
    await look();
    expect(nodes.builds()).toEqual(['n1', 'n2']);
    nodes.table.get('n2')!.info.life = 'n2-L2';
    await look();
    expect(nodes.builds()).toEqual(['n1', 'n2', 'n2']);
  });

  it('wakes its followers with the ended version, after telling the API', async () => {
    nodes.add('n1');
    const woke: Array<FunctionMeta | null> = [];
    void builds.follow(version).then((fn) => woke.push(fn));
    await look();
    version = meta({ ...building, state: 'ready', finishedAt: '2026-12-01T00:00:02.000Z', node: 'n1' });
    await look();
    await Promise.resolve();
    expect(ended.map((f) => f.build?.state)).toEqual(['ready']);
    expect(woke.map((f) => f?.build?.state)).toEqual(['ready']);
    await look();
    expect(nodes.builds()).toEqual(['n1']); // followed no more
  });

  it('wakes its followers with nothing when the version was deployed anew under the same number', async () => {
    nodes.add('n1');
    const woke: Array<FunctionMeta | null> = [];
    void builds.follow(version).then((fn) => woke.push(fn));
    version = { ...meta(building), createdAt: '2026-12-02T00:00:00.000Z' };
    await look();
    await Promise.resolve();
    expect(woke).toEqual([null]);
  });
});
