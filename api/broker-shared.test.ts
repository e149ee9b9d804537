// The broker of one API among several on one store, against fake nodes (no sockets): a node links to every
// API, so its heartbeats list calls other APIs sent it. Its word on such a call is that of its holder, it is
// the node a cancel goes to, a call adopted from its report that it stops listing was recorded elsewhere
// (not lost), and a node that gave a call back for want of room gets none until its next heartbeat.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { encode } from '../protocol/codec.js';
import { BROKER_PROTOCOL, type ToApiSchema } from '../protocol/broker.js';
import { fnMeta, nodeRuntime } from '../test/helpers/objects.js';
import { Broker, type NodeOutcome, type NodeTransport, type QueuedCall } from './broker.js';
import { choose } from './dispatcher.js';

type FromNode = z.input<typeof ToApiSchema>;

class FakeTransport implements NodeTransport {
  private onMessage?: (nodeId: string, frames: Buffer[]) => void;
  async open(onMessage: (nodeId: string, frames: Buffer[]) => void): Promise<void> {
    this.onMessage = onMessage;
  }
  send(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
  from(node: string, m: FromNode): void {
    this.onMessage!(node, encode(m));
  }
}

const def = { fn: fnMeta('f'), runtime: nodeRuntime };
const queued = (callNum: number): QueuedCall => ({ callNum, funcName: 'f', params: {}, def });

async function setup(shared: boolean): Promise<{ broker: Broker; net: FakeTransport; outcomes: NodeOutcome[]; lost: number[] }> {
  const net = new FakeTransport();
  const broker = new Broker({ transport: net, log: pino({ level: 'silent' }), shared: () => shared });
  const outcomes: NodeOutcome[] = [];
  const lost: number[] = [];
  broker.events.on('outcome', (o) => outcomes.push(o));
  broker.events.on('nodeLost', (l) => lost.push(...l.calls));
  await broker.start();
  net.from('n1', { type: 'register', node: { id: 'n1', capacity: 4, policy: 'none', life: 'L1', protocol: BROKER_PROTOCOL }, load: {} });
  return { broker, net, outcomes, lost };
}

describe('Broker shared with other APIs', () => {
  it("takes a node's outcome of a call another API sent it as its holder's, and sends a cancel of it there", async () => {
    const { broker, net, outcomes } = await setup(true);
    net.from('n1', { type: 'heartbeat', load: { running: [41] }, life: 'L1' });
    expect(broker.holder(41)).toBe('n1');
    net.from('n1', { type: 'outcome', callNum: 41, outcome: { status: 'DONE', result: '1' }, ran: true, life: 'L1' });
    expect(outcomes[0]).toMatchObject({ callNum: 41, holder: true });
    broker.stop();
  });

  it('alone (LevelDB), keeps its own rule: a call it did not send is not the node’s to speak for', async () => {
    const { broker, net, outcomes } = await setup(false);
    net.from('n1', { type: 'heartbeat', load: { running: [41] }, life: 'L1' });
    expect(broker.holder(41)).toBeUndefined();
    net.from('n1', { type: 'outcome', callNum: 41, outcome: { status: 'DONE', result: '1' }, ran: true, life: 'L1' });
    expect(outcomes[0]).toMatchObject({ callNum: 41, holder: false });
    broker.stop();
  });

  it('drops, without calling it lost, a call adopted from the report that the node no longer lists', async () => {
    const net = new FakeTransport();
    const broker = new Broker({ transport: net, log: pino({ level: 'silent' }), shared: () => true });
    const lost: number[] = [];
    broker.events.on('nodeLost', (l) => lost.push(...l.calls));
    await broker.start();
    const register = { id: 'n1', capacity: 4, policy: 'none' as const, life: 'L1', protocol: BROKER_PROTOCOL };
    net.from('n1', { type: 'register', node: register, load: { running: [7] } }); // adopted: another API sent it
    expect(broker.holds(7)).toBe(true);
    net.from('n1', { type: 'heartbeat', load: { running: [] }, life: 'L1' }); // recorded through that API
    expect(broker.holds(7)).toBe(false);
    expect(lost).toEqual([]);
    broker.stop();
  });

  it('sends no call to a node that gave one back for want of room until its next heartbeat', async () => {
    const { broker, net } = await setup(true);
    await broker.invoke('n1', queued(5));
    net.from('n1', { type: 'giveBack', calls: [5], full: true, life: 'L1' });
    expect(choose(queued(6), broker.nodes())).toBeUndefined();
    net.from('n1', { type: 'heartbeat', load: { running: [] }, life: 'L1' });
    expect(choose(queued(6), broker.nodes())?.info.id).toBe('n1');
    broker.stop();
  });
});
