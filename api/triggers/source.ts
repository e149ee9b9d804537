// The one interface every broker kind implements (nats.ts, mqtt.ts, amqp.ts, redis.ts), and the table
// that picks the module for a trigger's type. A broker module connects with its own client library,
// hands each message over as a Message with a stable identity, never has more than `inFlight` messages
// unacknowledged at once, stops taking messages while paused (backpressure), and acknowledges a message
// only when told. Reconnecting after a broker restart or a cut network is the client library's own job
// where it does it; else the module reports `down` and the delivery loop makes a new source.
// A Kafka trigger would be one more module: a consumer group (groupOf), the message's identity
// `topic:partition:offset`, ack() committing the offset past the lowest message still in flight.
import type { Logger } from '../../common/log.js';
import type { Trigger, TriggerType } from '../../protocol/db.js';

export interface Message {
  id: string; // the message's identity at its broker, the same on every redelivery
  body: Buffer;
  headers: Record<string, string>;
  subject: string; // the subject, topic, queue or stream it came from
  redelivered: boolean;
  ack(): Promise<void>; // the broker forgets it
  deadLetter?(): Promise<void>; // handed to the broker's own dead-letter target (where it has one)
}

export interface SourceEvents {
  message(m: Message): void;
  state(connected: boolean, error?: string): void; // connection up or down (with why)
  down(error: string): void; // the source cannot go on: close it and make another
}

export interface Source {
  start(): Promise<void>; // connects and starts taking messages (rejects when the broker cannot be reached)
  setPaused(paused: boolean): void; // stop / go on taking new messages (those in flight stay)
  settled(): void; // a message was acknowledged (room for another)
  lag(): Promise<number | undefined>; // messages waiting at the broker for this trigger, when it tells
  close(): Promise<void>;
}

export interface SourceSpec {
  trigger: Trigger;
  password?: string; // from the namespace's secret named in auth.secret
  events: SourceEvents;
  log: Logger;
}

export type SourceFactory = (spec: SourceSpec) => Source;

// The broker modules by trigger type; loaded when first used, so an API with no triggers loads no client.
const MODULES: Record<TriggerType, () => Promise<SourceFactory>> = {
  nats: async () => (await import('./nats.js')).natsSource,
  mqtt: async () => (await import('./mqtt.js')).mqttSource,
  amqp: async () => (await import('./amqp.js')).amqpSource,
  redis: async () => (await import('./redis.js')).redisSource,
};

export async function sourceFactory(type: TriggerType): Promise<SourceFactory> {
  return MODULES[type]();
}

// Wakes a pull loop that waits for room or for a resume.
export class Gate {
  private waiting: (() => void)[] = [];
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      const self = this.waiting;
      function done(): void {
        clearTimeout(t);
        const i = self.indexOf(done);
        if (i >= 0) self.splice(i, 1);
        resolve();
      }
      this.waiting.push(done);
    });
  }
  open(): void {
    for (const w of this.waiting.splice(0)) w();
  }
}

// Strings of a header map whatever the client gave (Buffers, numbers, arrays).
export function headerStrings(h: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined || v === null) continue;
    out[k] = Buffer.isBuffer(v)
      ? v.toString('utf8')
      : Array.isArray(v)
        ? v.map(String).join(',')
        : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
  }
  return out;
}
