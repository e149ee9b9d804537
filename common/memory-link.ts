// The link between the API's broker and a node that run in one process (`zfaas up`): the very frames the
// ZMQ sockets carry, handed over in memory. A ZMQ message, even over inproc://, costs a wake-up of
// libzmq's I/O thread and a dozen syscalls each way; a warm call sends four. Order is kept (each hand-over
// is a microtask, in sending order). Like the broker's mandatory ROUTER, a send to a node that is not
// attached fails instead of vanishing; like a node's DEALER, what a node sends while no API listens waits
// for one (up to a bound, then the oldest is dropped, as a full socket queue would).
export type ApiSide = (nodeId: string, frames: Buffer[]) => void;
export type NodeSide = (frames: Buffer[]) => void;

// What a node holds of the link: its sending end.
export interface MemoryPort {
  send(frames: Buffer[]): Promise<void>;
  close(): void;
}

const WAITING_MAX = 10_000;

export class MemoryLink {
  private api?: ApiSide;
  private readonly nodes = new Map<string, NodeSide>();
  private readonly waiting: Array<[string, Buffer[]]> = []; // sent by nodes while no API listened

  // The broker listens (a new listener replaces the old one, as a restarted API would) and hears what
  // nodes sent meanwhile.
  listen(onMessage: ApiSide): void {
    this.api = onMessage;
    for (const [nodeId, frames] of this.waiting.splice(0)) queueMicrotask(() => onMessage(nodeId, frames));
  }

  // The broker stops listening: nodes' sends fail until it listens again.
  unlisten(): void {
    this.api = undefined;
  }

  has(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  toNode(nodeId: string, frames: Buffer[]): Promise<void> {
    const deliver = this.nodes.get(nodeId);
    if (!deliver) return Promise.reject(new Error(`node ${nodeId} is not attached to the in-process link`));
    queueMicrotask(() => deliver(frames));
    return Promise.resolve();
  }

  // A node attaches under its id; a second attach under the same id replaces the first (a reconnect).
  attach(nodeId: string, onFrames: NodeSide): MemoryPort {
    this.nodes.set(nodeId, onFrames);
    let open = true;
    return {
      send: (frames) => {
        const api = this.api;
        if (!open) return Promise.reject(new Error('the in-process link is closed'));
        if (api) queueMicrotask(() => api(nodeId, frames));
        else if (this.waiting.push([nodeId, frames]) > WAITING_MAX) this.waiting.shift();
        return Promise.resolve();
      },
      close: () => {
        open = false;
        if (this.nodes.get(nodeId) === onFrames) this.nodes.delete(nodeId);
      },
    };
  }
}
