// invoke NAME[@VERSION] [key=value ...] [-]: waits for the result and prints it; exit code tells the end.
import type { Command } from 'commander';
import type { Call } from '../../common/model.js';
import { EXIT, printable, UsageError } from '../client/errors.js';
import { prettyResult } from '../client/format.js';
import { readParams } from '../client/params.js';
import { runBatch } from './batch.js';
import { act, clientCommand, examples, type Deps } from './common.js';

interface InvokeOpts {
  params?: string;
  file?: string;
  async?: boolean;
  json?: boolean;
  logs?: boolean;
  batch?: string;
}

const TARGET_RE = /^[^@\s]+(@[1-9]\d*)?$/;

/** The exit code a finished (or unfinished) call maps to. */
export function callExitCode(c: Call): number {
  if (c.status === 'DONE') return EXIT.OK;
  if (c.status === 'ERROR') return EXIT.CALL_ERROR;
  if (c.status === 'TIMEOUT') return EXIT.CALL_TIMEOUT;
  return EXIT.CALL_PENDING;
}

export function invokeCommand(p: Command, deps: Deps): void {
  const { out } = deps;
  examples(
    clientCommand(p, 'invoke <function> [params...]', 'call a function (NAME or NAME@VERSION) and print its result')
      .option('-p, --params <json>', 'the params as a JSON document')
      .option('-f, --file <file>', 'read the params (JSON) from a file ("-" for stdin)')
      .option('--async', 'do not wait: print the call number (see "zfaas call N")')
      .option('--json', 'print the whole call as JSON instead of the result')
      .option('--logs', "also print the function's own output (its logs) on stderr")
      .option(
        '-b, --batch <file>',
        'fan out: one call per params item of FILE (a JSON array or JSON lines; "-" for stdin), a progress bar, then a summary',
      )
      .addHelpText(
        'after',
        '\nParams: key=value pairs (values parsed as JSON when they are JSON, else strings), --params, --file,\nor stdin ("-", or piped in). With none of these the params are {}.\n\nWith --batch, the exit code is 3 when any call failed (4 when every failure was a TIMEOUT).\n\nExit codes: 0 DONE, 3 ERROR, 4 TIMEOUT, 5 not finished yet, 1 refused by the API, 2 bad usage, 69 API unreachable.',
      ),
    [
      'zfaas invoke hello name=ana',
      'zfaas invoke dice --params \'{"roll":"4d6"}\'',
      'zfaas invoke hello@1 --file params.json',
      'echo \'{"n": 3}\' | zfaas invoke fib',
      'zfaas invoke slow --async',
      'zfaas invoke resize --batch images.jsonl',
    ],
  ).action(
    act(deps, async (target: string, words: string[], o: InvokeOpts, cmd: Command) => {
      if (!TARGET_RE.test(target)) throw new UsageError(`invalid function "${target}": expected NAME or NAME@VERSION`);
      if (o.batch !== undefined) {
        if (words.length || o.params !== undefined || o.file !== undefined || o.async)
          throw new UsageError('--batch takes the params from its file: drop --params, --file, --async and key=value words');
        return runBatch(deps, cmd, target, o.batch, o.json === true);
      }
      const params = await readParams({ params: o.params, file: o.file, words, stdin: deps.stdin });
      const api = await deps.client(cmd);
      const { call } = await api.invoke(target, params, !o.async);
      if (o.async) {
        if (o.json) out.json(call);
        else out.print(String(call.callNum));
        return EXIT.OK;
      }
      if (o.json) out.json(call);
      else if (call.status === 'DONE' && call.result !== '') out.print(prettyResult(call.result));
      if (o.logs && call.logs) out.note(call.logs);
      const code = callExitCode(call);
      if (call.status === 'ERROR' || call.status === 'TIMEOUT') {
        out.note(`zfaas: call ${call.callNum} ended in ${call.status}: ${printable((call.error ?? '').trim(), false) || 'no error text'}`);
      } else if (code === EXIT.CALL_PENDING) {
        out.note(`zfaas: call ${call.callNum} is still ${call.status}; see "zfaas call ${call.callNum}" later`);
      }
      return code;
    }),
  );
}
