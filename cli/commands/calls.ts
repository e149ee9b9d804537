// calls (newest first, filtered, paged), call N (with its earlier failed runs, its dead-letter state and its
// callback's deliveries), cancel N (logs N is in logs.ts)
import { InvalidArgumentError, type Command } from 'commander';
import { CALL_STATUSES, type Call, type CallStatus, type Callback } from '../../common/model.js';
import { printable } from '../client/errors.js';
import { ago, duration, firstLine, prettyResult, preview, until } from '../client/format.js';
import type { Output } from '../client/output.js';
import { act, clientCommand, examples, positiveInt, type Deps } from './common.js';

interface CallsOpts {
  function?: string;
  status?: CallStatus;
  limit: number;
  before?: number;
  json?: boolean;
}

const statusArg = (v: string): CallStatus => {
  const s = v.toUpperCase();
  if (!(CALL_STATUSES as readonly string[]).includes(s)) throw new InvalidArgumentError(`must be one of ${CALL_STATUSES.join(', ')}`);
  return s as CallStatus;
};

const target = (c: Call): string => (c.version ? `${c.funcName}@${c.version}` : c.funcName);
const outcome = (c: Call): string => (c.status === 'DONE' ? preview(c.result) : preview(c.error));

function deadLetterLine(c: Call): string | undefined {
  switch (c.deadLetter) {
    case 'listed':
      return `listed: replay it with "zfaas dead-letters replay ${c.callNum}", or dismiss it with "zfaas dead-letters rm ${c.callNum}"`;
    case 'replayed':
      return c.replayedAs ? `replayed as call ${c.replayedAs} ("zfaas call ${c.replayedAs}")` : 'replayed';
    case 'dismissed':
      return 'dismissed';
    default:
      return undefined;
  }
}

function callbackLine(cb: Callback): string {
  const tries = cb.deliveries.length;
  const state =
    cb.state === 'waiting'
      ? 'waiting for the call to end'
      : cb.state === 'pending'
        ? `pending${tries ? ` after ${tries} tr${tries === 1 ? 'y' : 'ies'}` : ''}${cb.nextAt ? `, next try ${until(cb.nextAt)}` : ''}`
        : cb.state === 'delivered'
          ? 'delivered'
          : `failed after ${tries} tr${tries === 1 ? 'y' : 'ies'}`;
  return `${printable(cb.url)}: ${state}`;
}

/** One call for a person: its fields, its earlier failed runs, its result or error, its callback's tries. */
export function showCall(out: Output, c: Call): void {
  const waiting = c.status === 'PENDING' && c.retryAt !== undefined;
  const dead = deadLetterLine(c);
  out.fields([
    ['call', String(c.callNum)],
    ['function', target(c)],
    ['status', c.status],
    ...(waiting ? [['retry at', `${c.retryAt} (${until(c.retryAt)})`] as const] : []),
    ['node', c.node ?? ''],
    ['attempts', String(c.attempts)],
    ['created', `${c.createdAt} (${ago(c.createdAt)})`],
    ['duration', duration(c.durationMs)],
    ['params', JSON.stringify(c.params) ?? ''],
    ...(c.replayOf !== undefined ? [['replay of', `call ${c.replayOf} ("zfaas call ${c.replayOf}")`] as const] : []),
    ...(dead !== undefined ? [['dead letter', dead] as const] : []),
    ...(c.callback ? [['callback', callbackLine(c.callback)] as const] : []),
  ]);
  const history = c.history ?? [];
  if (history.length) {
    out.print(waiting ? 'failed runs (another follows):' : 'earlier runs:');
    out.table(
      ['ATTEMPT', 'STATUS', 'NODE', 'FINISHED', 'DURATION', 'ERROR'],
      history.map((h) => [String(h.attempt), h.status, preview(h.node, 14), ago(h.finishedAt), duration(h.durationMs), firstLine(h.error)]),
    );
  }
  if (c.status === 'DONE') out.print(`result:\n${prettyResult(c.result)}`);
  if (c.error) out.print(`error:\n${c.error.replace(/\n$/, '')}`);
  const deliveries = c.callback?.deliveries ?? [];
  if (deliveries.length) {
    out.print('callback deliveries:');
    out.table(
      ['TRY', 'AT', 'ANSWER'],
      deliveries.map((d, i) => [
        String(i + 1),
        `${d.at} (${ago(d.at)})`,
        [d.status !== undefined ? `HTTP ${d.status}` : '', firstLine(d.error)].filter(Boolean).join(': '),
      ]),
    );
  }
  if (c.logs) out.print(`logs: (zfaas logs ${c.callNum})`);
}

export function callCommands(p: Command, deps: Deps): void {
  const { out } = deps;

  examples(
    clientCommand(p, 'calls', 'list calls, newest first')
      .option('--function <name>', 'only the calls of this function')
      .option('--status <status>', `only calls in this state (${CALL_STATUSES.join(', ')})`, statusArg)
      .option('-n, --limit <n>', 'how many', positiveInt('--limit'), 20)
      .option('--before <callNum>', 'the page of calls older than this call number', positiveInt('--before'))
      .option('--json', 'print JSON'),
    ['zfaas calls', 'zfaas calls --function dice --status error --limit 5', 'zfaas calls --before 120   # the next page'],
  ).action(
    act(deps, async (o: CallsOpts, cmd: Command) => {
      const list = await (await deps.client(cmd)).calls({ funcName: o.function, status: o.status, limit: o.limit, before: o.before });
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note('no calls');
      out.table(
        ['CALL', 'FUNCTION', 'STATUS', 'NODE', 'DURATION', 'CREATED', 'RESULT / ERROR'],
        list.map((c) => [
          String(c.callNum),
          target(c),
          c.status,
          preview(c.node, 14),
          duration(c.durationMs),
          ago(c.createdAt),
          outcome(c),
        ]),
      );
      const last = list[list.length - 1];
      if (list.length === o.limit && last && last.callNum > 1)
        out.note(`more: zfaas calls --before ${last.callNum}${o.function ? ` --function ${o.function}` : ''}`);
    }),
  );

  examples(
    clientCommand(
      p,
      'call <callNum>',
      'show one call: status, result, error, node, timings, earlier failed runs, dead-letter state, callback deliveries',
    ).option('--json', 'print JSON'),
    ['zfaas call 42', 'zfaas call 42 --json | jq -r .result'],
  ).action(
    act(deps, async (n: string, o: { json?: boolean }, cmd: Command) => {
      const c = await (await deps.client(cmd)).call(positiveInt('call number')(n));
      if (o.json) return out.json(c);
      showCall(out, c);
    }),
  );

  examples(
    clientCommand(p, 'cancel <callNum>', 'stop a queued or running call: it ends ERROR (cancelled), never runs again').option(
      '--json',
      'print JSON',
    ),
    ['zfaas cancel 42'],
  ).action(
    act(deps, async (n: string, o: { json?: boolean }, cmd: Command) => {
      const c = await (await deps.client(cmd)).cancel(positiveInt('call number')(n));
      if (o.json) return out.json(c);
      out.print(`cancelled call ${c.callNum} (${target(c)})`);
    }),
  );
}
