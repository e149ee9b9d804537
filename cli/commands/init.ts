// init NAME --template node|python|java|go|lambda|openwhisk|openfaas|gcf (or --runtime node|python|java|go): a function
// folder that deploys as is; the platform templates also write the zfaas.json `zfaas deploy` reads.
import { Option, type Command } from 'commander';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { NAME_RE } from '../../common/model.js';
import { CliError, UsageError } from '../client/errors.js';
import {
  TEMPLATE_RUNTIMES,
  TEMPLATES,
  isWebTemplate,
  templateFiles,
  templateRuntime,
  type Template,
  type TemplateRuntime,
} from '../client/templates.js';
import { act, clientCommand, examples, type Deps } from './common.js';

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/** The template --template and --runtime ask for together; a usage error when they disagree or both are missing. */
export function chooseTemplate(o: { template?: Template; runtime?: TemplateRuntime }): Template {
  if (o.template === undefined && o.runtime === undefined)
    throw new UsageError(`give --template (${TEMPLATES.join(', ')}) or --runtime (${TEMPLATE_RUNTIMES.join(', ')})`);
  const template = o.template ?? o.runtime ?? 'node';
  if (o.runtime !== undefined && templateRuntime(template) !== o.runtime)
    throw new UsageError(`--template ${template} is written for the ${templateRuntime(template)} runtime, not ${o.runtime}`);
  return template;
}

export function initCommand(p: Command, deps: Deps): void {
  const { out } = deps;
  examples(
    clientCommand(
      p,
      'init <name>',
      "create a function folder ready to deploy: zfaas's own form (node, python, java, go) or a platform's (lambda, openwhisk, openfaas, gcf)",
    )
      .addOption(
        new Option(
          '-t, --template <template>',
          "what to write: node, python, java or go (params in, a value out), or a web hello-world in a platform's own form, node runtime",
        ).choices([...TEMPLATES]),
      )
      .addOption(
        new Option('-r, --runtime <runtime>', 'the built-in runtime: same as --template node, python, java or go').choices([
          ...TEMPLATE_RUNTIMES,
        ]),
      )
      .option('-d, --dir <dir>', 'where to create it (default ./NAME)')
      .addHelpText(
        'after',
        '\nTemplates lambda, openwhisk, openfaas and gcf also write zfaas.json, the defaults "zfaas deploy DIR" reads\n(runtime, format, handler; flags given to deploy win), and answer web requests: invoke them with\n--path, -q, -H or -d (see "zfaas invoke --help").',
      ),
    [
      'zfaas init hello --runtime node && zfaas deploy hello ./hello && zfaas invoke hello name=ana',
      'zfaas init greet --template python --dir functions/greet',
      'zfaas init sum --template go && zfaas deploy sum ./sum --runtime go && zfaas invoke sum name=ana',
      'zfaas init api --template lambda && zfaas deploy api ./api && zfaas invoke api -q name=ana -i',
      'zfaas init action --template openwhisk   # also: openfaas, gcf',
      'zfaas init web --template dockerfile && zfaas deploy web ./web && zfaas invoke web name=ana',
    ],
  ).action(
    act(deps, async (name: string, o: { template?: Template; runtime?: TemplateRuntime; dir?: string }) => {
      if (!NAME_RE.test(name))
        throw new UsageError(`invalid name "${name}": use letters, digits, ".", "_" or "-", starting with a letter or digit`);
      const template = chooseTemplate(o);
      const dir = o.dir ?? name;
      if (!(await isEmptyOrMissing(dir))) throw new CliError(`${dir} already exists and is not empty`);
      await mkdir(dir, { recursive: true });
      const files = templateFiles(name, template);
      for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text, { flag: 'wx' });
      const shown = relative(process.cwd(), dir) || '.';
      const arg = shown.startsWith('.') || shown.startsWith('/') ? shown : `./${shown}`;
      out.print(`created ${shown}/ (${template}): ${Object.keys(files).join(', ')}`);
      out.note(
        template === 'dockerfile'
          ? `next:\n  zfaas deploy ${name} ${arg}   # builds the image from its Dockerfile, then deploys it\n  zfaas invoke ${name} name=ana`
          : isWebTemplate(template)
            ? `next:\n  zfaas deploy ${name} ${arg}   # runtime, format and handler from zfaas.json\n  zfaas invoke ${name} -q name=ana -i`
            : `next:\n  zfaas deploy ${name} ${arg} --runtime ${templateRuntime(template)}\n  zfaas invoke ${name} name=ana`,
      );
    }),
  );
}
