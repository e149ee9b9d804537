// Trigger rules: what a POST is refused for (a password in the URL, a scheme of another broker, a
// broker-side dead letter where the broker has none), the message's idempotency key (the same for every
// delivery of one message, another for another message or another trigger), and a message's params.
import { describe, expect, it } from 'vitest';
import { checkTrigger, messageKey, paramsOf, settingsOf, TriggerBodySchema } from './model.js';

const body = (b: object) => TriggerBodySchema.parse(b);
const t = { id: 'ab12', funcName: 'shop~fn', settings: settingsOf(body({ type: 'redis', url: 'redis://h', source: 's' })) };

describe('trigger rules', () => {
  it('refuses a password in clear, a wrong scheme and a broker dead letter without one', () => {
    expect(checkTrigger(body({ type: 'amqp', url: 'amqp://u:p@h:5672', source: 'q' }))).toMatch(/holds a password/);
    expect(checkTrigger(body({ type: 'nats', url: 'redis://h', source: 'x' }))).toMatch(/takes nats: or tls: URLs/);
    expect(checkTrigger(body({ type: 'mqtt', url: 'not a url', source: 'x' }))).toMatch(/not a URL/);
    expect(checkTrigger(body({ type: 'redis', url: 'redis://h', source: 's', deadLetter: 'broker' }))).toMatch(/amqp/);
    expect(checkTrigger(body({ type: 'amqp', url: 'amqp://u@h', source: 'q', deadLetter: 'broker', auth: { secret: 'pw' } }))).toBeNull();
    expect(() => body({ type: 'kafka', url: 'kafka://h', source: 't' })).toThrow(/must be one of nats, mqtt, amqp, redis/);
  });

  it('keys a message by its trigger and identity, whatever delivery it is', () => {
    const a = messageKey(t, 'TESTS:7');
    expect(messageKey(t, 'TESTS:7')).toEqual(a);
    expect(a.key).toBe('shop~trigger:ab12~TESTS:7');
    expect(messageKey(t, 'TESTS:8').key).not.toBe(a.key);
    expect(messageKey({ ...t, id: 'cd34' }, 'TESTS:7').key).not.toBe(a.key);
    expect(messageKey(t, 'x'.repeat(300)).key.length).toBeLessThan(300);
  });

  it('gives a JSON body parsed, text as text, bytes as base64', () => {
    const m = { id: '1-0', headers: { k: 'v' }, subject: 's', redelivered: false };
    const tr = { id: 'ab12', type: 'redis' as const, source: 's' };
    expect(paramsOf(tr, { ...m, body: Buffer.from('{"n":3}') })).toMatchObject({
      body: { n: 3 },
      headers: { k: 'v' },
      trigger: { messageId: '1-0' },
    });
    expect(paramsOf(tr, { ...m, body: Buffer.from('hello') }).body).toBe('hello');
    expect(paramsOf(tr, { ...m, body: Buffer.from([0xff, 0x00]) })).toMatchObject({ body: null, bodyBase64: '/wA=' });
  });
});
