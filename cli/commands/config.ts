// config: show where the CLI sends its requests; config set/unset KEY VALUE edits the config file
import { Argument, type Command } from 'commander';
import { CONFIG_KEYS, checkNamespace, normalizeApi, readConfigFile, writeConfigFile, type ConfigKey } from '../client/config.js';
import { act, clientCommand, examples, type Deps } from './common.js';

export function configCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  const config = examples(
    clientCommand(p, 'config', 'show the API address, token and namespace the CLI uses, and where they come from').option(
      '--json',
      'print JSON',
    ),
    [
      'zfaas config',
      'zfaas config set api http://10.0.0.5:3000',
      'zfaas config set token "$(cat token.txt)"',
      'zfaas config set namespace team-a',
    ],
  ).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const c = await deps.config(cmd);
      const view = {
        api: c.api,
        apiFrom: c.apiFrom,
        token: c.token ? 'set' : 'not set',
        ...(c.namespace ? { namespace: c.namespace } : {}),
        file: c.file,
      };
      if (o.json) return out.json(view);
      out.fields([
        ['api', `${c.api} (from ${c.apiFrom})`],
        ['token', view.token],
        ['namespace', c.namespace ?? "(not set: the key's own; the operator's default)"],
        ['config file', c.file],
      ]);
    }),
  );

  examples(
    config
      .command('set')
      .description('save a setting in the config file')
      .addArgument(new Argument('<key>', 'setting').choices([...CONFIG_KEYS]))
      .argument('<value>', 'its value'),
    ['zfaas config set api http://10.0.0.5:3000'],
  ).action(
    act(deps, async (key: ConfigKey, value: string, _o: unknown, cmd: Command) => {
      const file = (await deps.config(cmd)).file;
      const cfg = await readConfigFile(file);
      cfg[key] = key === 'api' ? normalizeApi(value) : key === 'namespace' ? checkNamespace(value, 'config set namespace') : value;
      await writeConfigFile(file, cfg);
      out.print(`${key} saved in ${file}`);
    }),
  );

  examples(
    config
      .command('unset')
      .description('remove a setting from the config file')
      .addArgument(new Argument('<key>', 'setting').choices([...CONFIG_KEYS])),
    ['zfaas config unset token'],
  ).action(
    act(deps, async (key: ConfigKey, _o: unknown, cmd: Command) => {
      const file = (await deps.config(cmd)).file;
      const cfg = await readConfigFile(file);
      delete cfg[key];
      await writeConfigFile(file, cfg);
      out.print(`${key} removed from ${file}`);
    }),
  );
}
