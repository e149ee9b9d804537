// Streamed web answers, from the broker to the web handler that waits on each call (handlers/web.ts): the
// pieces a node sends (protocol/broker.ts `head`, `chunk`) go to the one listener of their call, as they
// come; a piece of a call nobody listens to (its caller left, or another API took it) is dropped. A
// listener is set just before the call is queued (Calls.invokeResolved's `listen`), before any I/O could
// bring a piece of it.
import type { StreamPiece } from './broker.js';

export type StreamListener = (p: StreamPiece) => void;

export class StreamHub {
  private readonly listeners = new Map<number, StreamListener>();

  // Listens to a call's pieces until the returned function is called.
  listen(callNum: number, l: StreamListener): () => void {
    this.listeners.set(callNum, l);
    return () => {
      if (this.listeners.get(callNum) === l) this.listeners.delete(callNum);
    };
  }

  deliver(p: StreamPiece): void {
    this.listeners.get(p.callNum)?.(p);
  }

  get size(): number {
    return this.listeners.size;
  }
}
