// Where triggers may connect: loopback only unless the operator allows more, host names and ports as
// the operator wrote them, and nothing at all with `none`.
import { describe, expect, it } from 'vitest';
import { TriggerAllow } from './allow.js';

describe('the trigger allow-list', () => {
  it('lets only this machine be reached unless the operator allows more', async () => {
    const def = TriggerAllow.parse(undefined);
    expect(await def.refusal('redis', 'redis://127.0.0.1:6379')).toBeNull();
    expect(await def.refusal('nats', 'nats://[::1]')).toBeNull();
    expect(await def.refusal('amqp', 'amqp://10.1.2.3:5672')).toMatch(
      /host 10\.1\.2\.3 \(port 5672\) is not in this API's trigger allow-list/,
    );
    // Names resolved by a fake resolver: no lookup leaves this machine.
    const lookup = async (host: string) => (host === 'mq.internal' ? [{ address: '192.168.7.7', family: 4 as const }] : []);
    const wider = TriggerAllow.parse('loopback,10.0.0.0/8,mq.internal:5672', lookup);
    expect(await wider.refusal('redis', 'redis://10.1.2.3')).toBeNull();
    expect(await wider.refusal('amqp', 'amqp://mq.internal')).toBeNull(); // its default port
    expect(await wider.refusal('mqtt', 'mqtt://mq.internal')).toMatch(/port 1883/);
    expect(await wider.refusal('redis', 'redis://192.168.1.1:6379')).toMatch(/not in this API's trigger allow-list/);
    expect(await TriggerAllow.parse('none').refusal('redis', 'redis://127.0.0.1')).toMatch(/disabled/);
    expect(() => TriggerAllow.parse('*')).toThrow(/trigger allow-list/);
  });
});
