// init NAME --runtime node|python: a function folder that deploys as is
import { Option, type Command } from 'commander';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { NAME_RE } from '../../common/model.js';
import { CliError, UsageError } from '../client/errors.js';
import { TEMPLATE_RUNTIMES, templateFiles, type TemplateRuntime } from '../client/templates.js';
import { act, clientCommand, examples, type Deps } from './common.js';

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

export function initCommand(p: Command, deps: Deps): void {
  const { out } = deps;
  examples(
    clientCommand(p, 'init <name>', 'create a function folder (handler, dependency file, .zfaasignore) ready to deploy')
      .addOption(
        new Option('-r, --runtime <runtime>', 'the built-in runtime it is written for')
          .choices([...TEMPLATE_RUNTIMES])
          .makeOptionMandatory(),
      )
      .option('-d, --dir <dir>', 'where to create it (default ./NAME)'),
    [
      'zfaas init hello --runtime node && zfaas deploy hello ./hello && zfaas invoke hello name=ana',
      'zfaas init greet --runtime python --dir functions/greet',
    ],
  ).action(
    act(deps, async (name: string, o: { runtime: TemplateRuntime; dir?: string }) => {
      if (!NAME_RE.test(name))
        throw new UsageError(`invalid name "${name}": use letters, digits, ".", "_" or "-", starting with a letter or digit`);
      const dir = o.dir ?? name;
      if (!(await isEmptyOrMissing(dir))) throw new CliError(`${dir} already exists and is not empty`);
      await mkdir(dir, { recursive: true });
      const files = templateFiles(name, o.runtime);
      for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text, { flag: 'wx' });
      const shown = relative(process.cwd(), dir) || '.';
      out.print(`created ${shown}/ (${o.runtime}): ${Object.keys(files).join(', ')}`);
      out.note(
        `next:\n  zfaas deploy ${name} ${shown.startsWith('.') || shown.startsWith('/') ? shown : `./${shown}`} --runtime ${o.runtime}\n  zfaas invoke ${name} name=ana`,
      );
    }),
  );
}
