// zfaas.json: a function folder's own deploy defaults (runtime, format, handler, policy, memory, timeout,
// public, retries, retryBackoff, secrets), written by `zfaas init` and read by `zfaas deploy DIR`; a flag
// given on the command line wins.
// A file that is not right is a usage error naming the file and what is wrong, before anything is sent.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FunctionSettingsSchema, NAME_RE, POLICIES, SECRET_NAME_RE, SETTING_LIMITS, type Policy } from '../../common/model.js';
import { quote, readBackoff, readMemory, readTimeout, refuse, type Reading } from '../../common/units.js';
import { FORMATS, type Format } from '../../protocol/loader.js';
import { UsageError, errText } from '../client/errors.js';

export const DEFAULTS_FILE = 'zfaas.json';
// Far more than a dozen settings take; a larger file is a mistake (or not a settings file at all).
const MAX_BYTES = 64 * 1024;

export interface DeployDefaults {
  runtime?: string;
  format?: Format;
  handler?: string;
  policy?: Policy;
  /** As `--memory` takes it: the MiB, as a string. */
  memory?: string;
  /** As `--timeout` takes it: the seconds, as a string. */
  timeout?: string;
  public?: boolean;
  /** As `--retries` takes it: the number, as a string. */
  retries?: string;
  /** As `--retry-backoff` takes it: the milliseconds with their unit ("1500ms"; a bare number is seconds). */
  retryBackoff?: string;
  /** As `--secrets` takes it: the names, joined with commas ("db-password,api-token"). */
  secrets?: string;
}

const RETRIES = SETTING_LIMITS.retries;

const oneOf =
  <T extends string>(choices: readonly T[], what: string) =>
  (v: unknown): Reading<T> =>
    (choices as readonly unknown[]).includes(v) ? { ok: true, value: v as T } : refuse(`${what}: one of ${choices.join(', ')}`, v);

const asString =
  (read: (v: unknown) => Reading): ((v: unknown) => Reading<string>) =>
  (v) => {
    const r = read(v);
    return r.ok ? { ok: true, value: String(r.value) } : r;
  };

// Secret names: a list (["db-password", "api-token"]) or one string of names separated by commas; sent on
// as `--secrets` sends them, joined with commas (repeated names once).
const SECRETS_EXPECTED = 'secret names, as a list such as ["db-password", "api-token"] or a string such as "db-password,api-token"';
function readSecrets(v: unknown): Reading<string> {
  const items: unknown[] | undefined =
    typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((s) => s.trim())) : Array.isArray(v) ? v : undefined;
  if (!items) return refuse(SECRETS_EXPECTED, v);
  const names: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string' || !SECRET_NAME_RE.test(item))
      return refuse(
        SECRETS_EXPECTED,
        v,
        `, and ${quote(item)} is not one (1-64 letters, digits, ".", "_" or "-", starting with a letter or digit)`,
      );
    if (!names.includes(item)) names.push(item);
  }
  return { ok: true, value: names.join(',') };
}

function readHandler(v: unknown): Reading<string> {
  const r = FunctionSettingsSchema.shape.handler.safeParse(v);
  if (r.success && r.data !== undefined) return { ok: true, value: r.data };
  // The schema's own words where they add something: a FILE.EXPORT that leaves the function's folder.
  const issue = r.success ? undefined : r.error.issues[0];
  return refuse('an entry point FILE.EXPORT such as index.handler', v, issue?.code === 'custom' ? `, which ${issue.message}` : '');
}

// One reader per key: what it takes, in the words `zfaas deploy`'s flags and the API use.
const READERS: { [K in keyof Required<DeployDefaults>]: (v: unknown) => Reading<NonNullable<DeployDefaults[K]>> } = {
  runtime: (v) => (typeof v === 'string' && NAME_RE.test(v) ? { ok: true, value: v } : refuse('a runtime name such as node or python', v)),
  format: oneOf(FORMATS, 'a calling convention'),
  handler: readHandler,
  policy: oneOf(POLICIES, 'a preload policy'),
  memory: asString(readMemory),
  timeout: asString(readTimeout),
  public: (v) => (typeof v === 'boolean' ? { ok: true, value: v } : refuse('true or false', v)),
  retries: (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= RETRIES.min && v <= RETRIES.max
      ? { ok: true, value: String(v) }
      : refuse(`a whole number of retries from ${RETRIES.min} to ${RETRIES.max}`, v),
  retryBackoff: (v) => {
    const r = readBackoff(v);
    return r.ok ? { ok: true, value: `${r.value}ms` } : r;
  },
  secrets: readSecrets,
};
export const DEFAULT_KEYS = Object.keys(READERS) as Array<keyof DeployDefaults>;

const isKey = (k: string): k is keyof DeployDefaults => Object.prototype.hasOwnProperty.call(READERS, k);

/** Checks a parsed zfaas.json; `file` names it in the refusals. */
export function parseDeployDefaults(raw: unknown, file: string): DeployDefaults {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UsageError(`${file}: expected a JSON object such as {"runtime": "node", "format": "lambda"}, got ${quote(raw)}`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (!isKey(k)) throw new UsageError(`${file}: unknown key ${quote(k)} (it may hold ${DEFAULT_KEYS.join(', ')})`);
    const r = READERS[k](v);
    if (!r.ok) throw new UsageError(`${file}: ${k}: ${r.error}`);
    out[k] = r.value;
  }
  return out as DeployDefaults;
}

/**
 * The defaults in DIR/zfaas.json: none when `path` is not a directory (an archive, or a path that does
 * not exist: loading the upload reports that) or holds no zfaas.json.
 */
export async function readDeployDefaults(path: string): Promise<DeployDefaults> {
  const isDir = await stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isDir) return {};
  const file = join(path, DEFAULTS_FILE);
  let text: string;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new UsageError(`${file} is not a file`);
    if (s.size > MAX_BYTES) throw new UsageError(`${file} is larger than ${MAX_BYTES / 1024} KiB: it should hold a few deploy settings`);
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? errText(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${errText(e)}`);
  }
  return parseDeployDefaults(raw, file);
}

/**
 * `zfaas deploy`'s options with DIR/zfaas.json's defaults filled in where no flag was given (a flag that
 * was given wins, whatever zfaas.json says).
 */
export async function withDeployDefaults<T extends object>(path: string, flags: T): Promise<T & DeployDefaults> {
  const merged: Record<string, unknown> = { ...(await readDeployDefaults(path)) };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  return merged as T & DeployDefaults;
}
