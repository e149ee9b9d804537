// Triggers as the API takes and shows them: the body of POST /functions/NAME/triggers (one zod schema),
// the defaults of their settings, the URL rule (no password in clear: it comes from a secret), the state a
// trigger is shown in, a message's idempotency key (one call per message identity, whoever delivers it and
// however often) and the params a message's call gets.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { secretNameSchema } from '../../common/model.js';
import { namespaceOf } from '../../common/namespace.js';
import { scopedIdempotencyKey, TRIGGER_TYPES, type Trigger, type TriggerType } from '../../protocol/db.js';

export const DEFAULT_SETTINGS: Trigger['settings'] = {
  inFlight: 16,
  maxQueue: 1000,
  maxBytes: 1024 * 1024, // the API's own body limit for a call's params
  deadLetter: 'list',
  dedupWindowS: 24 * 3600,
};

// The URL scheme each broker kind takes (a Kafka trigger would add `kafka: ['kafka:']`).
export const SCHEMES: Record<TriggerType, readonly string[]> = {
  nats: ['nats:', 'tls:'],
  mqtt: ['mqtt:', 'mqtts:'],
  amqp: ['amqp:', 'amqps:'],
  redis: ['redis:', 'rediss:'],
};

export const TriggerBodySchema = z
  .object({
    type: z.enum(TRIGGER_TYPES, { errorMap: () => ({ message: `must be one of ${TRIGGER_TYPES.join(', ')}` }) }),
    url: z.string({ required_error: 'is required' }).min(1).max(2048),
    source: z.string({ required_error: 'is required' }).min(1).max(512),
    auth: z
      .object({ username: z.string().max(256).optional(), secret: secretNameSchema.optional() })
      .strict()
      .optional(),
    inFlight: z.number().int().min(1).max(1000).optional(),
    maxQueue: z.number().int().min(1).max(1_000_000).optional(),
    maxBytes: z
      .number()
      .int()
      .min(1)
      .max(1024 * 1024)
      .optional(),
    deadLetter: z.enum(['list', 'broker'], { errorMap: () => ({ message: 'must be "list" or "broker"' }) }).optional(),
    dedupWindowS: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600)
      .optional(),
    stream: z.string().min(1).max(256).optional(),
    group: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1-128 letters, digits, ".", "_" or "-"')
      .optional(),
    paused: z.boolean().optional(),
  })
  .strict();
export type TriggerBody = z.infer<typeof TriggerBodySchema>;

// Why a trigger is refused, in words that say what was expected (the handler answers 400 with it).
export function checkTrigger(b: TriggerBody): string | null {
  let u: URL;
  try {
    u = new URL(b.url);
  } catch {
    return `invalid url: not a URL (expected ${SCHEMES[b.type].map((s) => `${s}//HOST:PORT`).join(' or ')})`;
  }
  if (!SCHEMES[b.type].includes(u.protocol))
    return `invalid url: a ${b.type} trigger takes ${SCHEMES[b.type].join(' or ')} URLs, not ${u.protocol}`;
  if (u.password) return 'invalid url: it holds a password; store it as a secret of the namespace and name it in auth.secret';
  if (b.deadLetter === 'broker' && b.type !== 'amqp')
    return `invalid deadLetter: "broker" needs a broker with dead-letter queues (amqp); a ${b.type} trigger lists failed messages`;
  if (b.type === 'amqp' && b.inFlight !== undefined && b.inFlight > 65535) return 'invalid inFlight: AMQP prefetch is at most 65535';
  return null;
}

// Settings from the body, with the defaults for what it leaves out.
export function settingsOf(b: TriggerBody): Trigger['settings'] {
  return {
    inFlight: b.inFlight ?? DEFAULT_SETTINGS.inFlight,
    maxQueue: b.maxQueue ?? DEFAULT_SETTINGS.maxQueue,
    maxBytes: b.maxBytes ?? DEFAULT_SETTINGS.maxBytes,
    deadLetter: b.deadLetter ?? DEFAULT_SETTINGS.deadLetter,
    dedupWindowS: b.dedupWindowS ?? DEFAULT_SETTINGS.dedupWindowS,
    ...(b.stream ? { stream: b.stream } : {}),
    ...(b.group ? { group: b.group } : {}),
  };
}

// The consumer group / durable name / client id of a trigger at its broker.
export const groupOf = (t: Pick<Trigger, 'id' | 'settings'>): string => t.settings.group ?? `zfaas-${t.id}`;

export type TriggerState = 'paused' | 'connected' | 'disconnected' | 'unclaimed';

// A trigger as GET shows it: as stored, with its state (from its consumer's last report, while its lease runs).
export function triggerView(t: Trigger, now = Date.now()): Trigger & { state: TriggerState } {
  const held = !!t.lease && Date.parse(t.lease.until) > now;
  const state: TriggerState = t.paused ? 'paused' : !held ? 'unclaimed' : t.stats?.connected ? 'connected' : 'disconnected';
  return { ...t, state };
}

// The idempotency key of a message: the trigger (as the caller) and the message's identity at its broker,
// under the function's namespace. Its hash is of the key alone: a redelivery is the same request even
// when the broker marks it redelivered.
export function messageKey(
  t: Pick<Trigger, 'id' | 'funcName' | 'settings'>,
  messageId: string,
): { key: string; hash: string; ttlS: number } {
  const id = messageId.length > 200 ? `sha256:${createHash('sha256').update(messageId).digest('hex')}` : messageId;
  const key = scopedIdempotencyKey(namespaceOf(t.funcName), `trigger:${t.id}`, id);
  return { key, hash: createHash('sha256').update(key).digest('hex'), ttlS: t.settings.dedupWindowS };
}

// A message's identity when its broker gives none that survives a redelivery: its content, where it came
// from and what the publisher said about it (identical messages in one window are taken as one).
export function contentId(where: string, body: Buffer, headers: Record<string, string>): string {
  const h = createHash('sha256').update(where).update('\0').update(body).update('\0');
  for (const k of Object.keys(headers).sort()) h.update(`${k}=${headers[k]}\n`);
  return `c:${h.digest('hex')}`;
}

// What a message's call gets as params: its body (parsed when it is JSON, else text, else base64), its
// headers, and where it came from. Every function format gets this object: as the params of the JSON
// contract, as the event of the others.
export interface MessageParams {
  body: unknown;
  bodyBase64?: string;
  headers: Record<string, string>;
  trigger: { id: string; type: TriggerType; source: string; subject: string; messageId: string; redelivered: boolean };
}

export function paramsOf(
  t: Pick<Trigger, 'id' | 'type' | 'source'>,
  m: { id: string; body: Buffer; headers: Record<string, string>; subject: string; redelivered: boolean },
): MessageParams {
  const trigger = { id: t.id, type: t.type, source: t.source, subject: m.subject, messageId: m.id, redelivered: m.redelivered };
  const text = m.body.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(m.body)) return { body: null, bodyBase64: m.body.toString('base64'), headers: m.headers, trigger };
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: the text itself */
  }
  return { body, headers: m.headers, trigger };
}
