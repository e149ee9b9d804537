// Redis Streams triggers (ioredis): a consumer group on a stream (made at the stream's start when missing,
// with the stream), read with XREADGROUP. A message is a stream entry: its `body` field is the body (an
// entry without one: its fields as a JSON object), its other fields the headers; its identity is the
// entry id. The group's one consumer name is fixed, so the entries a killed API left pending are this
// consumer's own: they are read again first (id 0) and their calls found by their keys. XACK after the
// call's end (on a second connection: the reads block). Pending and not-yet-read entries are the lag (XINFO GROUPS).
import { Redis } from 'ioredis';
import { z } from 'zod';
import { errText } from '../../common/log.js';
import { groupOf } from './model.js';
import { Gate, type Message, type Source, type SourceSpec } from './source.js';

const CONSUMER = 'zfaas';
const BLOCK_MS = 1000;

// XREADGROUP's answer: [[stream, [[id, [field, value, ...]], ...]]] or null.
const ReadReply = z.array(z.tuple([z.string(), z.array(z.tuple([z.string(), z.array(z.string()).nullable()]))])).nullable();
const GroupsReply = z.array(z.array(z.union([z.string(), z.number(), z.null()])));

export function redisSource(spec: SourceSpec): Source {
  const t = spec.trigger;
  const group = groupOf(t);
  const stream = t.source;
  const u = new URL(t.url);
  const conn = new Redis(t.url, {
    lazyConnect: true,
    maxRetriesPerRequest: null, // commands wait for the reconnection instead of failing
    retryStrategy: (n) => Math.min(n * 200, 2000),
    ...(t.auth?.username ? { username: t.auth.username } : {}),
    ...(spec.password !== undefined ? { password: spec.password } : {}),
    connectionName: `zfaas-trigger-${t.id}`,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  });
  // Blocking reads on a connection of their own, so that acknowledgements never wait behind one.
  const reader = conn.duplicate();
  let closed = false;
  let paused = false;
  let unacked = 0;
  const gate = new Gate();
  conn.on('ready', () => spec.events.state(true));
  conn.on('end', () => !closed && spec.events.state(false, 'connection ended'));
  conn.on('error', (e: Error) => spec.events.state(false, errText(e)));

  const ensureGroup = async (): Promise<void> => {
    try {
      await conn.call('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM');
    } catch (e) {
      if (!/BUSYGROUP/.test(errText(e))) throw e;
    }
  };

  const toMessage = (id: string, fields: string[] | null): Message => {
    const f = fields ?? [];
    const headers: Record<string, string> = {};
    let body: Buffer | undefined;
    for (let i = 0; i + 1 < f.length; i += 2) {
      if (f[i] === 'body') body = Buffer.from(f[i + 1]!, 'utf8');
      else headers[f[i]!] = f[i + 1]!;
    }
    const whole = body ?? Buffer.from(JSON.stringify(headers));
    unacked++;
    let done = false;
    return {
      id,
      body: whole,
      headers: body ? headers : {},
      subject: stream,
      redelivered: false,
      ack: async () => {
        if (done) return;
        await conn.call('XACK', stream, group, id);
        done = true;
        unacked--;
        gate.open();
      },
    };
  };

  // Reads from `from` ('0': this consumer's pending entries, '>': new ones); how many came.
  const read = async (from: string, count: number): Promise<{ n: number; last?: string }> => {
    const raw = await reader.call(
      'XREADGROUP',
      'GROUP',
      group,
      CONSUMER,
      'COUNT',
      String(count),
      'BLOCK',
      String(BLOCK_MS),
      'STREAMS',
      stream,
      from,
    );
    const reply = ReadReply.parse(raw);
    let n = 0;
    let last: string | undefined;
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        n++;
        last = id;
        const m = toMessage(id, fields);
        if (from !== '>') m.redelivered = true;
        spec.events.message(m);
      }
    }
    return { n, last };
  };

  const loop = async (): Promise<void> => {
    let pendingFrom: string | null = '0'; // first the entries left pending (by an API killed mid-stream)
    while (!closed) {
      const room = t.settings.inFlight - unacked;
      if (paused || room <= 0) {
        await gate.wait(1000);
        continue;
      }
      try {
        if (pendingFrom !== null) {
          const { n, last } = await read(pendingFrom, room);
          pendingFrom = n === 0 || !last ? null : last;
        } else await read('>', room);
      } catch (e) {
        if (closed) return;
        const why = errText(e);
        // The stream or its group went (FLUSHALL, a restart without persistence): make them again.
        if (/NOGROUP/.test(why)) await ensureGroup().catch(() => undefined);
        spec.events.state(false, why);
        await gate.wait(500);
      }
    }
  };

  return {
    async start() {
      await Promise.all([conn.connect(), reader.connect()]);
      await ensureGroup();
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
      const groups = GroupsReply.parse(await conn.call('XINFO', 'GROUPS', stream));
      for (const g of groups) {
        const m = new Map<string, string | number | null>();
        for (let i = 0; i + 1 < g.length; i += 2) m.set(String(g[i]), g[i + 1] ?? null);
        if (m.get('name') !== group) continue;
        return Number(m.get('lag') ?? 0) + Number(m.get('pending') ?? 0);
      }
      return undefined;
    },
    async close() {
      closed = true;
      gate.open();
      conn.disconnect();
      reader.disconnect();
    },
  };
}
