// schedule add NAME --cron EXPR [--timezone TZ] [--params JSON] [--missed skip|once], schedule list NAME,
// schedule rm NAME ID: a function's cron triggers (POST/GET/DELETE /functions/NAME/schedules).
import { InvalidArgumentError, type Command } from 'commander';
import { ago } from '../client/format.js';
import { act, examples, type Deps } from './common.js';

interface AddOpts {
  cron: string;
  timezone?: string;
  params?: unknown;
  missed?: 'skip' | 'once';
  json?: boolean;
}

const jsonArg = (v: string): unknown => {
  try {
    return JSON.parse(v) as unknown;
  } catch (e) {
    throw new InvalidArgumentError(`--params must be JSON: ${(e as Error).message}`);
  }
};

const missedArg = (v: string): 'skip' | 'once' => {
  if (v !== 'skip' && v !== 'once') throw new InvalidArgumentError('--missed must be skip or once');
  return v;
};

const hint = (sub: string): string => `(run "zfaas schedule ${sub} --help" for usage and examples)`;

export function scheduleCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  const sched = examples(p.command('schedule').description("a function's schedules (cron triggers)"), [
    "zfaas schedule add report --cron '0 9 * * 1-5' --timezone Europe/Paris",
    'zfaas schedule list report',
  ]);

  examples(
    sched
      .command('add <name>')
      .description('run a function on a cron schedule (5 fields, or 6 with seconds first)')
      .requiredOption('--cron <expr>', 'cron expression: [second] minute hour day month weekday')
      .option('--timezone <tz>', 'IANA time zone the expression is read in (default UTC)')
      .option('--params <json>', 'the params each run gets (JSON)', jsonArg)
      .option('--missed <rule>', 'ticks missed while the platform was down: skip (default) or once (run once on return)', missedArg)
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('add')),
    [
      'zfaas schedule add hello --cron \'*/2 * * * * *\' --params \'{"name":"ana"}\'',
      "zfaas schedule add report --cron '0 9 * * 1-5' --timezone Europe/Paris --missed once",
    ],
  ).action(
    act(deps, async (name: string, o: AddOpts, cmd: Command) => {
      const s = await (
        await deps.client(cmd)
      ).addSchedule(name, { cron: o.cron, timezone: o.timezone, params: o.params, missed: o.missed });
      if (o.json) return out.json(s);
      out.print(`scheduled ${name}: ${s.cron} (${s.timezone}), id ${s.id}, next ${s.next ?? 'never'}`);
    }),
  );

  examples(
    sched
      .command('list <name>')
      .alias('ls')
      .description("a function's schedules, with their next and last run")
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('list')),
    ['zfaas schedule list hello'],
  ).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).schedules(name);
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note(`no schedules for ${name}`);
      out.table(
        ['ID', 'CRON', 'TIMEZONE', 'MISSED', 'NEXT', 'LAST RUN', 'PARAMS'],
        list.map((s) => [
          s.id,
          s.cron,
          s.timezone,
          s.missed,
          s.next ?? 'never',
          s.lastRun ? `call ${s.lastRun.callNum} (${ago(s.lastRun.tick)})` : '',
          JSON.stringify(s.params) ?? '',
        ]),
      );
    }),
  );

  examples(
    sched
      .command('rm <name> <id>')
      .alias('remove')
      .description('remove a schedule')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('rm')),
    ['zfaas schedule rm hello 3f2a9c0d1e4b5a6c'],
  ).action(
    act(deps, async (name: string, id: string, o: { json?: boolean }, cmd: Command) => {
      await (await deps.client(cmd)).deleteSchedule(name, id);
      if (o.json) return out.json({ deleted: true, id });
      out.print(`removed schedule ${id} of ${name}`);
    }),
  );
}
