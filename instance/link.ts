// The instance's side of the API link: a DEALER whose routing id is the node id. It registers, heartbeats,
// re-registers when the API asks (the API restarted) and notices an API that fell silent. With the API in
// this process (zfaas up) the same messages go through a MemoryLink instead of a socket.
import { Dealer } from 'zeromq';
import { errText, type Logger } from '../common/log.js';
import { SendQueue } from '../common/zmq.js';
import { clientOptions, type CurveClient } from '../common/curve.js';
import { decode, encode } from '../protocol/codec.js';
import {
  HEARTBEAT_LIVENESS,
  HEARTBEAT_MS,
  ToInstanceSchema,
  type BrokerMemory,
  type NodeInfo,
  type NodeLoad,
  type ToApi,
  type ToInstance,
} from '../protocol/broker.js';

export interface LinkOptions {
  broker: string;
  memory?: BrokerMemory; // the API of this process: the link goes through it, not through `broker`
  curve?: CurveClient;
  node: NodeInfo;
  log: Logger;
  load(): NodeLoad;
  onMessage(msg: ToInstance): void;
  onRegistered?(): void; // the API welcomed this node (again): what it may not have heard is said again
}

export class ApiLink {
  private out!: { send(m: ToApi): Promise<void>; close(): void };
  private timer?: NodeJS.Timeout;
  private lastHeard = Date.now();
  private stopped = false;
  private refused = false;
  connected = false;

  constructor(private readonly o: LinkOptions) {}

  start(): void {
    this.open();
    this.timer = setInterval(() => this.tick(), HEARTBEAT_MS);
  }

  // The link was closed (the node is stopping).
  get closed(): boolean {
    return this.stopped;
  }

  // Every message after the register says which life of the node sends it (protocol/broker.ts).
  send(m: ToApi): Promise<void> {
    return this.out.send(m.type === 'register' ? m : { ...m, life: this.o.node.life });
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    // Say goodbye if the API is there; a send to no peer would wait forever.
    await Promise.race([this.send({ type: 'bye' }).catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
    this.out.close();
  }

  private open(): void {
    if (this.o.memory) {
      this.out = this.o.memory.attach(this.o.node.id, (m) => this.onMessage(m));
    } else {
      const socket = new Dealer({
        routingId: this.o.node.id,
        linger: 500,
        reconnectInterval: 200,
        reconnectMaxInterval: 2000,
        ...clientOptions(this.o.curve),
      });
      const queue = new SendQueue(socket);
      this.out = { send: (m) => queue.send(encode(m)), close: () => socket.close() };
      socket.connect(this.o.broker);
      void this.loop(socket);
    }
    this.register();
  }

  private register(): void {
    this.send({ type: 'register', node: this.o.node, load: this.o.load() }).catch((e) =>
      this.o.log.warn({ err: errText(e) }, 'register not sent'),
    );
  }

  // A heartbeat now (its load changed in a way the API must hear at once).
  heartbeat(): void {
    // A heartbeat that cannot go now is replaced by the next one within a second.
    this.send({ type: 'heartbeat', load: this.o.load() }).catch(() => undefined);
  }

  private tick(): void {
    if (Date.now() - this.lastHeard > HEARTBEAT_MS * HEARTBEAT_LIVENESS) {
      if (this.connected) this.o.log.warn({ broker: this.o.broker }, 'API fell silent; reconnecting');
      this.connected = false;
      // A fresh socket drops whatever was queued for a dead peer; the new register tells the API our state.
      this.out.close();
      this.lastHeard = Date.now();
      this.open();
      return;
    }
    this.heartbeat();
  }

  private async loop(socket: Dealer): Promise<void> {
    try {
      for await (const frames of socket) this.onFrames(frames as Buffer[]);
    } catch (e) {
      if (!this.stopped && !socket.closed) this.o.log.error({ err: errText(e) }, 'API link failed');
    }
  }

  private onFrames(frames: Buffer[]): void {
    let msg;
    try {
      msg = decode(ToInstanceSchema, frames).msg;
    } catch (e) {
      this.lastHeard = Date.now();
      this.o.log.warn({ err: errText(e) }, 'bad message from API');
      return;
    }
    this.onMessage(msg);
  }

  private onMessage(msg: ToInstance): void {
    this.lastHeard = Date.now();
    if (msg.type === 'welcome') {
      if (!this.connected) this.o.log.info({ broker: this.o.broker, node: this.o.node.id }, 'registered with the API');
      this.connected = true;
      this.refused = false;
      this.o.onRegistered?.();
    } else if (msg.type === 'reregister') {
      this.register();
    } else if (msg.type === 'refused') {
      // Said once: the link keeps trying (the operator may be upgrading the API or this node).
      if (!this.refused) this.o.log.error({ broker: this.o.broker, why: msg.why }, 'the API refused this node');
      this.refused = true;
    } else if (msg.type !== 'heartbeat') {
      this.o.onMessage(msg);
    }
  }
}
