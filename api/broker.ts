// The API's side of the node links: a ROUTER every instance connects to. It keeps the node table fresh
// (register, heartbeats both ways, death after HEARTBEAT_LIVENESS silent intervals), serves archives to
// nodes from the DB service, and turns `result` messages into finished calls.
import { Router } from 'zeromq';
import { errText, type Logger } from '../common/log.js';
import { logFailedHandshakes, serverOptions, startZap, type CurveServer } from '../common/curve.js';
import { SendQueue } from '../common/zmq.js';
import type { CallOutcome } from '../common/model.js';
import type { DbClient } from '../db/client.js';
import { decode, encode } from '../protocol/codec.js';
import { HEARTBEAT_LIVENESS, HEARTBEAT_MS, ToApiSchema, type ToApi, type ToInstance } from '../protocol/broker.js';
import { Scheduler, type NodeState, type QueuedCall } from './scheduler.js';

export interface BrokerOptions {
  bind: string;
  curve?: CurveServer; // with keys: CURVE on the node links, only known instance keys accepted
  alsoBind?: string[]; // e.g. an inproc:// endpoint for an instance in the same process (zfaas up)
  db: DbClient;
  log: Logger;
  onResult(callNum: number, outcome: CallOutcome, nodeId: string, recorded: boolean): void;
  onNodeLost(nodeId: string, callNums: number[]): void;
}

export class Broker {
  private readonly socket: Router;
  private readonly out: SendQueue;
  readonly scheduler: Scheduler;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: BrokerOptions) {
    this.socket = new Router({ mandatory: true, handover: true, ...serverOptions(o.curve) });
    this.out = new SendQueue(this.socket);
    this.scheduler = new Scheduler((nodeId, call) => {
      this.send(nodeId, {
        type: 'invoke',
        call: { callNum: call.callNum, funcName: call.funcName, params: call.params, redundant: call.redundant },
        fn: call.fn,
        runtime: call.runtime,
      });
      return true;
    });
  }

  async start(): Promise<void> {
    if (this.o.curve) {
      await startZap(this.o.curve.allowed, this.o.log);
      logFailedHandshakes(this.socket, this.o.log, 'node link');
    }
    await this.socket.bind(this.o.bind);
    for (const b of this.o.alsoBind ?? []) await this.socket.bind(b);
    void this.loop();
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
  }

  stop(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.socket.close();
  }

  send(nodeId: string, m: ToInstance, ...blobs: Buffer[]): void {
    this.out.send([Buffer.from(nodeId), ...encode(m, ...blobs)]).catch((e) => {
      if (!this.closed) this.o.log.warn({ node: nodeId, type: m.type, err: errText(e) }, 'could not reach node');
    });
  }

  private tick(): void {
    const now = Date.now();
    for (const n of this.scheduler.nodes.values()) {
      if (n.state !== 'alive') continue;
      if (now - n.lastSeen > HEARTBEAT_MS * HEARTBEAT_LIVENESS) {
        this.lose(n.info.id, 'fell silent');
        continue;
      }
      this.send(n.info.id, { type: 'heartbeat' });
    }
  }

  private lose(nodeId: string, why: string): void {
    const calls = this.scheduler.drop(nodeId);
    this.o.log.warn({ node: nodeId, why, calls: calls.length }, 'node lost');
    this.o.onNodeLost(nodeId, calls);
    this.scheduler.pump();
  }

  private async loop(): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const [id, ...rest] = frames as Buffer[];
        if (!id) continue;
        const nodeId = id.toString();
        let decoded;
        try {
          decoded = decode(ToApiSchema, rest);
        } catch (e) {
          this.o.log.warn({ node: nodeId, err: errText(e) }, 'bad message from node');
          continue;
        }
        this.handle(nodeId, decoded.msg);
      }
    } catch (e) {
      if (!this.closed) this.o.log.error({ err: errText(e) }, 'broker socket failed');
    }
  }

  private handle(nodeId: string, m: ToApi): void {
    const node = this.scheduler.nodes.get(nodeId);
    if (m.type === 'register') {
      if (m.node.id !== nodeId) {
        this.o.log.warn({ node: nodeId, claimed: m.node.id }, 'node registered under another id; ignored');
        return;
      }
      const inflight = node?.state === 'alive' ? node.inflight : new Map<number, QueuedCall | null>();
      const sentAt = node?.state === 'alive' ? node.sentAt : new Map<number, number>();
      // Calls the node still holds (e.g. we restarted): count them against its capacity, do not redispatch.
      for (const c of m.load.running) {
        if (!inflight.has(c) && !this.scheduler.knows(c)) {
          inflight.set(c, null);
          sentAt.set(c, Date.now());
        }
      }
      const wasAlive = node?.state === 'alive';
      const state = { info: m.node, load: m.load, inflight, sentAt, lastSeen: Date.now(), joinedAt: Date.now(), state: 'alive' as const };
      this.scheduler.nodes.set(nodeId, state);
      // A node that restarted before we noticed it was gone no longer holds what its last life held.
      this.reconcile(state, m.load.running);
      this.send(nodeId, { type: 'welcome', heartbeatMs: HEARTBEAT_MS });
      if (!wasAlive) this.o.log.info({ node: nodeId, capacity: m.node.capacity, policy: m.node.policy }, 'node joined');
      this.scheduler.pump();
      return;
    }
    if (!node || node.state !== 'alive') {
      // We do not know this node (we restarted, or declared it dead): it must register again.
      if (m.type !== 'bye') this.send(nodeId, { type: 'reregister' });
      if (m.type === 'result') this.o.onResult(m.callNum, m.outcome, nodeId, m.recorded);
      return;
    }
    node.lastSeen = Date.now();
    switch (m.type) {
      case 'heartbeat':
        node.load = m.load;
        this.reconcile(node, m.load.running);
        break;
      case 'result':
        this.scheduler.release(nodeId, m.callNum);
        this.o.onResult(m.callNum, m.outcome, nodeId, m.recorded);
        break;
      case 'fetchArchive':
        void this.serveArchive(nodeId, m.digest);
        break;
      case 'bye':
        this.lose(nodeId, 'left');
        this.scheduler.nodes.delete(nodeId);
        break;
    }
  }

  // Calls we handed to a node that it does not report holding, once they had time to arrive (two
  // heartbeats), were lost with a previous life of that node: they go back through the retry rule.
  private reconcile(node: NodeState, running: number[]): void {
    const held = new Set(running);
    const now = Date.now();
    const lost: number[] = [];
    for (const c of node.inflight.keys()) {
      if (!held.has(c) && now - (node.sentAt.get(c) ?? now) > 2 * HEARTBEAT_MS) lost.push(c);
    }
    if (lost.length === 0) return;
    for (const c of lost) this.scheduler.forget(node.info.id, c);
    this.o.log.warn({ node: node.info.id, calls: lost.length }, 'node no longer holds calls it was given');
    this.o.onNodeLost(node.info.id, lost);
  }

  private async serveArchive(nodeId: string, digest: string): Promise<void> {
    try {
      const { data, blobs } = await this.o.db.requestWithBlobs('getArchive', { digest });
      if (!data || !blobs[0]) return this.send(nodeId, { type: 'archive', digest, error: `archive ${digest} not found` });
      this.send(nodeId, { type: 'archive', digest }, blobs[0]);
    } catch (e) {
      this.send(nodeId, { type: 'archive', digest, error: errText(e) });
    }
  }
}
