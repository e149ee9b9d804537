// Where the CLI finds the API, its token (or key) and the namespace to act in: --api/--token/--namespace,
// then ZFAAS_API/ZFAAS_TOKEN/ZFAAS_NAMESPACE, then the config file (ZFAAS_CONFIG, else $XDG_CONFIG_HOME/zfaas/config.json, else ~/.config/zfaas/config.json), then
// the default. The file holds a token, so it is written readable by its owner only.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { namespaceSchema } from '../../common/namespace.js';
import { CliError, UsageError, errText } from './errors.js';

export const DEFAULT_API = 'http://127.0.0.1:3000';
/** The header that picks the namespace a request acts in (api/tenancy/identity.ts). */
export const NAMESPACE_HEADER = 'x-zfaas-namespace';

export const ConfigFileSchema = z.object({
  api: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  namespace: namespaceSchema.optional(),
});
export type ConfigFile = z.infer<typeof ConfigFileSchema>;
export const CONFIG_KEYS = ['api', 'token', 'namespace'] as const;
export type ConfigKey = (typeof CONFIG_KEYS)[number];

export type Env = Readonly<Record<string, string | undefined>>;

export interface ClientConfig {
  api: string;
  token?: string;
  /** Sent as X-Zfaas-Namespace on every request; unset: the key's own namespace (the operator's: default). */
  namespace?: string;
  /** Where `api` came from, for `zfaas config` and for error messages. */
  apiFrom: 'flag' | 'env' | 'file' | 'default';
  file: string;
}

export function configPath(env: Env): string {
  if (env.ZFAAS_CONFIG) return env.ZFAAS_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'zfaas', 'config.json');
}

export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read the config file ${path}: ${errText(e)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new CliError(`the config file ${path} is not valid JSON`);
  }
  const r = ConfigFileSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new CliError(`the config file ${path} is invalid: ${i?.path.join('.') || 'top level'}: ${i?.message ?? 'bad value'}`);
  }
  return r.data;
}

export async function writeConfigFile(path: string, cfg: ConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Write then rename, so a crash never leaves half a config behind.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

/** "localhost:3000" -> "http://localhost:3000"; no trailing slash; anything but http(s) is refused. */
export function normalizeApi(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`invalid API address "${raw}": expected a URL like http://127.0.0.1:3000`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`invalid API address "${raw}": only http and https are supported`);
  return u.toString().replace(/\/+$/, '');
}

/** A namespace name as the API takes it, else a usage error naming where it came from. */
export function checkNamespace(raw: string, from: string): string {
  const r = namespaceSchema.safeParse(raw);
  if (!r.success) throw new UsageError(`invalid namespace "${raw}" (${from}): ${r.error.issues[0]?.message ?? 'bad value'}`);
  return r.data;
}

export async function resolveConfig(flags: { api?: string; token?: string; namespace?: string }, env: Env): Promise<ClientConfig> {
  const file = configPath(env);
  const fromFile = await readConfigFile(file);
  const [raw, apiFrom]: [string, ClientConfig['apiFrom']] = flags.api
    ? [flags.api, 'flag']
    : env.ZFAAS_API
      ? [env.ZFAAS_API, 'env']
      : fromFile.api
        ? [fromFile.api, 'file']
        : [DEFAULT_API, 'default'];
  const token = flags.token || env.ZFAAS_TOKEN || fromFile.token || undefined;
  const namespace = flags.namespace
    ? checkNamespace(flags.namespace, '--namespace')
    : env.ZFAAS_NAMESPACE
      ? checkNamespace(env.ZFAAS_NAMESPACE, 'ZFAAS_NAMESPACE')
      : fromFile.namespace;
  return { api: normalizeApi(raw), token, namespace, apiFrom, file };
}
