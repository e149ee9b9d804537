// The link between the API's broker and a node that run in one process (`zfaas up`): the messages
// themselves, handed over in memory. A ZMQ message, even over inproc://, costs a wake-up of libzmq's I/O
// thread and a dozen syscalls each way, and its JSON is written, read and checked again at each end; here
// the two ends are this program's own typed code, so a message is checked where it enters the process (a
// socket, a container's line) and not again. A sender hands over a message it no longer changes. Order is
// kept (each hand-over is a microtask, in sending order). Like the broker's mandatory ROUTER, a send to a
// node that is not attached fails instead of vanishing; like a node's DEALER, what a node sends while no
// API listens waits for one (up to a bound, then the oldest is dropped, as a full socket queue would).
// `check`, when given, sees each message before it is handed over and throws on one the wire would have
// changed (wire-check.ts: the test suite turns it on).
export type ApiSide<Up> = (nodeId: string, msg: Up) => void;
export type NodeSide<Down> = (msg: Down) => void;

// What a node holds of the link: its sending end.
export interface MemoryPort<Up> {
  send(msg: Up): Promise<void>;
  close(): void;
}

const WAITING_MAX = 10_000;

export interface LinkCheck<Up, Down> {
  up(msg: Up): void;
  down(msg: Down): void;
}

// Up: what nodes send the API; Down: what the API sends a node.
export class MemoryLink<Up, Down> {
  private api?: ApiSide<Up>;
  private readonly nodes = new Map<string, NodeSide<Down>>();
  private readonly waiting: Array<[string, Up]> = []; // sent by nodes while no API listened

  constructor(private readonly check?: LinkCheck<Up, Down>) {}

  // The broker listens (a new listener replaces the old one, as a restarted API would) and hears what
  // nodes sent meanwhile.
  listen(onMessage: ApiSide<Up>): void {
    this.api = onMessage;
    for (const [nodeId, msg] of this.waiting.splice(0)) queueMicrotask(() => onMessage(nodeId, msg));
  }

  // The broker stops listening: nodes' sends fail until it listens again.
  unlisten(): void {
    this.api = undefined;
  }

  has(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  toNode(nodeId: string, msg: Down): Promise<void> {
    const deliver = this.nodes.get(nodeId);
    if (!deliver) return Promise.reject(new Error(`node ${nodeId} is not attached to the in-process link`));
    this.check?.down(msg);
    queueMicrotask(() => deliver(msg));
    return Promise.resolve();
  }

  // A node attaches under its id; a second attach under the same id replaces the first (a reconnect).
  attach(nodeId: string, onMessage: NodeSide<Down>): MemoryPort<Up> {
    this.nodes.set(nodeId, onMessage);
    let open = true;
    return {
      send: (msg) => {
        const api = this.api;
        if (!open) return Promise.reject(new Error('the in-process link is closed'));
        this.check?.up(msg);
        if (api) queueMicrotask(() => api(nodeId, msg));
        else if (this.waiting.push([nodeId, msg]) > WAITING_MAX) this.waiting.shift();
        return Promise.resolve();
      },
      close: () => {
        open = false;
        if (this.nodes.get(nodeId) === onMessage) this.nodes.delete(nodeId);
      },
    };
  }
}
