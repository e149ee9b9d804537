// dead-letters [list] [--function NAME] [--limit N], dead-letters replay N [--same-version | --version V],
// dead-letters rm N: the calls that failed every run their function's `retries` allowed (GET
// /dead-letters, POST /dead-letters/N/replay, DELETE /dead-letters/N; api/handlers/dead-letters.ts).
import type { Command } from 'commander';
import type { Call } from '../../common/model.js';
import type { ReplayVersion } from '../client/api.js';
import { UsageError } from '../client/errors.js';
import { ago, firstLine } from '../client/format.js';
import { act, examples, positiveInt, type Deps } from './common.js';

interface ListOpts {
  function?: string;
  limit: number;
  json?: boolean;
}

interface ReplayOpts {
  sameVersion?: boolean;
  version?: number;
  json?: boolean;
}

const hint = (sub: string): string => `(run "zfaas dead-letters ${sub} --help" for usage and examples)`;
const target = (c: Call): string => (c.version ? `${c.funcName}@${c.version}` : c.funcName);

/** When the dead letter's last run ended: the end of the call, else of its last earlier run. */
const failedAt = (c: Call): string | undefined => c.finishedAt ?? c.history?.[c.history.length - 1]?.finishedAt;

/** What `--same-version` / `--version V` ask the API for; neither: the function's current version. */
export function replayVersion(o: ReplayOpts): ReplayVersion | undefined {
  if (o.sameVersion && o.version !== undefined)
    throw new UsageError('give --same-version or --version, not both (neither: the current version of the function)');
  return o.sameVersion ? 'same' : o.version;
}

export function deadLetterCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  const dl = examples(
    p
      .command('dead-letters')
      .description("calls that failed every run their function's --retries allowed: list them, replay them, dismiss them")
      .showHelpAfterError(hint('list')),
    ['zfaas dead-letters', 'zfaas dead-letters replay 42', 'zfaas dead-letters rm 42'],
  );

  examples(
    dl
      .command('list', { isDefault: true })
      .alias('ls')
      .description('the dead letters still listed (not replayed or dismissed), newest first')
      .option('--function <name>', 'only the dead letters of this function')
      .option('-n, --limit <n>', 'how many', positiveInt('--limit'), 20)
      .option('--json', 'print JSON')
      // The default subcommand gets every word after "dead-letters": one that is not a subcommand is named below.
      .allowExcessArguments()
      .showHelpAfterError(hint('list')),
    ['zfaas dead-letters', 'zfaas dead-letters list --function charge --limit 50', 'zfaas dead-letters --json | jq -r ".[].callNum"'],
  ).action(
    act(deps, async (o: ListOpts, cmd: Command) => {
      const [word] = cmd.args;
      if (word !== undefined) throw new UsageError(`unexpected ${JSON.stringify(word)}: "zfaas dead-letters" takes list, replay N or rm N`);
      const list = await (await deps.client(cmd)).deadLetters({ funcName: o.function, limit: o.limit });
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note(o.function ? `no dead letters for ${o.function}` : 'no dead letters');
      out.table(
        ['CALL', 'FUNCTION', 'VERSION', 'STATUS', 'ATTEMPTS', 'FAILED', 'LAST ERROR'],
        list.map((c) => [
          String(c.callNum),
          c.funcName,
          String(c.version ?? ''),
          c.status,
          String(c.attempts),
          ago(failedAt(c)),
          firstLine(c.error, 50),
        ]),
      );
      if (list.length === o.limit)
        out.note(
          `the newest ${o.limit}; more: zfaas dead-letters --limit ${Math.min(o.limit * 5, 10_000)}${o.function ? ` --function ${o.function}` : ''}`,
        );
      out.note('replay one: zfaas dead-letters replay CALL; dismiss one: zfaas dead-letters rm CALL; see one: zfaas call CALL');
    }),
  );

  examples(
    dl
      .command('replay <callNum>')
      .description("run a dead letter again as a new call with the same params (default: the function's current version)")
      .option('--same-version', 'run the version the dead letter ran, not the current one')
      .option('--version <n>', 'run this version of the function', positiveInt('--version'))
      .option('--json', 'print the new call as JSON')
      .showHelpAfterError(hint('replay')),
    ['zfaas dead-letters replay 42', 'zfaas dead-letters replay 42 --same-version', 'zfaas dead-letters replay 42 --version 3 --json'],
  ).action(
    act(deps, async (n: string, o: ReplayOpts, cmd: Command) => {
      const callNum = positiveInt('call number')(n);
      const version = replayVersion(o);
      const c = await (await deps.client(cmd)).replayDeadLetter(callNum, version);
      if (o.json) return out.json(c);
      out.print(`replayed call ${callNum} as call ${c.callNum} (${target(c)})`);
      out.note(`follow it: zfaas call ${c.callNum}; its logs: zfaas logs ${c.callNum}`);
    }),
  );

  examples(
    dl
      .command('rm <callNum>')
      .alias('dismiss')
      .description('take a dead letter off the list without replaying it (the call itself stays readable)')
      .option('--json', 'print the dismissed call as JSON')
      .showHelpAfterError(hint('rm')),
    ['zfaas dead-letters rm 42'],
  ).action(
    act(deps, async (n: string, o: { json?: boolean }, cmd: Command) => {
      const c = await (await deps.client(cmd)).dismissDeadLetter(positiveInt('call number')(n));
      if (o.json) return out.json(c);
      out.print(`dismissed dead letter ${c.callNum} (${target(c)}); "zfaas call ${c.callNum}" still shows it`);
    }),
  );
}
