// Many teams on one zfaas (api/handlers/namespaces.ts, api/handlers/secrets.ts):
//   namespace create NAME [quotas], namespace list, namespace show NAME, namespace quotas NAME [quotas]
//   key create --role ROLE, key list, key rotate ID, key revoke ID (the keys of --namespace, else the key's own)
//   secret create NAME, secret set NAME, secret list, secret rm NAME (the namespace's secrets, admin role)
//   whoami
// A key goes where the token goes (--token, ZFAAS_TOKEN, `zfaas config set token`); the global --namespace
// (ZFAAS_NAMESPACE, `zfaas config set namespace`) is sent as X-Zfaas-Namespace on every request.
// A key is printed once, when it is made or rotated; a secret's value is never printed.
import { Option, type Command } from 'commander';
import { NAME_RE, ROLES, SECRET_VALUE_MAX, SETTING_LIMITS, type Quotas, type Role } from '../../common/model.js';
import { MEMORY_EXPECTED, readMemory } from '../../common/units.js';
import type { ApiClient } from '../client/api.js';
import { UsageError } from '../client/errors.js';
import { ago, bytes } from '../client/format.js';
import { readBoundedBytes } from '../client/read-bounded.js';
import type { KeyView, NamespaceView, NewKey } from '../client/schemas.js';
import { act, examples, type Deps } from './common.js';

// --- quotas ----------------------------------------------------------------------------------------------

interface QuotaOpts {
  running?: string;
  perMinute?: string;
  functions?: string;
  archiveBytes?: string;
  memory?: string;
  cpus?: string;
  pids?: string;
  schedules?: string;
  scheduleInterval?: string;
  runtimes?: string;
  isolation?: string;
}

const QUOTA_FLAGS: ReadonlyArray<readonly [keyof QuotaOpts & keyof Quotas, string]> = [
  ['running', '--running'],
  ['perMinute', '--per-minute'],
  ['functions', '--functions'],
  ['archiveBytes', '--archive-bytes'],
  ['memory', '--memory'],
  ['cpus', '--cpus'],
  ['pids', '--pids'],
  ['schedules', '--schedules'],
  ['scheduleInterval', '--schedule-interval'],
  ['runtimes', '--runtimes'],
  ['isolation', '--isolation'],
];

type QuotaValue = number | string[];
export type QuotaChange = Partial<Record<keyof Quotas, QuotaValue | null>>;

/** "none" (or "unlimited") takes a quota off. */
const NONE = /^(none|unlimited)$/i;
const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** A size in bytes: 1048576, 500k, 100m, 1g, 2GiB, 10MB (k, m, g, t are powers of 1024). */
export function parseBytes(raw: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(raw.trim());
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what}: expected a size such as 500m, 2g or 1048576 (bytes), or none; got "${raw}"`);
  return n;
}

function wholeNumber(raw: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min || Number(raw) > max)
    throw new UsageError(
      `${what}: expected a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}, or none; got "${raw}"`,
    );
  return Number(raw);
}

function cpuCount(raw: string, what: string): number {
  const n = /^(\d+(\.\d+)?|\.\d+)$/.test(raw.trim()) ? Number(raw) : NaN;
  const L = SETTING_LIMITS.cpus;
  if (!(n >= L.min && n <= L.max))
    throw new UsageError(`${what}: expected a number of CPUs from ${L.min} to ${L.max}, or none; got "${raw}"`);
  return n;
}

/** Names separated by commas, each as `re` wants it. */
function names(raw: string, what: string, re: RegExp, example: string): string[] {
  const list = raw
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  const bad = list.find((x) => !re.test(x));
  if (list.length === 0 || bad !== undefined)
    throw new UsageError(`${what}: expected names separated by commas such as ${example}, or none; got "${raw}"`);
  return [...new Set(list)];
}

/** Quota flags read: a value, or null for "none" (take the quota off); flags not given are absent. */
export function readQuotas(o: QuotaOpts): QuotaChange {
  const q: QuotaChange = {};
  for (const [k, flag] of QUOTA_FLAGS) {
    const raw = o[k];
    if (raw === undefined) continue;
    if (NONE.test(raw.trim())) {
      q[k] = null;
      continue;
    }
    if (k === 'archiveBytes') q[k] = parseBytes(raw, flag);
    else if (k === 'memory') {
      const r = readMemory(raw);
      if (!r.ok) throw new UsageError(`${flag}: ${r.error}`);
      q[k] = r.value;
    } else if (k === 'cpus') q[k] = cpuCount(raw, flag);
    else if (k === 'pids') q[k] = wholeNumber(raw, flag, SETTING_LIMITS.pids.min, SETTING_LIMITS.pids.max);
    else if (k === 'runtimes') q[k] = names(raw, flag, NAME_RE, 'node,python');
    else if (k === 'isolation') q[k] = names(raw, flag, /^[a-z0-9][a-z0-9._-]{0,63}$/, 'runsc,kata-runtime');
    else q[k] = wholeNumber(raw, flag, k === 'functions' || k === 'schedules' ? 0 : 1);
  }
  return q;
}

/** The quotas with the changes applied (null takes one off). */
export function mergeQuotas(had: Quotas, change: QuotaChange): Quotas {
  const next: Record<string, QuotaValue> = { ...had };
  for (const [k, v] of Object.entries(change)) {
    if (v === null) delete next[k];
    else if (v !== undefined) next[k] = v;
  }
  return next as Quotas;
}

/** "running 5, per minute 600, functions 20, archives 1.0 GB, memory 512 MiB, ...", or "none". */
export function quotasText(q: Quotas): string {
  const parts: string[] = [];
  if (q.running !== undefined) parts.push(`running ${q.running}`);
  if (q.perMinute !== undefined) parts.push(`per minute ${q.perMinute}`);
  if (q.functions !== undefined) parts.push(`functions ${q.functions}`);
  if (q.archiveBytes !== undefined) parts.push(`archives ${bytes(q.archiveBytes)}`);
  if (q.memory !== undefined) parts.push(`memory ${q.memory} MiB`);
  if (q.cpus !== undefined) parts.push(`cpus ${q.cpus}`);
  if (q.pids !== undefined) parts.push(`pids ${q.pids}`);
  if (q.schedules !== undefined) parts.push(`schedules ${q.schedules}`);
  if (q.scheduleInterval !== undefined) parts.push(`schedule interval ${q.scheduleInterval} s`);
  if (q.runtimes !== undefined) parts.push(`runtimes ${q.runtimes.join('/') || '(none)'}`);
  if (q.isolation !== undefined) parts.push(`isolation ${q.isolation.join('/')}`);
  return parts.length ? parts.join(', ') : 'none';
}

function quotaOptions(cmd: Command): Command {
  return cmd
    .option('--running <n>', 'calls running at once in the namespace (more wait)')
    .option('--per-minute <n>', 'calls made per minute (more are refused with 429)')
    .option('--functions <n>', 'functions deployed')
    .option('--archive-bytes <size>', "bytes of the functions' stored archives (every version), summed: 500m, 2g, or bytes")
    .option('--memory <size>', `memory a function may ask for: ${MEMORY_EXPECTED}`)
    .option('--cpus <n>', 'CPUs a function may ask for (0.05 to 64)')
    .option('--pids <n>', `processes a function may ask for (${SETTING_LIMITS.pids.min} to ${SETTING_LIMITS.pids.max})`)
    .option('--schedules <n>', "schedules of the namespace's functions, together")
    .option('--schedule-interval <seconds>', "how close a key's schedule may tick (unset: 60)")
    .option('--runtimes <names>', 'the only runtimes its functions may use, comma separated (shared ones or its own)')
    .option(
      '--isolation <names>',
      'the Docker runtimes its functions must run under, comma separated: runsc, kata-runtime (runc: the default)',
    );
}

const limit = <T>(v: T | undefined, shown: (v: T) => string, unset = 'no limit'): string => (v === undefined ? unset : shown(v));

const quotaRows = (q: Quotas): Array<[string, string]> => [
  ['running', limit(q.running, (n) => `${n} at once`)],
  ['per minute', limit(q.perMinute, (n) => `${n} calls`)],
  ['functions', limit(q.functions, String)],
  ['archives', limit(q.archiveBytes, (n) => `${bytes(n)} (${n} bytes, every version)`)],
  ['memory', limit(q.memory, (n) => `${n} MiB per function`, `no limit (the platform's ${SETTING_LIMITS.memory.max} MiB)`)],
  ['cpus', limit(q.cpus, (n) => `${n} per function`)],
  ['pids', limit(q.pids, (n) => `${n} per function`)],
  ['schedules', limit(q.schedules, String)],
  ['interval', limit(q.scheduleInterval, (n) => `${n} s between a schedule's ticks`, "60 s between a key's schedule's ticks")],
  ['runtimes', limit(q.runtimes, (l) => l.join(', ') || '(none)', 'any')],
  ['isolation', limit(q.isolation, (l) => l.join(', '), 'any')],
];

// --- keys --------------------------------------------------------------------------------------------------

/** The namespace whose keys are meant: --namespace (or its env / config), else the caller's own. */
async function keyNamespace(deps: Deps, cmd: Command, api: ApiClient): Promise<string> {
  return (await deps.config(cmd)).namespace ?? (await api.whoami()).namespace;
}

const keyState = (k: KeyView): string => (k.revokedAt ? `revoked ${ago(k.revokedAt)}` : 'active');

function printNewKey(deps: Deps, k: NewKey, json: boolean | undefined, verb: string): void {
  if (json) return deps.out.json(k);
  deps.out.print(k.key);
  deps.out.note(
    `${verb} key ${k.id} (role ${k.role} in namespace ${k.namespace}): the key above is shown only now, keep it now (lost: "zfaas key rotate ${k.id} --namespace ${k.namespace}")`,
  );
}

// --- secrets -----------------------------------------------------------------------------------------------

interface SecretOpts {
  value?: string;
  fromFile?: string;
  json?: boolean;
}

/** A secret's value: --value, --from-file, else a piped stdin (a terminal would show it as it is typed). */
export async function secretValue(o: SecretOpts, stdin: Deps['stdin']): Promise<Buffer> {
  if (o.value !== undefined && o.fromFile !== undefined) throw new UsageError('give the value with --value or --from-file, not both');
  let v: Buffer;
  if (o.value !== undefined) v = Buffer.from(o.value, 'utf8');
  else if (o.fromFile !== undefined) v = await readBoundedBytes(o.fromFile, SECRET_VALUE_MAX + 1, o.fromFile);
  else {
    if (stdin.isTTY)
      throw new UsageError('pipe the value on stdin (e.g. zfaas secret create NAME < file), or give --from-file FILE or --value VALUE');
    v = await readBoundedBytes(stdin, SECRET_VALUE_MAX + 1, 'stdin');
  }
  if (v.length > SECRET_VALUE_MAX) throw new UsageError(`a secret holds at most ${SECRET_VALUE_MAX / 1024} KiB; this value is larger`);
  return v;
}

function secretOptions(cmd: Command): Command {
  return cmd
    .option('--value <value>', 'the value (it stays in your shell history: prefer --from-file or stdin)')
    .option('--from-file <file>', 'the value: the bytes of this file, as they are')
    .option('--json', 'print JSON (never the value)');
}

const SECRET_HELP =
  '\nThe value comes from --value, --from-file, or stdin when neither is given; it is sent byte for byte (a\ntrailing newline too: use printf or echo -n) and never printed. A function reads the secrets it names\n(zfaas deploy --secrets NAME,...) as files under /var/zfaas/secrets/.';

// --- the commands --------------------------------------------------------------------------------------------

export function tenancyCommands(p: Command, deps: Deps): void {
  const { out } = deps;
  const hint = (cmd: string): string => `(run "zfaas ${cmd} --help" for usage and examples)`;

  // whoami
  examples(
    p
      .command('whoami')
      .description('who the token or key acts as: its namespace and role')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('whoami')),
    ['zfaas whoami', 'ZFAAS_TOKEN=zfk_... zfaas whoami --json'],
  ).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const api = await deps.client(cmd);
      const w = await api.whoami();
      if (o.json) return out.json(w);
      out.fields([
        ['api', api.api],
        ['namespace', w.namespace],
        ['role', w.role],
        ['key', w.keyId ?? (w.role === 'operator' ? '(the operator token)' : '-')],
      ]);
    }),
  );

  // namespace
  const ns = examples(
    p
      .command('namespace')
      .alias('namespaces')
      .description("namespaces: each team's own functions, calls, keys, secrets and quotas (the operator's)")
      .showHelpAfterError(hint('namespace')),
    ['zfaas namespace create team-a --running 10 --per-minute 600', 'zfaas namespace list', 'zfaas namespace show team-a'],
  );

  examples(
    quotaOptions(ns.command('create <name>').description('make a namespace (operator token), with quotas if given'))
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('namespace create')),
    ['zfaas namespace create team-a', 'zfaas namespace create team-b --running 5 --functions 20 --archive-bytes 1g --memory 512m'],
  ).action(
    act(deps, async (name: string, o: QuotaOpts & { json?: boolean }, cmd: Command) => {
      const quotas = mergeQuotas({}, readQuotas(o));
      const n = await (await deps.client(cmd)).createNamespace(name, Object.keys(quotas).length ? quotas : undefined);
      if (o.json) return out.json(n);
      out.print(`created namespace ${n.name} (quotas: ${quotasText(n.quotas)})`);
      out.note(`give it an admin key: zfaas key create --namespace ${n.name} --role admin`);
    }),
  );

  examples(
    ns
      .command('list')
      .alias('ls')
      .description('every namespace with its quotas (operator token)')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('namespace list')),
    ['zfaas namespace list'],
  ).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).namespaces();
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note('no namespaces; make one with: zfaas namespace create NAME');
      out.table(
        ['NAMESPACE', 'CREATED', 'QUOTAS'],
        list.map((n) => [n.name, ago(n.createdAt), quotasText(n.quotas)]),
      );
    }),
  );

  const showNamespace = (n: NamespaceView): void => {
    out.fields([['name', n.name], ['created', `${n.createdAt} (${ago(n.createdAt)})`], ...quotaRows(n.quotas)]);
  };

  examples(
    ns
      .command('show <name>')
      .description("a namespace and its quotas (the operator, or the namespace's admin)")
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('namespace show')),
    ['zfaas namespace show team-a'],
  ).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      const n = await (await deps.client(cmd)).namespaceInfo(name);
      if (o.json) return out.json(n);
      showNamespace(n);
    }),
  );

  examples(
    quotaOptions(
      ns
        .command('quotas <name>')
        .description('show a namespace\'s quotas, or change those given (operator token); the others stay; "none" takes one off'),
    )
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('namespace quotas')),
    ['zfaas namespace quotas team-a', 'zfaas namespace quotas team-a --running 20 --per-minute none'],
  ).action(
    act(deps, async (name: string, o: QuotaOpts & { json?: boolean }, cmd: Command) => {
      const change = readQuotas(o);
      const api = await deps.client(cmd);
      const had = await api.namespaceInfo(name);
      const n = Object.keys(change).length ? await api.setQuotas(name, mergeQuotas(had.quotas, change)) : had;
      if (o.json) return out.json(n);
      if (n !== had) out.note(`quotas of ${n.name} set`);
      showNamespace(n);
    }),
  );

  // key (API keys; `zfaas keys` makes CURVE key pairs)
  const key = examples(
    p
      .command('key')
      .description(
        "API keys of a namespace: made, listed, rotated, revoked by the operator or the namespace's admin (the namespace: --namespace, else the key's own)",
      )
      .showHelpAfterError(hint('key')),
    ['zfaas key create --namespace team-a --role developer', 'zfaas key list --namespace team-a', 'zfaas key revoke 0123456789abcdef'],
  );

  examples(
    key
      .command('create')
      .description('make a key with a role; it is printed once, now, and never again')
      .addOption(
        new Option('--role <role>', 'invoker: invoke and read its own calls; developer: deploy too; admin: keys and secrets too')
          .choices([...ROLES])
          .makeOptionMandatory(),
      )
      .option('--json', 'print JSON (the key in "key")')
      .showHelpAfterError(hint('key create')),
    ['zfaas key create --namespace team-a --role admin', 'KEY=$(zfaas key create --namespace team-a --role invoker)'],
  ).action(
    act(deps, async (o: { role: Role; json?: boolean }, cmd: Command) => {
      const api = await deps.client(cmd);
      printNewKey(deps, await api.createKey(await keyNamespace(deps, cmd, api), o.role), o.json, 'made');
    }),
  );

  examples(
    key
      .command('list')
      .alias('ls')
      .description("a namespace's keys: id, role, when made, rotated or revoked (never the keys themselves)")
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('key list')),
    ['zfaas key list --namespace team-a'],
  ).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const api = await deps.client(cmd);
      const namespace = await keyNamespace(deps, cmd, api);
      const list = await api.keys(namespace);
      if (o.json) return out.json(list);
      if (list.length === 0)
        return out.note(`no keys in ${namespace}; make one with: zfaas key create --namespace ${namespace} --role admin`);
      out.table(
        ['ID', 'ROLE', 'CREATED', 'ROTATED', 'STATE'],
        list.map((k) => [k.id, k.role, ago(k.createdAt), k.rotatedAt ? ago(k.rotatedAt) : '', keyState(k)]),
      );
    }),
  );

  examples(
    key
      .command('rotate <id>')
      .description('give a key a new secret (same id and role); the old one stops at once; printed once, now')
      .option('--json', 'print JSON (the key in "key")')
      .showHelpAfterError(hint('key rotate')),
    ['zfaas key rotate 0123456789abcdef --namespace team-a'],
  ).action(
    act(deps, async (id: string, o: { json?: boolean }, cmd: Command) => {
      const api = await deps.client(cmd);
      printNewKey(deps, await api.rotateKey(await keyNamespace(deps, cmd, api), id), o.json, 'rotated');
    }),
  );

  examples(
    key
      .command('revoke <id>')
      .alias('rm')
      .description('revoke a key: it stops at once and for good')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('key revoke')),
    ['zfaas key revoke 0123456789abcdef --namespace team-a'],
  ).action(
    act(deps, async (id: string, o: { json?: boolean }, cmd: Command) => {
      const api = await deps.client(cmd);
      const k = await api.revokeKey(await keyNamespace(deps, cmd, api), id);
      if (o.json) return out.json(k);
      out.print(`revoked key ${k.id} (role ${k.role} in namespace ${k.namespace})`);
    }),
  );

  // secret
  const secret = examples(
    p
      .command('secret')
      .alias('secrets')
      .description("the namespace's secrets (admin role): values functions read as files, never shown again")
      .showHelpAfterError(hint('secret')),
    ['printf %s "$DB_PASSWORD" | zfaas secret create db-password', 'zfaas secret list', 'zfaas secret rm db-password'],
  );

  examples(
    secretOptions(secret.command('create <name>').description('make a secret (refused when it exists: "zfaas secret set" replaces)'))
      .addHelpText('after', SECRET_HELP)
      .showHelpAfterError(hint('secret create')),
    [
      'printf %s "$DB_PASSWORD" | zfaas secret create db-password',
      'zfaas secret create tls-key --from-file ./key.pem',
      'zfaas deploy api ./api --secrets db-password,tls-key',
    ],
  ).action(
    act(deps, async (name: string, o: SecretOpts, cmd: Command) => {
      const value = await secretValue(o, deps.stdin);
      const s = await (await deps.client(cmd)).createSecret(name, value);
      if (o.json) return out.json(s);
      out.print(`created secret ${s.name} (${bytes(s.bytes)}, version ${s.version})`);
    }),
  );

  examples(
    secretOptions(secret.command('set <name>').description("replace a secret's value (or make it)"))
      .addHelpText('after', SECRET_HELP)
      .showHelpAfterError(hint('secret set')),
    ['zfaas secret set db-password --from-file ./new-password'],
  ).action(
    act(deps, async (name: string, o: SecretOpts, cmd: Command) => {
      const value = await secretValue(o, deps.stdin);
      const s = await (await deps.client(cmd)).setSecret(name, value);
      if (o.json) return out.json(s);
      out.print(`set secret ${s.name} (${bytes(s.bytes)}, version ${s.version})`);
    }),
  );

  examples(
    secret
      .command('list')
      .alias('ls')
      .description("the namespace's secrets: names, versions, sizes (never the values)")
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('secret list')),
    ['zfaas secret list'],
  ).action(
    act(deps, async (o: { json?: boolean }, cmd: Command) => {
      const list = await (await deps.client(cmd)).secrets();
      if (o.json) return out.json(list);
      if (list.length === 0) return out.note('no secrets; make one with: printf %s VALUE | zfaas secret create NAME');
      out.table(
        ['NAME', 'VERSION', 'SIZE', 'CREATED', 'UPDATED'],
        list.map((s) => [s.name, String(s.version), bytes(s.bytes), ago(s.createdAt), ago(s.updatedAt)]),
      );
    }),
  );

  examples(
    secret
      .command('rm <name>')
      .alias('delete')
      .description('delete a secret (functions that name it no longer get it)')
      .option('--json', 'print JSON')
      .showHelpAfterError(hint('secret rm')),
    ['zfaas secret rm db-password'],
  ).action(
    act(deps, async (name: string, o: { json?: boolean }, cmd: Command) => {
      await (await deps.client(cmd)).deleteSecret(name);
      if (o.json) return out.json({ deleted: name });
      out.print(`deleted secret ${name}`);
    }),
  );
}
