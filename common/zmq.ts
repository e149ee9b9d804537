// zeromq v6 allows one send in progress per socket: every send goes through this queue.
export class SendQueue {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly socket: { send(msg: Buffer[]): Promise<void> }) {}

  send(frames: Buffer[]): Promise<void> {
    const next = this.chain.then(() => this.socket.send(frames));
    // Keep the chain alive after a failed send; the caller still sees the error.
    this.chain = next.catch(() => undefined);
    return next;
  }
}
