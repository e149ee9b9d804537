// A client command run in this process, as its unit tests drive it: its printed lines, its notes (stderr)
// and its exit code, with the HTTP client the test gives (or one that refuses to send anything).
import { Command } from 'commander';
import { Readable } from 'node:stream';
import type { Output } from '../../cli/client/output.js';
import { makeDeps } from '../../cli/commands/common.js';
import { registerClientCommands } from '../../cli/commands/index.js';

export interface CliRun {
  code: number;
  printed: string[];
  notes: string[];
}

export async function runCli(args: string[], o: { env?: Record<string, string>; fetchFn?: typeof fetch } = {}): Promise<CliRun> {
  const r: CliRun = { code: 0, printed: [], notes: [] };
  const out: Output = {
    print: (t) => void r.printed.push(t),
    note: (t) => void r.notes.push(t),
    json: () => undefined,
    table: () => undefined,
    fields: () => undefined,
    progress: () => undefined,
  };
  const p = new Command('zfaas');
  registerClientCommands(
    p,
    makeDeps({
      out,
      env: o.env ?? {},
      stdin: Object.assign(Readable.from([]), { isTTY: true }),
      fetchFn:
        o.fetchFn ??
        (async () => {
          throw new Error('nothing may be sent');
        }),
      setExitCode: (c) => {
        r.code = c;
      },
    }),
  );
  await p.parseAsync(args, { from: 'user' });
  return r;
}
