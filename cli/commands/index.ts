// Registers the client commands (everything that talks to the REST API) on the zfaas program.
import { CommanderError, Option, type Command } from 'commander';
import { EXIT } from '../client/errors.js';
import { streamOutput } from '../client/output.js';
import { batchCommand } from './batch.js';
import { callCommands } from './calls.js';
import { makeDeps, type Deps } from './common.js';
import { configCommands } from './config.js';
import { deadLetterCommands } from './dead-letters.js';
import { functionCommands } from './functions.js';
import { initCommand } from './init.js';
import { invokeCommand } from './invoke.js';
import { logsCommand } from './logs.js';
import { nodeCommands } from './nodes.js';
import { runtimeCommands } from './runtimes.js';
import { scheduleCommands } from './schedules.js';
import { tenancyCommands } from './tenancy.js';
import { triggerCommands } from './triggers.js';

export function defaultDeps(): Deps {
  return makeDeps({
    out: streamOutput(process.stdout, process.stderr),
    env: process.env,
    stdin: process.stdin,
    setExitCode: (code) => {
      process.exitCode = code;
    },
  });
}

/** Usage errors exit 2 (help and --version exit 0), on every command, service commands included. */
function usageExitCodes(cmd: Command): void {
  cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? EXIT.OK : EXIT.USAGE);
  });
  for (const sub of cmd.commands) usageExitCodes(sub);
}

export function registerClientCommands(p: Command, deps: Deps = defaultDeps()): void {
  p.addOption(
    new Option('--api <url>', 'zfaas API address for client commands (env ZFAAS_API, else the config file, else http://127.0.0.1:3000)'),
  );
  p.addOption(new Option('--token <token>', 'bearer token or namespace key for the API (env ZFAAS_TOKEN, else the config file)'));
  p.addOption(
    new Option(
      '--namespace <name>',
      "namespace the client commands act in, sent as X-Zfaas-Namespace (env ZFAAS_NAMESPACE, else the config file; unset: the key's own, the operator's default)",
    ),
  );
  runtimeCommands(p, deps);
  functionCommands(p, deps);
  invokeCommand(p, deps);
  callCommands(p, deps);
  logsCommand(p, deps);
  batchCommand(p, deps);
  deadLetterCommands(p, deps);
  scheduleCommands(p, deps);
  triggerCommands(p, deps);
  nodeCommands(p, deps);
  tenancyCommands(p, deps);
  initCommand(p, deps);
  configCommands(p, deps);
  usageExitCodes(p);
}
