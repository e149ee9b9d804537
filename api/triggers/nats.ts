// NATS JetStream triggers (nats.js): a durable pull consumer (groupOf) with explicit acks on a stream,
// filtered to the trigger's subject; the stream is `stream` when set, else the one holding the subject.
// Messages are fetched at most `inFlight` at a time (what is unacknowledged counts), and each is
// acknowledged with ackAck (the server confirms it) after its call's end, and marked in progress while
// its call runs (so that a short ack wait redelivers only what a dead consumer held). A message's identity is its
// stream and stream sequence, the same on every redelivery. The client reconnects by itself; a fetch that
// fails meanwhile is tried again. Lag: the consumer's pending and unacknowledged messages.
import { AckPolicy, connect, DeliverPolicy, nanos, type Consumer, type JsMsg, type NatsConnection } from 'nats';
import { errText } from '../../common/log.js';
import { groupOf } from './model.js';
import { Gate, type Message, type Source, type SourceSpec } from './source.js';

// The server gives a message again when no word came for this long: a consumer that died gets its
// messages redelivered soon. A message whose call runs longer is kept with "in progress" every WORKING_MS.
const ACK_WAIT_MS = 10_000;
const WORKING_MS = 3000;

export function natsSource(spec: SourceSpec): Source {
  const t = spec.trigger;
  const durable = groupOf(t);
  let nc: NatsConnection | undefined;
  let consumer: Consumer | undefined;
  let closed = false;
  let paused = false;
  let unacked = 0;
  const gate = new Gate();

  const toMessage = (m: JsMsg): Message => {
    const headers: Record<string, string> = {};
    if (m.headers) for (const k of m.headers.keys()) headers[k] = m.headers.get(k);
    unacked++;
    let done = false; // counted out of the unacknowledged
    let acked = false;
    const working = setInterval(() => m.working(), WORKING_MS);
    working.unref();
    const settle = (): void => {
      clearInterval(working);
      if (done) return;
      done = true;
      unacked--;
      gate.open();
    };
    return {
      id: `${m.info.stream}:${m.seq}`,
      body: Buffer.from(m.data),
      headers,
      subject: m.subject,
      redelivered: m.redelivered,
      ack: async () => {
        if (acked) return;
        try {
          await m.ackAck();
          acked = true;
        } finally {
          // Not confirmed: the server gives it again after the ack wait; the loop must not wait for it.
          settle();
        }
      },
    };
  };

  const loop = async (): Promise<void> => {
    while (!closed) {
      const room = t.settings.inFlight - unacked;
      if (paused || room <= 0 || !consumer) {
        await gate.wait(1000);
        continue;
      }
      try {
        const asked = consumer.fetch({ max_messages: room, expires: 1000 });
        // Asked while the connection is down, a pull may wait for it long: given up after a while.
        let late: NodeJS.Timeout | undefined;
        const batch = await Promise.race([
          asked,
          new Promise<never>((_, reject) => {
            late = setTimeout(() => {
              void asked.then((b) => b.stop()).catch(() => undefined);
              reject(new Error('no answer to a pull'));
            }, 5000);
          }),
        ]).finally(() => clearTimeout(late));
        // A pull the server forgot (it restarted meanwhile) never ends by itself: ended here.
        const guard = setTimeout(() => batch.stop(), 3000);
        try {
          for await (const m of batch) {
            if (closed) break;
            spec.events.message(toMessage(m));
          }
        } finally {
          clearTimeout(guard);
        }
      } catch (e) {
        if (closed) return;
        spec.events.state(false, errText(e));
        await gate.wait(500);
      }
    }
  };

  const watch = async (c: NatsConnection): Promise<void> => {
    for await (const s of c.status()) {
      if (s.type === 'disconnect') spec.events.state(false, `disconnected from ${String(s.data)}`);
      else if (s.type === 'reconnect') spec.events.state(true);
    }
  };

  return {
    async start() {
      const user = t.auth?.username;
      nc = await connect({
        servers: t.url,
        name: `zfaas-trigger-${t.id}`,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        ...(user ? { user, pass: spec.password ?? '' } : spec.password !== undefined ? { token: spec.password } : {}),
      });
      void watch(nc);
      void nc.closed().then((err) => !closed && spec.events.down(err ? errText(err) : 'connection closed'));
      const jsm = await nc.jetstreamManager();
      const stream = t.settings.stream ?? (await jsm.streams.find(t.source));
      try {
        await jsm.consumers.info(stream, durable);
      } catch {
        await jsm.consumers.add(stream, {
          durable_name: durable,
          filter_subject: t.source,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(ACK_WAIT_MS),
        });
      }
      consumer = await nc.jetstream().consumers.get(stream, durable);
      spec.events.state(true);
      void loop();
    },
    setPaused(p) {
      paused = p;
      if (!p) gate.open();
    },
    settled() {
      gate.open();
    },
    async lag() {
      if (!consumer) return undefined;
      const i = await consumer.info(); // not the cached one
      return i.num_pending + i.num_ack_pending;
    },
    async close() {
      closed = true;
      gate.open();
      await nc?.close();
    },
  };
}
