// invoke NAME[@VERSION] [key=value ...] [-]: waits for the result and prints it; exit code tells the end.
// With --method, --path, -q, -H or -d it is a web request to the function's own path instead (client/web.ts).
import type { Command } from 'commander';
import type { Call } from '../../common/model.js';
import { FAULTS, faultOf } from '../../common/faults.js';
import { EXIT, printable, UsageError } from '../client/errors.js';
import { prettyResult } from '../client/format.js';
import { readParams } from '../client/params.js';
import { isWebForm, streamSink, webInvoke, type ByteSink, type WebFlags } from '../client/web.js';
import { runBatch } from './batch.js';
import { act, clientCommand, collect, examples, type Deps } from './common.js';

interface InvokeOpts extends WebFlags {
  params?: string;
  file?: string;
  async?: boolean;
  json?: boolean;
  logs?: boolean;
  batch?: string;
  callbackUrl?: string;
}

const TARGET_RE = /^[^@\s]+(@[1-9]\d*)?$/;

/** --callback-url as the API takes it: an http(s) URL (whether the API allows that host is its own check). */
export function callbackUrl(v: string): string {
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new UsageError(`--callback-url: expected an http:// or https:// URL, got ${JSON.stringify(v)}`);
  return v;
}

/** The exit code a finished (or unfinished) call maps to. */
export function callExitCode(c: Call): number {
  if (c.status === 'DONE') return EXIT.OK;
  const fault = faultOf(c); // by its kind (common/faults.ts), never by the words of its error
  return fault ? FAULTS[fault].exit : EXIT.CALL_PENDING;
}

/** What the web form writes its answer to and sends with (tests give their own). */
export interface WebIo {
  stdout: ByteSink;
  fetchFn: typeof fetch;
}

const defaultWebIo = (): WebIo => ({ stdout: streamSink(process.stdout), fetchFn: (input, init) => fetch(input, init) });

// What the key=value form takes that a web request does not.
function notWithWeb(words: string[], o: InvokeOpts): string[] {
  const given: Array<[boolean, string]> = [
    [words.length > 0, 'key=value words'],
    [o.params !== undefined, '--params'],
    [o.file !== undefined, '--file'],
    [o.async === true, '--async'],
    [o.batch !== undefined, '--batch'],
    [o.json === true, '--json'],
    [o.logs === true, '--logs'],
  ];
  return given.filter(([g]) => g).map(([, name]) => name);
}

export function invokeCommand(p: Command, deps: Deps, io: WebIo = defaultWebIo()): void {
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
      .option(
        '--callback-url <url>',
        'when the call ends, the API POSTs its final record (as --json prints it) to this URL; "zfaas call N" shows the deliveries',
      )
      .option('-X, --method <method>', 'web form: the HTTP method (default GET, POST with -d)')
      .option('--path <path>', 'web form: the path below the function, e.g. /users/1 (default: its root)')
      .option('-q, --query <key=value>', 'web form: a query parameter (repeatable)', collect)
      .option('-H, --header <"Name: value">', 'web form: a request header (repeatable)', collect)
      .option('-d, --data <data>', 'web form: the request body as is: text, @FILE, or @- for stdin')
      .option('-i, --include', "web form: print the status line and the headers before the body, as curl -i, and end the body's line")
      .addHelpText(
        'after',
        '\nParams: key=value pairs (values parsed as JSON when they are JSON, else strings), --params, --file,\nor stdin ("-", or piped in). With none of these the params are {}.\n\nWith --batch, the exit code is 3 when any call failed (4 when every failure was a TIMEOUT).\n\nWeb form: with --method, --path, -q, -H or -d, invoke sends that HTTP request to the function\'s web\npath (/function/NAME[@VERSION]/PATH?QUERY), the way a Lambda, OpenWhisk, OpenFaaS or Cloud Functions\nhandler expects one, and prints the body of the response the function chose exactly as it came (no\nnewline added; with -i, after its head, and a newline after a body that does not end with one): exit 0\nwhatever its status. -d sends its bytes as they are, with no Content-Type unless\n-H gives one. The API token goes as Authorization: Bearer, unless -H gives an Authorization of its own.\n\nExit codes: 0 DONE, 3 ERROR, 4 TIMEOUT, 5 not finished yet, 1 refused by the API, 2 bad usage, 69 API unreachable.',
      ),
    [
      'zfaas invoke hello name=ana',
      'zfaas invoke dice --params \'{"roll":"4d6"}\'',
      'zfaas invoke hello@1 --file params.json',
      'echo \'{"n": 3}\' | zfaas invoke fib',
      'zfaas invoke slow --async',
      'zfaas invoke report --async --callback-url https://hooks.example.com/zfaas',
      'zfaas invoke resize --batch images.jsonl',
      'zfaas invoke api --path /users/1 -q fields=name -i',
      'zfaas invoke api -X PUT --path /users/1 -H "Content-Type: application/json" -d \'{"name":"ana"}\'',
      'zfaas invoke thumbs --path /resize -H "Content-Type: image/png" -d @photo.png > thumb.png',
    ],
  ).action(
    act(deps, async (target: string, words: string[], o: InvokeOpts, cmd: Command) => {
      if (!TARGET_RE.test(target)) throw new UsageError(`invalid function "${target}": expected NAME or NAME@VERSION`);
      if (isWebForm(o)) {
        // The web form goes to the function's own path and answers with its response; only /invokeFunction
        // (the key=value form) takes a callback.
        if (o.callbackUrl !== undefined)
          throw new UsageError(
            "--callback-url goes with a JSON call (key=value, --params, --file), not a web request (--method, --path, -q, -H, -d), which answers with the function's own response: drop one or the other",
          );
        const others = notWithWeb(words, o);
        if (others.length)
          throw new UsageError(`a web request (--method, --path, -q, -H, -d) takes no ${others.join(', ')}: drop them, or the web flags`);
        return webInvoke({
          target,
          flags: o,
          stdin: deps.stdin,
          config: () => deps.config(cmd),
          fetchFn: io.fetchFn,
          sink: io.stdout,
          note: (t) => out.note(t),
        });
      }
      if (o.include) throw new UsageError('-i shows the answer to a web request: add --path / (or --method, -q, -H, -d)');
      if (o.batch !== undefined) {
        if (words.length || o.params !== undefined || o.file !== undefined || o.async)
          throw new UsageError('--batch takes the params from its file: drop --params, --file, --async and key=value words');
        if (o.callbackUrl !== undefined)
          throw new UsageError('--callback-url goes with one call: a batch takes none (follow it with "zfaas batch ID")');
        return runBatch(deps, cmd, target, o.batch, o.json === true);
      }
      const callback = o.callbackUrl === undefined ? {} : { callbackUrl: callbackUrl(o.callbackUrl) };
      const params = await readParams({ params: o.params, file: o.file, words, stdin: deps.stdin });
      const api = await deps.client(cmd);
      const { call } = await api.invoke(target, params, !o.async, callback);
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
