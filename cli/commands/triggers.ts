// trigger add NAME --type T --url URL --source S [settings], trigger list NAME, trigger rm NAME ID,
// trigger pause NAME ID, trigger resume NAME ID: a function's broker triggers (each message of a NATS
// JetStream subject, MQTT topic filter, RabbitMQ queue or Redis stream makes one call), over
// /functions/NAME/triggers. A password is never given here: --secret names a secret of the namespace.
import { InvalidArgumentError, type Command } from 'commander';
import { TRIGGER_TYPES, type TriggerType } from '../../protocol/db.js';
import type { TriggerView } from '../client/triggers.js';
import { act, examples, type Deps } from './common.js';

interface AddOpts {
  type: TriggerType;
  url: string;
  source: string;
  username?: string;
  secret?: string;
  inFlight?: number;
  maxQueue?: number;
  maxBytes?: number;
  deadLetter?: 'list' | 'broker';
  stream?: string;
  group?: string;
  paused?: boolean;
  json?: boolean;
}

const typeArg = (v: string): TriggerType => {
  if (!(TRIGGER_TYPES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`--type must be one of ${TRIGGER_TYPES.join(', ')}`);
  return v as TriggerType;
};
const countArg =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${flag} must be a whole number of at least 1`);
    return n;
  };
const deadArg = (v: string): 'list' | 'broker' => {
  if (v !== 'list' && v !== 'broker') throw new InvalidArgumentError('--dead-letter must be list or broker');
  return v;
};

const hint = (sub: string): string => `(run "zfaas trigger ${sub} --help" for usage and examples)`;

// One line of counts a person reads at a glance.
const counts = (t: TriggerView): string => {
  const s = t.stats;
  if (!s) return '';
  return `${s.delivered} done, ${s.failed} failed, ${s.inFlight} in flight${s.lag !== undefined ? `, lag ${s.lag}` : ''}`;
};

export function triggerCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  const trig = examples(p.command('trigger').description("a function's broker triggers (NATS JetStream, MQTT, RabbitMQ, Redis Streams)"), [
    'zfaas trigger add orders --type redis --url redis://127.0.0.1:6379 --source orders',
    'zfaas trigger list orders',
  ]);

  examples(
    trig
      .command('add <name>')
      .description('call a function once for each message of a broker source (acknowledged once its call ended)')
      .requiredOption('--type <type>', `broker: ${TRIGGER_TYPES.join(', ')}`, typeArg)
      .requiredOption('--url <url>', 'broker address, with no password (nats://, mqtt://, amqp://, redis://)')
      .requiredOption('--source <source>', 'nats: subject filter; mqtt: topic filter; amqp: queue; redis: stream')
      .option('--username <user>', 'user name at the broker')
      .option('--secret <name>', "secret of the namespace holding the broker's password (or NATS token)")
      .option('--in-flight <n>', 'calls in flight at once (default 16)', countArg('--in-flight'))
      .option(
        '--max-queue <n>',
        "take no message while this many of the function's calls wait in the API's queue (default 1000)",
        countArg('--max-queue'),
      )
      .option('--max-bytes <n>', 'longer messages make no call: acknowledged and listed (default 1 MiB)', countArg('--max-bytes'))
      .option('--dead-letter <where>', "failed messages: list (default) or broker (the queue's dead-letter exchange; amqp)", deadArg)
      .option('--stream <name>', 'nats: the JetStream stream (default: the one holding the subject)')
      .option('--group <name>', 'consumer group, durable name or client id at the broker (default zfaas-ID)')
      .option('--paused', 'make it paused')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('add')),
    [
      'zfaas trigger add orders --type nats --url nats://127.0.0.1:4222 --source orders.new --in-flight 8',
      'zfaas trigger add orders --type amqp --url amqp://127.0.0.1:5672 --source orders --username app --secret rabbit-password',
      "zfaas trigger add sensors --type mqtt --url mqtt://127.0.0.1:1883 --source 'sensors/+/temp'",
    ],
  ).action(
    act(deps, async (name: string, o: AddOpts, cmd: Command) => {
      const auth =
        o.username || o.secret ? { ...(o.username ? { username: o.username } : {}), ...(o.secret ? { secret: o.secret } : {}) } : undefined;
      const t = await (
        await deps.client(cmd)
      ).addTrigger(name, {
        type: o.type,
        url: o.url,
        source: o.source,
        ...(auth ? { auth } : {}),
        ...(o.inFlight ? { inFlight: o.inFlight } : {}),
        ...(o.maxQueue ? { maxQueue: o.maxQueue } : {}),
        ...(o.maxBytes ? { maxBytes: o.maxBytes } : {}),
        ...(o.deadLetter ? { deadLetter: o.deadLetter } : {}),
        ...(o.stream ? { stream: o.stream } : {}),
        ...(o.group ? { group: o.group } : {}),
        ...(o.paused ? { paused: true } : {}),
      });
      if (o.json) return out.json(t);
      out.print(`trigger ${t.id} added to ${name}: ${t.type} ${t.source} at ${t.url}${t.paused ? ' (paused)' : ''}`);
    }),
  );

  examples(
    trig
      .command('list <name>')
      .alias('ls')
      .description("a function's triggers, with their state and counts")
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('list')),
    ['zfaas trigger list orders'],
  ).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).triggers(name);
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note(`no triggers for ${name}`);
      out.table(
        ['ID', 'TYPE', 'SOURCE', 'URL', 'STATE', 'COUNTS', 'LAST ERROR'],
        list.map((t) => [t.id, t.type, t.source, t.url, t.state, counts(t), t.stats?.lastError ?? '']),
      );
    }),
  );

  for (const [verb, done] of [
    ['pause', 'paused'],
    ['resume', 'resumed'],
  ] as const) {
    examples(
      trig
        .command(`${verb} <name> <id>`)
        .description(verb === 'pause' ? 'take no more messages (they wait at the broker)' : 'take messages again')
        .option('--json', 'print JSON')
        .showHelpAfterError(hint(verb)),
      [`zfaas trigger ${verb} orders 3f2a9c0d1e4b5a6c`],
    ).action(
      act(deps, async (name: string, id: string, o: { json?: boolean }, cmd: Command) => {
        const t = await (await deps.client(cmd)).triggerAction(name, id, verb);
        if (o.json) return out.json(t);
        out.print(`${done} trigger ${id} of ${name}`);
      }),
    );
  }

  examples(
    trig
      .command('rm <name> <id>')
      .alias('remove')
      .description('remove a trigger (messages it had not acknowledged stay at the broker)')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('rm')),
    ['zfaas trigger rm orders 3f2a9c0d1e4b5a6c'],
  ).action(
    act(deps, async (name: string, id: string, o: { json?: boolean }, cmd: Command) => {
      await (await deps.client(cmd)).deleteTrigger(name, id);
      if (o.json) return out.json({ deleted: true, id });
      out.print(`removed trigger ${id} of ${name}`);
    }),
  );
}
