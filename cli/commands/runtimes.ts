// register-runtime, runtimes, runtime NAME, delete-runtime NAME
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { RuntimeInputSchema, type Runtime } from '../../common/model.js';
import { UsageError, errText } from '../client/errors.js';
import { preview } from '../client/format.js';
import { act, clientCommand, examples, type Deps } from './common.js';

interface RegisterOpts {
  image?: string;
  path?: string;
  dependencies?: string;
  run?: string;
  loader?: string;
  file?: string;
  json?: boolean;
}

async function readDefinition(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --file ${file}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--file ${file} is not valid JSON: ${errText(e)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`--file ${file} must hold a JSON object`);
  return raw as Record<string, unknown>;
}

export function runtimeCommands(p: Command, deps: Deps): void {
  const { out } = deps;

  examples(
    clientCommand(
      p,
      'register-runtime [name]',
      'register (or replace) a runtime: a Docker image, its dependencies command and its run command',
    )
      .option('--image <image>', 'Docker image the functions run in')
      .option('--path <dir>', 'where the function archive is unpacked in the container (default /ws)')
      .option('--dependencies <cmd>', 'runs once per function version, in the function folder (e.g. "pip3 install -r requirements.txt")')
      .option('--run <cmd>', 'runs per call: params on stdin and in ZFAAS_PARAMS, stdout is the result')
      .option('--loader <cmd>', 'optional long-lived loader speaking JSON lines (as the built-in runtimes do)')
      .option('-f, --file <runtime.json>', 'read the definition from a JSON file; flags and NAME override its fields')
      .option('--json', 'print the registered runtime as JSON'),
    [
      'zfaas register-runtime pythonruntime --image pythonruntime --path /ws --dependencies "pip3 install -r requirements.txt" --run "python3 test.py"',
      'zfaas register-runtime --file runtimes/node/runtime.json',
    ],
  ).action(
    act(deps, async (name: string | undefined, o: RegisterOpts, cmd: Command) => {
      if (!o.file && (!o.image || !o.run))
        throw new UsageError('give --image and --run (and usually --path, --dependencies), or --file runtime.json');
      const fromFile = o.file ? await readDefinition(o.file) : {};
      const flags = { name, image: o.image, path: o.path, dependencies: o.dependencies, run: o.run, loader: o.loader };
      const merged = { ...fromFile, ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) };
      // Checked here first so a typo is reported without a round trip (the API checks again).
      const input = RuntimeInputSchema.safeParse(merged);
      if (!input.success) {
        const i = input.error.issues[0];
        throw new UsageError(`invalid runtime: ${i?.path.join('.') || 'definition'}: ${i?.message ?? 'bad value'}`);
      }
      const rt = await (await deps.client(cmd)).registerRuntime(input.data);
      if (o.json) out.json(rt);
      else out.print(`registered runtime ${rt.name} (image ${rt.image})`);
    }),
  );

  examples(clientCommand(p, 'runtimes', 'list the registered runtimes').option('--json', 'print JSON'), [
    'zfaas runtimes',
    'zfaas runtimes --json | jq -r ".[].name"',
  ]).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).runtimes();
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note('no runtimes yet; add one with: zfaas register-runtime NAME --image IMG --run CMD');
      out.table(
        ['NAME', 'IMAGE', 'PATH', 'DEPENDENCIES', 'RUN'],
        list.map((r: Runtime) => [r.name, r.image, r.path, preview(r.dependencies, 30), preview(r.run, 40)]),
      );
    }),
  );

  examples(clientCommand(p, 'runtime <name>', 'show one runtime').option('--json', 'print JSON'), ['zfaas runtime python']).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      const rt = await (await deps.client(cmd)).runtime(name);
      if (o.json) return out.json(rt);
      out.fields([
        ['name', rt.name],
        ['image', rt.image],
        ['path', rt.path],
        ['dependencies', rt.dependencies],
        ['run', rt.run],
        ...(rt.loader ? ([['loader', rt.loader]] as const) : []),
      ]);
    }),
  );

  examples(clientCommand(p, 'delete-runtime <name>', 'remove a runtime (refused while functions use it)'), [
    'zfaas delete-runtime pythonruntime',
  ]).action(
    act(deps, async (name: string, _o: unknown, cmd: Command) => {
      await (await deps.client(cmd)).deleteRuntime(name);
      out.print(`deleted runtime ${name}`);
    }),
  );
}
