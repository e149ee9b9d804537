// Publishing to the test brokers with the same client libraries the triggers use: makes the source a
// trigger reads (a JetStream stream over the subject, a durable queue), publishes messages with an id a
// publisher would set (AMQP message-id, MQTT 5 user property; NATS and Redis give their own), and reads
// what the broker still holds for a trigger (unacknowledged or undelivered), to show none is left.
import { Redis } from 'ioredis';
import { connect as amqpConnect } from 'amqplib';
import { connectAsync } from 'mqtt';
import { connect as natsConnect, RetentionPolicy, StorageType } from 'nats';
import type { BrokerKind } from './brokers.js';

export interface Outgoing {
  id: string;
  body: Buffer | string;
}

export async function prepareSource(kind: BrokerKind, url: string, source: string): Promise<void> {
  if (kind === 'nats') {
    const nc = await natsConnect({ servers: url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'TESTS', subjects: [source], retention: RetentionPolicy.Limits, storage: StorageType.File });
    await nc.close();
  } else if (kind === 'amqp') {
    const c = await amqpConnect(url);
    const ch = await c.createChannel();
    await ch.assertExchange('dlx', 'fanout', { durable: true });
    await ch.assertQueue(`${source}.dead`, { durable: true });
    await ch.bindQueue(`${source}.dead`, 'dlx', '');
    await ch.assertQueue(source, { durable: true, arguments: { 'x-dead-letter-exchange': 'dlx' } });
    await c.close();
  }
}

export async function publish(kind: BrokerKind, url: string, source: string, messages: Outgoing[], password?: string): Promise<void> {
  const buf = (b: Buffer | string): Buffer => (typeof b === 'string' ? Buffer.from(b) : b);
  if (kind === 'nats') {
    const nc = await natsConnect({ servers: url });
    const js = nc.jetstream();
    for (const m of messages) await js.publish(source, buf(m.body));
    await nc.close();
  } else if (kind === 'redis') {
    const r = new Redis(url, password ? { password } : {});
    for (const m of messages) await r.call('XADD', source, '*', 'body', buf(m.body).toString('utf8'), 'x-test-id', m.id);
    r.disconnect();
  } else if (kind === 'amqp') {
    const c = await amqpConnect(url);
    const ch = await c.createConfirmChannel();
    for (const m of messages) ch.sendToQueue(source, buf(m.body), { messageId: m.id, persistent: true, headers: { 'x-test-id': m.id } });
    await ch.waitForConfirms();
    await c.close();
  } else {
    const c = await connectAsync(url, { protocolVersion: 5, clientId: `pub-${process.pid}-${Date.now()}` });
    for (const m of messages) await c.publishAsync(source, buf(m.body), { qos: 1, properties: { userProperties: { 'message-id': m.id } } });
    await c.endAsync();
  }
}

// Messages the broker still holds for the trigger's group: not yet delivered or not yet acknowledged
// (AMQP: ready in the queue; MQTT tells nothing, so undefined).
export async function leftAtBroker(kind: BrokerKind, url: string, source: string, group: string): Promise<number | undefined> {
  if (kind === 'nats') {
    const nc = await natsConnect({ servers: url });
    const jsm = await nc.jetstreamManager();
    const i = await jsm.consumers.info('TESTS', group);
    await nc.close();
    return i.num_pending + i.num_ack_pending;
  }
  if (kind === 'redis') {
    const r = new Redis(url);
    const pending = (await r.call('XPENDING', source, group)) as [number, ...unknown[]];
    r.disconnect();
    return Number(pending[0]);
  }
  if (kind === 'amqp') {
    const c = await amqpConnect(url);
    const ch = await c.createChannel();
    const q = await ch.checkQueue(source);
    await c.close();
    return q.messageCount;
  }
  return undefined;
}

// The messages AMQP's dead-letter queue holds (the `deadLetter: broker` setting sends failed ones there).
export async function amqpDeadLettered(url: string, source: string): Promise<string[]> {
  const c = await amqpConnect(url);
  const ch = await c.createChannel();
  const ids: string[] = [];
  for (;;) {
    const m = await ch.get(`${source}.dead`, { noAck: true });
    if (!m) break;
    ids.push(String(m.properties.messageId));
  }
  await c.close();
  return ids;
}
