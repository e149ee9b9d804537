// MQTT triggers (mqtt.js, MQTT 5): a topic filter subscribed with QoS 1 in a persistent session (a fixed
// client id, groupOf, clean start off, a week's session expiry), so that messages published while no API
// consumes wait at the broker. A message is acknowledged (PUBACK) only when its call has ended: mqtt.js
// sends the PUBACK once handleMessage calls back, and takes the next message after it, so an MQTT trigger
// has one call in flight (for more, several triggers on a shared subscription, `$share/GROUP/FILTER`).
// A message's identity is its `message-id` user property when the publisher sets one (packet ids are
// reused), else its topic, payload and properties. The client reconnects by itself; the broker then sends
// the unacknowledged message again (DUP). MQTT tells no lag.
import { connect, type IPublishPacket, type MqttClient } from 'mqtt';
import { errText } from '../../common/log.js';
import { contentId, groupOf } from './model.js';
import { Gate, headerStrings, type Message, type Source, type SourceSpec } from './source.js';

const SESSION_EXPIRY_S = 7 * 24 * 3600;

export function mqttSource(spec: SourceSpec): Source {
  const t = spec.trigger;
  let client: MqttClient | undefined;
  let closed = false;
  let paused = false;
  const gate = new Gate();

  const toMessage = (p: IPublishPacket, done: (e?: Error) => void): Message => {
    const headers = headerStrings(p.properties?.userProperties as Record<string, unknown> | undefined);
    if (p.properties?.contentType) headers['content-type'] = p.properties.contentType;
    const body = Buffer.isBuffer(p.payload) ? p.payload : Buffer.from(p.payload);
    const given = headers['message-id'];
    let acked = false;
    return {
      id: given ? `m:${given}` : contentId(p.topic, body, headers),
      body,
      headers,
      subject: p.topic,
      redelivered: p.dup,
      ack: async () => {
        if (acked) return;
        acked = true;
        done();
      },
    };
  };

  return {
    async start() {
      const c = connect(t.url, {
        clientId: groupOf(t),
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: SESSION_EXPIRY_S },
        reconnectPeriod: 1000,
        connectTimeout: 5000,
        ...(t.auth?.username ? { username: t.auth.username } : {}),
        ...(spec.password !== undefined ? { password: spec.password } : {}),
      });
      client = c;
      // Set before the session's waiting messages arrive (the default handler would acknowledge them at
      // once). The next message waits for this one's call (and for a resume): its PUBACK goes with `done`.
      c.handleMessage = (packet, done) => {
        void (async () => {
          while (paused && !closed) await gate.wait(1000);
          if (closed) return;
          spec.events.message(toMessage(packet, (e) => done(e)));
        })();
      };
      c.on('connect', () => spec.events.state(true));
      c.on('offline', () => spec.events.state(false, 'broker unreachable'));
      c.on('error', (e) => spec.events.state(false, errText(e)));
      await new Promise<void>((resolve, reject) => {
        const fail = (e: Error): void => reject(e);
        c.once('connect', () => {
          c.off('error', fail);
          resolve();
        });
        c.once('error', fail);
      });
      const granted = await c.subscribeAsync(t.source, { qos: 1 });
      const refused = granted.find((g) => g.qos !== 1 && g.qos !== 0);
      if (refused) throw new Error(`the broker refused the subscription to ${t.source} (code ${refused.qos})`);
      spec.events.state(true);
    },
    setPaused(p) {
      paused = p;
      if (!p) gate.open();
    },
    settled() {
      /* the next message comes once this one's PUBACK is sent */
    },
    async lag() {
      return undefined;
    },
    async close() {
      closed = true;
      gate.open();
      await client?.endAsync(true).catch(() => undefined);
    },
  };
}
