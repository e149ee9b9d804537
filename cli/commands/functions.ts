// deploy, functions, function NAME, rollback, delete
import { Option, type Command } from 'commander';
import { FunctionSettingsSchema, POLICIES, SECRET_NAME_RE, SETTING_LIMITS, type FunctionMeta } from '../../common/model.js';
import {
  BACKOFF_EXPECTED,
  MEMORY_EXPECTED,
  TIMEOUT_EXPECTED,
  readBackoff,
  readMemory,
  readTimeout,
  refuse,
  type Reading,
} from '../../common/units.js';
import { printable, UsageError } from '../client/errors.js';
import { ago, bytes, msSetting } from '../client/format.js';
import { withDeployDefaults } from '../pack/defaults.js';
import { guessRuntime, loadUpload } from '../pack/deploy.js';
import { act, clientCommand, collect, examples, positiveInt, positiveNumber, wholeNumber, type Deps } from './common.js';
import { builtLine, failedBuild, followBuild } from './build-follow.js';
import { deployImage, hasDockerfile, type ImageOpts } from './deploy-image.js';

interface DeployOpts {
  runtime?: string;
  timeout?: string;
  memory?: string;
  cpus?: number;
  pids?: number;
  policy?: string;
  env?: string[];
  handler?: string;
  network?: boolean;
  retry: boolean;
  /** As `--retries` takes it (a string; a number from elsewhere is read the same way). */
  retries?: string | number;
  /** As `--retry-backoff` takes it: 500ms, 2s, a plain number of seconds. */
  retryBackoff?: string | number;
  concurrency?: number;
  maxContainers?: number;
  containerConcurrency?: number;
  minWarm?: number;
  format?: string;
  public?: boolean;
  rateLimit?: number;
  /** Secret names: --secrets (repeatable, comma separated), or zfaas.json's list. */
  secrets?: string[] | string;
  json?: boolean;
  /** Follow the build until it ends (default; --no-wait: do not). */
  wait?: boolean;
}

// The calling conventions the API stores (--format's choices).
const FORMATS = FunctionSettingsSchema.shape.format.unwrap().options;
const RATE = SETTING_LIMITS.rateLimit;
const RETRIES = SETTING_LIMITS.retries;
const BACKOFF = SETTING_LIMITS.retryBackoff;
const RETRIES_EXPECTED = `a whole number of retries from ${RETRIES.min} to ${RETRIES.max} (unset: ${RETRIES.default})`;

const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*=/;

// --memory and --timeout read as the API reads them (common/units.ts), so "12x" is refused here, in the
// API's words, before anything is packed or sent; what is sent is the plain number (MiB, seconds).
function unitSetting(name: string, v: string | number, read: (v: unknown) => Reading): string {
  const r = read(v);
  if (!r.ok) throw new UsageError(`${name}: ${r.error}`);
  return String(r.value);
}

// As the API reads `retries` (api/handlers/functions.ts): a whole number within the limits.
function readRetries(v: unknown): Reading {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= RETRIES.min && n <= RETRIES.max ? { ok: true, value: n } : refuse(RETRIES_EXPECTED, v);
}

/** The settings as the multipart fields registerFunction reads; unset ones are left to the API. */
export function settingsFields(o: DeployOpts): Array<[string, string]> {
  const f: Array<[string, string]> = [];
  if (o.timeout !== undefined) f.push(['timeout', unitSetting('timeout', o.timeout, readTimeout)]);
  if (o.memory !== undefined) f.push(['memory', unitSetting('memory', o.memory, readMemory)]);
  if (o.cpus !== undefined) f.push(['cpus', String(o.cpus)]);
  if (o.pids !== undefined) f.push(['pids', String(o.pids)]);
  if (o.policy !== undefined) f.push(['policy', o.policy]);
  if (o.handler !== undefined) f.push(['handler', o.handler]);
  if (o.network) f.push(['network', 'true']);
  if (!o.retry) f.push(['retry', 'false']);
  if (o.retries !== undefined) f.push(['retries', unitSetting('retries', o.retries, readRetries)]);
  // Sent in milliseconds with their unit: a plain number would be read as seconds.
  if (o.retryBackoff !== undefined) f.push(['retryBackoff', `${unitSetting('retryBackoff', o.retryBackoff, readBackoff)}ms`]);
  if (o.concurrency !== undefined) f.push(['concurrency', String(o.concurrency)]);
  if (o.maxContainers !== undefined) f.push(['maxContainers', String(o.maxContainers)]);
  if (o.containerConcurrency !== undefined) f.push(['containerConcurrency', String(o.containerConcurrency)]);
  if (o.minWarm !== undefined) f.push(['minWarm', String(o.minWarm)]);
  if (o.format !== undefined) f.push(['format', o.format]);
  if (o.public) f.push(['public', 'true']);
  if (o.rateLimit !== undefined) f.push(['rateLimit', String(o.rateLimit)]);
  const secrets = (typeof o.secrets === 'string' ? [o.secrets] : (o.secrets ?? []))
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of secrets) {
    if (!SECRET_NAME_RE.test(s))
      throw new UsageError(
        `invalid --secrets name ${JSON.stringify(s)}: a secret name is letters, digits, ".", "_" or "-" (see "zfaas secret list")`,
      );
  }
  if (secrets.length) f.push(['secrets', secrets.join(',')]);
  for (const e of o.env ?? []) {
    if (!ENV_RE.test(e)) throw new UsageError(`invalid --env "${e}": expected KEY=VALUE with KEY made of letters, digits and _`);
    f.push(['env', e]);
  }
  return f;
}

const publicLine = (f: FunctionMeta): string =>
  f.settings.public ? `yes: its web path answers without the token, at most ${f.settings.rateLimit ?? RATE.default} requests/s` : 'no';

// Only a function that opted in to retries shows them: "retries 3 (first after 1s, doubling)".
const retriesPart = (f: FunctionMeta): string =>
  f.settings.retries > 0 ? `, retries ${f.settings.retries} (first after ${msSetting(f.settings.retryBackoff)}, doubling)` : '';

export const settingsLine = (f: FunctionMeta): string =>
  `timeout ${f.settings.timeout}s, memory ${f.settings.memory} MiB, cpus ${f.settings.cpus}, policy ${f.settings.policy ?? 'node default'}${f.settings.concurrency ? `, at most ${f.settings.concurrency} at once` : ''}${f.settings.maxContainers ? `, at most ${f.settings.maxContainers} containers per node` : ''}${(f.settings.containerConcurrency ?? 1) > 1 ? `, ${f.settings.containerConcurrency} calls per container` : ''}${f.settings.minWarm ? `, ${f.settings.minWarm} kept warm` : ''}${retriesPart(f)}`;

// A build in one line: its state, where it ran, what it made or what failed.
const buildState = (b: NonNullable<FunctionMeta['build']>): string =>
  b.state === 'failed'
    ? `failed: ${printable(b.error ?? '')}`
    : b.state === 'building'
      ? `building since ${ago(b.startedAt)}`
      : `ready${b.node ? ` (built on ${b.node}${b.size ? `, ${bytes(b.size)}` : ', nothing to install'})` : ''}`;

export function functionCommands(p: Command, deps: Deps): void {
  const { out } = deps;

  examples(
    clientCommand(
      p,
      'deploy <name> [path]',
      'deploy a function from a directory (packed, minus .zfaasignore) or a .tar.gz/.tar/.zip, an image (--image), or a directory with a Dockerfile (built into an image); each deploy is a new version',
    )
      .option('--image <ref>', 'deploy a container image that serves HTTP on $PORT instead of an archive (see docs/functions.md)')
      .option('--port <n>', 'the port the image serves on, given to it as $PORT (default 8080)', positiveInt('--port'))
      .option('--readiness <duration>', "how long the image's server has to accept connections (default 10s)")
      .option('--registry <host>', 'push a built image to this registry (the one the nodes pull from) before deploying it')
      .option(
        '-r, --runtime <runtime>',
        "runtime to run it with (default: the function's current runtime, else guessed: package.json/index.js -> node, handler.py/main.py/requirements.txt -> python)",
      )
      .option('--timeout <duration>', `call time limit: ${TIMEOUT_EXPECTED}; no unit is seconds (default 30)`)
      .option('--memory <size>', `memory limit: ${MEMORY_EXPECTED}; no unit is MiB (default 256)`)
      .option('--cpus <n>', 'CPU limit, may be fractional (default 1)', positiveNumber('--cpus'))
      .option('--pids <n>', 'process-count limit (default 128)', positiveInt('--pids'))
      .addOption(new Option('--policy <policy>', "preload policy (default: the node's)").choices([...POLICIES]))
      .option('-e, --env <KEY=VALUE>', 'environment variable for the function (repeatable)', collect)
      .option('--handler <FILE.EXPORT>', 'entry point, e.g. function.handler (built-in runtimes)')
      .option('--network', 'allow network access from the function (off by default)')
      .option('--no-retry', 'never run a call again after its node died')
      .option(
        '--retries <n>',
        `run a call again when a run ends in ERROR or TIMEOUT, up to n more times, ${RETRIES.min} to ${RETRIES.max} (default ${RETRIES.default}); one that fails them all is a dead letter (see "zfaas dead-letters")`,
      )
      .option(
        '--retry-backoff <duration>',
        `wait before the first retry, doubling for each next one: ${BACKOFF_EXPECTED} (default ${msSetting(BACKOFF.default)})`,
      )
      .option(
        '--concurrency <n>',
        'at most this many calls of it running at once across the cluster (default: no limit)',
        positiveInt('--concurrency'),
      )
      .option(
        '--max-containers <n>',
        'at most this many containers of it on each node; more of its calls there wait for one (default: the node limit)',
        positiveInt('--max-containers'),
      )
      .option(
        '--container-concurrency <n>',
        'at most this many of its calls run at once in one of its containers, for a function that waits on I/O (node and python; default 1)',
        positiveInt('--container-concurrency'),
      )
      .option(
        '--min-warm <n>',
        'keep at least this many containers of it loaded across the nodes, idle or not: no cold start for that many calls at once (default 0: scale to zero)',
        wholeNumber('--min-warm'),
      )
      .addOption(
        new Option('--format <format>', 'calling convention of its handler (default: auto, told from the handler)').choices([...FORMATS]),
      )
      .option('--public', 'its web path (/function/NAME/...) answers without the API token (off by default)')
      .option(
        '--rate-limit <n>',
        `web requests per second it takes when public, ${RATE.min} to ${RATE.max} (default ${RATE.default})`,
        positiveInt('--rate-limit'),
      )
      .option(
        '--secrets <names>',
        'secrets of its namespace it reads as files /var/zfaas/secrets/NAME, comma separated (repeatable; see "zfaas secret")',
        collect,
      )
      .option('--no-wait', "answer once uploaded, without following the build (the runtime's dependencies step)")
      .option('--json', 'print the new version as JSON'),
    [
      'zfaas deploy hello ./hello --runtime node',
      'zfaas deploy dice ../runtimes/python/dice/python.tar.gz --runtime pythonruntime --timeout 10s --memory 128m',
      'zfaas deploy hello ./hello --env GREETING=hi --env LANG=es --policy function',
      'zfaas deploy api ./api --format lambda --public --rate-limit 200',
      'zfaas deploy charge ./charge --retries 3 --retry-backoff 500ms',
      'zfaas deploy api ./api --secrets db-password,api-token',
      'zfaas deploy web --image acme/web:1.4 --port 3000',
      'zfaas deploy web ./web            # a folder with a Dockerfile: built, then deployed',
      'zfaas deploy web ./web --registry registry.local:5000',
    ],
  ).action(
    act(deps, async (name: string, path: string | undefined, o: DeployOpts & ImageOpts, cmd: Command) => {
      // DIR/zfaas.json's runtime, format, handler, ...: where no flag was given.
      if (path !== undefined && o.image === undefined) o = await withDeployDefaults(path, o);
      // An image (--image), or a folder with a Dockerfile and no runtime: built, then deployed as an image.
      if (o.image !== undefined || (o.runtime === undefined && (await hasDockerfile(path)))) {
        const fn = await deployImage(await deps.client(cmd), out, name, path, o, settingsFields(o));
        if (o.json) return out.json(fn);
        out.print(`deployed ${fn.functionName} version ${fn.version} (image ${fn.image?.ref ?? '?'}, port ${fn.image?.port ?? '?'})`);
        return;
      }
      if (path === undefined) throw new UsageError('give the path of the function (a directory or an archive), or --image REF');
      const fields = settingsFields(o);
      // Local problems (missing path, not an archive) are reported before anything is asked of the API.
      const up = await loadUpload(path, name);
      const api = await deps.client(cmd);
      let runtime = o.runtime;
      if (!runtime) {
        runtime = (await api.fnIfExists(name))?.runtimeName ?? (await guessRuntime(path));
        if (!runtime) throw new UsageError(`--runtime is required for a new function (see "zfaas runtimes")`);
        out.note(`runtime: ${runtime}`);
      }
      // The API answers at once; the build (the runtime's dependencies step) is followed here, with progress.
      const sent = await api.deploy(
        runtime,
        name,
        up.bytes,
        up.filename,
        [...fields, ['wait', 'false']],
        out.progress(`uploading ${name}`),
      );
      const fn = { ...(o.wait !== false ? await followBuild(api, out, sent) : sent), files: sent.files };
      if (fn.build?.state === 'failed') throw failedBuild(out, fn, fn.build);
      if (o.json) return out.json(fn);
      // The API lists at most 50 of the archive's files.
      const n = fn.files?.length;
      const files = n === undefined ? '' : `, ${n}${n >= 50 ? '+' : ''} file${n === 1 ? '' : 's'}`;
      out.print(
        `deployed ${fn.functionName} version ${fn.version} (runtime ${fn.runtimeName}, ${bytes(fn.size)}${files}${builtLine(fn.build)})`,
      );
      if (fn.build?.state === 'building') out.note(`its build goes on; "zfaas function ${name}" shows it, and its calls wait for it`);
    }),
  );

  examples(clientCommand(p, 'functions', 'list the deployed functions (current versions)').option('--json', 'print JSON'), [
    'zfaas functions',
    'zfaas functions --json | jq -r ".[].functionName"',
  ]).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).functions();
      if (o.json) return out.json(list);
      if (list.length === 0)
        return out.note('no functions yet; create one with: zfaas init hello --runtime node && zfaas deploy hello ./hello');
      out.table(
        ['NAME', 'VERSION', 'RUNTIME', 'POLICY', 'TIMEOUT', 'MEMORY', 'SIZE', 'DEPLOYED'],
        list.map((f) => [
          f.functionName,
          String(f.version),
          f.runtimeName,
          f.settings.policy ?? '-',
          `${f.settings.timeout}s`,
          `${f.settings.memory} MiB`,
          bytes(f.size),
          ago(f.createdAt),
        ]),
      );
    }),
  );

  examples(
    clientCommand(p, 'function <name>', 'show a function: its current version, settings and every version')
      .alias('describe')
      .option('--json', 'print JSON'),
    ['zfaas function hello', 'zfaas describe hello --json'],
  ).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      const f = await (await deps.client(cmd)).fn(name);
      if (o.json) return out.json(f);
      const env = Object.keys(f.settings.env);
      out.fields([
        ['name', f.functionName],
        ['runtime', f.runtimeName],
        ...(f.image ? [['image', `${f.image.ref} (port ${f.image.port}, readiness ${f.image.readiness}s)`] as const] : []),
        ['version', String(f.version)],
        ['settings', settingsLine(f)],
        ['handler', f.settings.handler ?? '(default)'],
        ['format', f.settings.format ?? 'auto'],
        ['public', publicLine(f)],
        ['network', f.settings.network ? 'allowed' : 'none'],
        ['env', env.length ? env.join(', ') : '(none)'],
        ...(f.settings.secrets.length ? [['secrets', f.settings.secrets.join(', ')] as const] : []),
        ['digest', f.digest],
        ...(f.build ? [['build', buildState(f.build)] as const] : []),
      ]);
      if (f.build?.state === 'failed' && f.build.log) out.note(`the build's log (its end):\n${printable(f.build.log, false)}`);
      out.print('');
      out.table(
        ['', 'VERSION', 'SIZE', 'DIGEST', 'DEPLOYED', 'BUILD'],
        f.versions.map((v) => [
          v.version === f.version ? '*' : '',
          String(v.version),
          bytes(v.size),
          v.digest.slice(0, 12),
          ago(v.createdAt),
          v.build ?? '-',
        ]),
      );
    }),
  );

  examples(
    clientCommand(p, 'rollback <name>', 'make an earlier version current (default: the one before the current)')
      .option('--version <n>', 'the version to make current', positiveInt('--version'))
      .option('--json', 'print the now current version as JSON'),
    ['zfaas rollback hello', 'zfaas rollback hello --version 1'],
  ).action(
    act(deps, async (name: string, o: { version?: number; json?: boolean }, cmd: Command) => {
      const f = await (await deps.client(cmd)).rollback(name, o.version);
      if (o.json) return out.json(f);
      out.print(`${f.functionName} now runs version ${f.version}`);
    }),
  );

  examples(clientCommand(p, 'delete <name>', 'delete a function and its versions (its calls stay readable)'), [
    'zfaas delete hello',
  ]).action(
    act(deps, async (name: string, _o: unknown, cmd: Command) => {
      await (await deps.client(cmd)).deleteFunction(name);
      out.print(`deleted function ${name}`);
    }),
  );
}
