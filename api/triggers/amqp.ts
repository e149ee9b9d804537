// RabbitMQ triggers (amqplib, AMQP 0-9-1): a consumer on an existing queue with manual acks, the
// channel's prefetch being the in-flight limit. Pausing cancels the consumer (the unacknowledged messages
// stay with the channel until their calls end); resuming consumes again. A message's identity is its
// `message-id` property (publishers should set one: a delivery tag changes on every redelivery), else
// its content and headers. With `deadLetter: broker`, a failed message is rejected without requeue, so
// that the queue's dead-letter exchange (x-dead-letter-exchange) takes it. A closed connection or channel
// is reported `down` (the delivery loop connects again; RabbitMQ gives the unacknowledged messages again).
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { errText } from '../../common/log.js';
import { contentId } from './model.js';
import { headerStrings, type Message, type Source, type SourceSpec } from './source.js';

export function amqpSource(spec: SourceSpec): Source {
  const t = spec.trigger;
  const queue = t.source;
  let conn: ChannelModel | undefined;
  let ch: Channel | undefined;
  let tag: string | undefined;
  let closed = false;
  let paused = false;
  let switching: Promise<void> = Promise.resolve();

  const toMessage = (m: ConsumeMessage): Message => {
    const headers = headerStrings(m.properties.headers as Record<string, unknown> | undefined);
    if (m.properties.contentType) headers['content-type'] = String(m.properties.contentType);
    const given = m.properties.messageId as unknown;
    const channel = ch;
    return {
      id: typeof given === 'string' && given ? `m:${given}` : contentId(queue, m.content, headers),
      body: m.content,
      headers,
      subject: queue,
      redelivered: m.fields.redelivered,
      ack: async () => channel!.ack(m),
      deadLetter: async () => channel!.nack(m, false, false),
    };
  };

  const consume = async (): Promise<void> => {
    if (!ch || tag || closed) return;
    const c = await ch.consume(queue, (m) => m && spec.events.message(toMessage(m)), { noAck: false });
    tag = c.consumerTag;
  };
  const cancel = async (): Promise<void> => {
    if (!ch || !tag) return;
    const was = tag;
    tag = undefined;
    await ch.cancel(was);
  };

  return {
    async start() {
      const u = new URL(t.url);
      if (t.auth?.username) u.username = encodeURIComponent(t.auth.username);
      if (spec.password !== undefined) u.password = encodeURIComponent(spec.password);
      conn = await connect(u.toString(), { clientProperties: { connection_name: `zfaas-trigger-${t.id}` } });
      conn.on('error', (e: Error) => spec.events.state(false, errText(e)));
      conn.on('close', () => !closed && spec.events.down('connection closed'));
      ch = await conn.createChannel();
      ch.on('error', (e: Error) => spec.events.state(false, errText(e)));
      ch.on('close', () => !closed && spec.events.down('channel closed'));
      await ch.prefetch(t.settings.inFlight);
      await ch.checkQueue(queue);
      if (!paused) await consume();
      spec.events.state(true);
    },
    setPaused(p) {
      if (p === paused) return;
      paused = p;
      switching = switching.then(() => (p ? cancel() : consume())).catch((e: unknown) => spec.events.state(false, errText(e)));
    },
    settled() {
      /* the channel's prefetch gives the next message */
    },
    async lag() {
      if (!ch) return undefined;
      return (await ch.checkQueue(queue)).messageCount;
    },
    async close() {
      closed = true;
      await conn?.close().catch(() => undefined);
    },
  };
}
