// Where triggers may connect: the operator's allow-list (ZFAAS_TRIGGER_ALLOW, the same forms as the
// callbacks' list: addresses, CIDR ranges, host names, *.domain, each with an optional :port, `loopback`,
// `none`; unset: loopback only). A trigger's URL makes the API open a connection, so without a list a
// namespace's developer could make it reach into networks it should not, and read what answered in the
// trigger's last error. Checked when a trigger is made (a 400 saying what the operator allows) and again
// each time its consumer connects, against the addresses its host resolves to then.
import { AllowList, CallbackUrlError, type Lookup } from '../../common/allow-list.js';
import type { TriggerType } from '../../protocol/db.js';

// Each broker's port when the URL names none.
const DEFAULT_PORTS: Record<TriggerType, number> = { nats: 4222, mqtt: 1883, amqp: 5672, redis: 6379 };

export class TriggerAllow {
  private constructor(private readonly list: AllowList) {}

  static parse(raw: string | undefined, lookup?: Lookup): TriggerAllow {
    return new TriggerAllow(AllowList.parse(raw, { what: 'trigger allow-list (ZFAAS_TRIGGER_ALLOW)', ...(lookup ? { lookup } : {}) }));
  }

  // Why this URL may not be used now, or null.
  async refusal(type: TriggerType, raw: string): Promise<string | null> {
    if (this.list.disabled) return 'triggers are disabled on this API (the operator set ZFAAS_TRIGGER_ALLOW=none)';
    const u = new URL(raw);
    // The list matches hosts and ports; its checker speaks http, so the host is asked as an http URL.
    const asked = new URL('http://placeholder/');
    asked.hostname = u.hostname;
    asked.port = u.port || String(DEFAULT_PORTS[type]);
    try {
      await this.list.targets(asked);
      return null;
    } catch (e) {
      if (e instanceof CallbackUrlError)
        return `host ${u.hostname} (port ${asked.port}) is not in this API's trigger allow-list (the operator sets it with ZFAAS_TRIGGER_ALLOW)`;
      return null; // a name the operator allowed that does not resolve now: the connection will say so
    }
  }

  describe(): string {
    return this.list.describe();
  }
}
