// The API's side of the node links. The broker owns the node table: who registered (and with which
// `life`), heartbeats both ways, death after HEARTBEAT_LIVENESS silent intervals, which calls each node
// holds, and which function definitions each node has been sent. Others read the table through
// NodeRegistry and hear about it through typed events; nobody else changes it.
//
// A node's word about a call (protocol/broker.ts: `started`, `outcome`) is passed on as an event for the
// API to record through the call's table (db/call-life.ts); the broker records nothing itself. It takes such
// word only from a node registered in that life: any other sender is asked to register again (it says again,
// after its register, what it has not been told was recorded). Whether the node holds the call goes with
// the word (`holder`): the call's table takes a node's outcome of a call it does not hold only where the
// record says that very node and life run it.
import { Router } from 'zeromq';
import { errText, type Logger } from '../common/log.js';
import { logFailedHandshakes, serverOptions, startZap, type CurveServer } from '../common/curve.js';
import { SendQueue } from '../common/zmq.js';
import type { CallOutcome, FunctionMeta, Runtime } from '../common/model.js';
import { decode, encode } from '../protocol/codec.js';
import type { HttpRequest } from '../protocol/loader.js';
import {
  BROKER_PROTOCOL,
  HEARTBEAT_LIVENESS,
  HEARTBEAT_MS,
  ToApiSchema,
  type ColdStart,
  type NodeInfo,
  type NodeLoad,
  type BrokerMemory,
  type ToApi,
  type ToInstance,
} from '../protocol/broker.js';

// A function version and its runtime, as the API's MetaCache holds them. The object's identity matters:
// the broker sends a node each definition object once, so a new object (cache cleared, TTL passed with a
// change) is sent again.
export interface Definition {
  readonly fn: FunctionMeta;
  readonly runtime: Runtime;
}

export interface QueuedCall {
  callNum: number;
  funcName: string;
  params: unknown;
  def: Definition;
  redundant?: boolean;
  http?: HttpRequest; // a call through the function's web path
  attempt?: number; // which run of the call this will be (unset: the first)
}

// What anyone outside the broker may read of a node.
export interface NodeView {
  readonly info: NodeInfo;
  readonly load: NodeLoad;
  readonly state: 'alive' | 'dead';
  readonly inflight: ReadonlyMap<number, QueuedCall | null>; // null: adopted from a node's report after an API restart
  readonly lastSeen: number;
  readonly joinedAt: number;
  readonly full?: boolean; // it gave a call back for want of room: no more until its next heartbeat
}

// A node's capacity follows its heartbeats (its pools can be resized while it runs).
export const capacityOf = (n: NodeView): number => n.load.capacity ?? n.info.capacity;

// The listening half of a typed event emitter: what a subscriber is given, so it can only listen.
export interface Listen<E extends Record<keyof E, unknown[]>> {
  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): unknown;
}

// A typed emitter, small enough to read: listeners run in the order they subscribed, synchronously.
export class Emitter<E extends Record<keyof E, unknown[]>> implements Listen<E> {
  private readonly listeners: { [K in keyof E]?: ((...args: E[K]) => void)[] } = {};

  on<K extends keyof E & string>(event: K, listener: (...args: E[K]) => void): this {
    (this.listeners[event] ??= []).push(listener);
    return this;
  }

  emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    for (const l of this.listeners[event] ?? []) l(...args);
  }
}

// How messages reach nodes and come back from them. The real one is a ZMQ ROUTER (ZmqTransport); tests
// give the broker a fake.
export interface NodeTransport {
  // Starts listening; every message from a node is passed with the node's routing id: as the frames it
  // came in (they are checked here), or as a message a node in this process handed over.
  open(onFrames: (nodeId: string, frames: Buffer[]) => void, onMessage?: (nodeId: string, m: ToApi) => void): Promise<void>;
  // Resolves once the message is handed to the link; rejects when it cannot be (no such peer: the
  // ROUTER is mandatory), and then it never left.
  send(nodeId: string, m: ToInstance): Promise<void>;
  close(): void;
}

export interface BrokerEvents {
  room: []; // a node may have room it did not have: it joined, a call ended or was given back, a heartbeat
  adopted: [a: { node: string; calls: number[] }]; // a node reports holding calls: they must not be dispatched again
  started: [s: { callNum: number; node: string; life: string; attempt: number }]; // a run of it began on the node
  // It ended on the node (not recorded yet): `holder`, the node held it when it said so.
  outcome: [o: NodeOutcome];
  nodeLost: [l: { node: string; life: string; calls: number[]; why: string }]; // calls it held, gone with that life
  givenBack: [g: { node: string; calls: number[] }]; // calls a draining node will not run: they never started
  stream: [p: StreamPiece]; // a piece of a call's streamed web answer, from the node that holds it
}

// A streamed answer's head or chunk (protocol/broker.ts), for the web caller who waits on the call.
export type StreamPiece = Extract<ToApi, { type: 'head' | 'chunk' }>;

export interface NodeOutcome {
  callNum: number;
  node: string;
  life: string;
  outcome: CallOutcome;
  ran: boolean;
  attempt?: number;
  holder: boolean;
  start?: ColdStart; // the run began with a container start
}

// The node table, read-only.
export interface NodeRegistry {
  list(): NodeView[];
  get(id: string): NodeView | undefined;
  alive(): NodeView[];
  capacity(): number; // calls the alive nodes take at once, all together
}

// Messages anyone may send a node; calls go only through the scheduler.
export type ControlMessage = Extract<ToInstance, { type: 'configure' | 'preload' | 'cancel' | 'keepWarm' | 'build' }>;
export interface NodeControl {
  tell(nodeId: string, m: ControlMessage): void;
}

// Messages a node sends after registering, each with the life it registered with (protocol/broker.ts).
type NodeMessage = Exclude<ToApi, { type: 'register' }>;

export interface BrokerOptions {
  transport: NodeTransport;
  log: Logger;
  // Several APIs on one store (api/leases.ts): a node links to each of them, so a node's heartbeat lists
  // calls other APIs sent it too, and its word on them is that of their holder.
  shared?: () => boolean;
}

interface NodeState extends NodeView {
  info: NodeInfo;
  load: NodeLoad;
  state: 'alive' | 'dead';
  inflight: Map<number, QueuedCall | null>;
  lastSeen: number;
  joinedAt: number;
  full?: boolean;
  sentAt: Map<number, number>; // when each in-flight call was handed to the node
  defs: WeakSet<Definition>; // definitions this life of the node has been sent
}

export class Broker implements NodeRegistry, NodeControl {
  readonly events = new Emitter<BrokerEvents>();
  private readonly table = new Map<string, NodeState>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: BrokerOptions) {}

  async start(): Promise<void> {
    await this.o.transport.open(
      (nodeId, frames) => this.receive(nodeId, frames),
      (nodeId, m) => this.take(nodeId, m),
    );
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
  }

  stop(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.o.transport.close();
  }

  // NodeRegistry

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
    let c = 0;
    for (const n of this.table.values()) if (n.state === 'alive') c += capacityOf(n);
    return c;
  }

  // The scheduler's side (NodeLinks in dispatcher.ts)

  nodes(): Iterable<NodeView> {
    return this.table.values();
  }

  // The node a call was handed to and has not finished, if any.
  holder(callNum: number): string | undefined {
    for (const n of this.table.values()) if (n.inflight.has(callNum)) return n.info.id;
    // Several APIs: another may have sent it; the node that lists it holds it.
    if (this.o.shared?.())
      for (const n of this.table.values()) if (n.state === 'alive' && n.load.running.includes(callNum)) return n.info.id;
    return undefined;
  }

  holds(callNum: number): boolean {
    for (const n of this.table.values()) if (n.inflight.has(callNum)) return true;
    return false;
  }

  // An alive node listed the call in its last heartbeat (whichever API sent it there).
  reported(callNum: number): boolean {
    for (const n of this.table.values()) if (n.state === 'alive' && n.load.running.includes(callNum)) return true;
    return false;
  }

  // The call's outcome from this node is recorded (or refused as said before): the node forgets it.
  ack(nodeId: string, callNum: number): void {
    this.send(nodeId, { type: 'recorded', callNum });
  }

  invoke(nodeId: string, call: QueuedCall): Promise<void> {
    const n = this.table.get(nodeId);
    if (!n || n.state !== 'alive') return Promise.reject(new Error(`node ${nodeId} is not alive`));
    n.inflight.set(call.callNum, call);
    n.sentAt.set(call.callNum, Date.now());
    const first = !n.defs.has(call.def);
    if (first) n.defs.add(call.def);
    const { fn, runtime } = call.def;
    const m: ToInstance = {
      type: 'invoke',
      call: {
        callNum: call.callNum,
        params: call.params,
        redundant: call.redundant,
        http: call.http,
        attempt: call.attempt,
        ...(call.http ? { stream: true } : {}), // its web caller waits on it: a streamed answer comes as it goes
      },
      fn: { name: fn.functionName, version: fn.version },
      def: first ? { fn, runtime } : undefined,
    };
    return this.o.transport.send(nodeId, m).catch((e: unknown) => {
      // Only a call still counted on this node is taken back; one the node's loss already handed to the
      // retry rule is not the scheduler's to requeue.
      if (this.closed || n.inflight.get(call.callNum) !== call) return;
      n.inflight.delete(call.callNum);
      n.sentAt.delete(call.callNum);
      if (first) n.defs.delete(call.def);
      this.o.log.warn({ node: nodeId, callNum: call.callNum, err: errText(e) }, 'could not send call to node: call requeued, node lost');
      if (n.state === 'alive' && this.table.get(nodeId) === n) this.lose(n, `send failed: ${errText(e)}`);
      throw e;
    });
  }

  // NodeControl

  tell(nodeId: string, m: ControlMessage): void {
    this.send(nodeId, m);
  }

  private send(nodeId: string, m: ToInstance): void {
    this.o.transport.send(nodeId, m).catch((e: unknown) => {
      if (!this.closed) this.o.log.warn({ node: nodeId, type: m.type, err: errText(e) }, 'could not reach node');
    });
  }

  private tick(): void {
    const now = Date.now();
    for (const n of this.table.values()) {
      if (n.state !== 'alive') continue;
      if (now - n.lastSeen > HEARTBEAT_MS * HEARTBEAT_LIVENESS) {
        this.lose(n, 'fell silent');
        continue;
      }
      this.send(n.info.id, { type: 'heartbeat' });
    }
  }

  // The node's life is over: the calls it held go to the retry rule (the call's table says what follows).
  private lose(n: NodeState, why: string): void {
    n.state = 'dead';
    const calls = [...n.inflight.keys()];
    n.inflight.clear();
    n.sentAt.clear();
    this.o.log.warn({ node: n.info.id, why, calls: calls.length }, 'node lost');
    if (calls.length > 0) this.events.emit('nodeLost', { node: n.info.id, life: n.info.life, calls, why });
  }

  private receive(nodeId: string, frames: Buffer[]): void {
    let m: ToApi;
    try {
      m = decode(ToApiSchema, frames).msg;
    } catch (e) {
      this.o.log.warn({ node: nodeId, err: errText(e) }, 'bad message from node');
      return;
    }
    this.take(nodeId, m);
  }

  private take(nodeId: string, m: ToApi): void {
    try {
      this.handle(nodeId, m);
    } catch (e) {
      this.o.log.error({ node: nodeId, type: m.type, err: errText(e) }, 'node message failed');
    }
  }

  private handle(nodeId: string, m: ToApi): void {
    if (m.type === 'register') return this.register(nodeId, m.node, m.load);
    const n = this.table.get(nodeId);
    if (!n || n.state !== 'alive' || (m.life !== undefined && m.life !== n.info.life)) return this.stranger(nodeId, m);
    n.lastSeen = Date.now();
    switch (m.type) {
      case 'heartbeat':
        n.load = m.load;
        n.full = false;
        this.reconcile(n, m.load.running);
        this.events.emit('room');
        break;
      case 'started':
        if (!n.inflight.has(m.callNum)) {
          this.o.log.warn({ node: nodeId, callNum: m.callNum }, 'start of a call the node does not hold: dropped');
          break;
        }
        this.events.emit('started', { callNum: m.callNum, node: nodeId, life: n.info.life, attempt: m.attempt });
        break;
      case 'outcome': {
        const sent = n.inflight.delete(m.callNum);
        const holder = sent || (this.o.shared?.() === true && n.load.running.includes(m.callNum));
        n.sentAt.delete(m.callNum);
        const { callNum, outcome, ran, attempt, start } = m;
        this.events.emit('outcome', {
          callNum,
          node: nodeId,
          life: n.info.life,
          outcome,
          ran,
          ...(attempt ? { attempt } : {}),
          ...(start ? { start } : {}),
          holder,
        });
        if (sent) this.events.emit('room');
        break;
      }
      case 'head':
      case 'chunk':
        if (n.inflight.has(m.callNum)) this.events.emit('stream', m);
        break;
      case 'giveBack': {
        const calls = m.calls.filter((c) => n.inflight.delete(c));
        for (const c of calls) n.sentAt.delete(c);
        if (calls.length < m.calls.length)
          this.o.log.warn({ node: nodeId, calls: m.calls.length - calls.length }, 'calls given back that the node does not hold: dropped');
        if (m.full) n.full = true; // it has no room for more until its next heartbeat says so
        if (calls.length > 0) this.events.emit('givenBack', { node: nodeId, calls });
        this.events.emit('room');
        break;
      }
      case 'bye':
        this.lose(n, 'left');
        this.table.delete(nodeId);
        break;
    }
  }

  // A message from a node that is not registered in this life (we restarted, declared it lost, or it comes
  // from another life than the one alive here): it must register again, and then says again what we have
  // not told it we recorded. Nothing it says now is taken.
  private stranger(nodeId: string, m: NodeMessage): void {
    if (m.type !== 'bye') this.send(nodeId, { type: 'reregister' });
  }

  private register(nodeId: string, info: NodeInfo, load: NodeLoad): void {
    if (info.id !== nodeId) {
      this.o.log.warn({ node: nodeId, claimed: info.id }, 'node registered under another id; ignored');
      return;
    }
    if (info.protocol !== BROKER_PROTOCOL) {
      const why = `this API speaks broker protocol ${BROKER_PROTOCOL} and the node ${info.protocol}: run the same zfaas version on both`;
      this.o.log.warn({ node: nodeId, protocol: info.protocol, version: info.version }, 'node of another protocol version refused');
      this.send(nodeId, { type: 'refused', why });
      return;
    }
    const now = Date.now();
    let n = this.table.get(nodeId);
    const wasAlive = n?.state === 'alive';
    if (!n) {
      n = {
        info,
        load,
        state: 'alive',
        inflight: new Map(),
        sentAt: new Map(),
        lastSeen: now,
        joinedAt: now,
        defs: new WeakSet(),
      };
      this.table.set(nodeId, n);
    } else if (n.info.life !== info.life) {
      if (wasAlive) {
        // It restarted before we noticed: what its last life held is lost with it (calls the new life
        // already lists were sent to it and stay).
        const running = new Set(load.running);
        const lost = [...n.inflight.keys()].filter((c) => !running.has(c));
        for (const c of lost) {
          n.inflight.delete(c);
          n.sentAt.delete(c);
        }
        this.o.log.warn({ node: nodeId, calls: lost.length }, 'node came back with a new life');
        if (lost.length > 0) this.events.emit('nodeLost', { node: nodeId, life: n.info.life, calls: lost, why: 'restarted' });
      }
      n.defs = new WeakSet();
      n.joinedAt = now;
    } else if (!wasAlive) {
      // The same process, declared lost while merely silent: it still holds the definitions it was sent.
      n.joinedAt = now;
    }
    n.info = info;
    n.load = load;
    n.lastSeen = now;
    n.state = 'alive';
    // Calls the node holds that we did not give this life (we restarted, or declared it lost while it was
    // merely silent): they count against its capacity and are not dispatched again.
    const adopted: number[] = [];
    for (const c of load.running) {
      if (!n.inflight.has(c) && !this.holds(c)) {
        n.inflight.set(c, null);
        n.sentAt.set(c, now);
        adopted.push(c);
      }
    }
    this.reconcile(n, load.running);
    this.send(nodeId, { type: 'welcome', heartbeatMs: HEARTBEAT_MS });
    if (!wasAlive) this.o.log.info({ node: nodeId, capacity: info.capacity, policy: info.policy, life: info.life }, 'node joined');
    if (adopted.length > 0) this.events.emit('adopted', { node: nodeId, calls: adopted });
    this.events.emit('room');
  }

  // What the node reports holding, against what we think it holds: calls we handed it that it does not
  // list, once they had time to arrive (two heartbeats), were lost on the way and go to the retry rule.
  private reconcile(n: NodeState, running: number[]): void {
    const held = new Set(running);
    const now = Date.now();
    const lost: number[] = [];
    for (const [c, given] of n.inflight) {
      if (held.has(c)) continue;
      // A call adopted from the node's report and no longer listed: its outcome was recorded elsewhere
      // (through another API), not lost.
      if (given === null) {
        n.inflight.delete(c);
        n.sentAt.delete(c);
      } else if (now - (n.sentAt.get(c) ?? now) > 2 * HEARTBEAT_MS) lost.push(c);
    }
    if (lost.length === 0) return;
    for (const c of lost) {
      n.inflight.delete(c);
      n.sentAt.delete(c);
    }
    this.o.log.warn({ node: n.info.id, calls: lost.length }, 'node no longer holds calls it was given');
    this.events.emit('nodeLost', { node: n.info.id, life: n.info.life, calls: lost, why: 'no longer holds the call' });
  }
}

export interface ZmqTransportOptions {
  bind: string;
  alsoBind?: string[]; // more endpoints to bind
  memory?: BrokerMemory; // a node in this process (zfaas up) is reached through it instead of a socket
  curve?: CurveServer; // with keys: CURVE on the node links, only known instance keys accepted
  log: Logger;
}

// The real node links: a ROUTER each instance's DEALER connects to, its routing id being the node id.
// `mandatory` makes a send to a node that is not connected fail (EHOSTUNREACH) instead of vanishing.
export class ZmqTransport implements NodeTransport {
  private readonly socket: Router;
  private readonly out: SendQueue;
  private closed = false;

  constructor(private readonly o: ZmqTransportOptions) {
    this.socket = new Router({ mandatory: true, handover: true, ...serverOptions(o.curve) });
    this.out = new SendQueue(this.socket);
  }

  async open(onFrames: (nodeId: string, frames: Buffer[]) => void, onMessage?: (nodeId: string, m: ToApi) => void): Promise<void> {
    if (this.o.curve) {
      await startZap(this.o.curve.allowed, this.o.log);
      logFailedHandshakes(this.socket, this.o.log, 'node link');
    }
    await this.socket.bind(this.o.bind);
    for (const b of this.o.alsoBind ?? []) await this.socket.bind(b);
    if (this.o.memory && onMessage) this.o.memory.listen(onMessage);
    void this.loop(onFrames);
  }

  send(nodeId: string, m: ToInstance): Promise<void> {
    if (this.o.memory?.has(nodeId)) return this.o.memory.toNode(nodeId, m);
    return this.out.send([Buffer.from(nodeId), ...encode(m)]);
  }

  close(): void {
    this.closed = true;
    this.o.memory?.unlisten();
    this.socket.close();
  }

  private async loop(onMessage: (nodeId: string, frames: Buffer[]) => void): Promise<void> {
    try {
      for await (const frames of this.socket) {
        const [id, ...rest] = frames as Buffer[];
        if (id) onMessage(id.toString(), rest);
      }
    } catch (e) {
      if (!this.closed) this.o.log.error({ err: errText(e) }, 'broker socket failed');
    }
  }
}
