// Secrets as files: each of the settings below may be given as NAME_FILE, a path to a file holding it
// (Docker and Swarm secrets appear as files under /run/secrets, so a secret never sits in the
// environment or in `docker inspect`). Read once at start, before the options read the environment.
import { readFileSync } from 'node:fs';

export const FILE_SETTINGS = [
  'ZFAAS_TOKEN',
  'ZFAAS_CURVE_SECRET',
  'ZFAAS_CURVE_SERVER_KEY',
  'ZFAAS_CURVE_ALLOWED',
  'ZFAAS_CALLBACK_ALLOW',
] as const;

// Sets NAME from the file NAME_FILE names (its content without the trailing newline). Both given: an error,
// as is a file that cannot be read or is empty. Startup only: reading a few bytes synchronously is fine.
export function settingsFromFiles(env: NodeJS.ProcessEnv = process.env): void {
  for (const name of FILE_SETTINGS) {
    const path = env[`${name}_FILE`];
    if (!path) continue;
    if (env[name]) throw new Error(`both ${name} and ${name}_FILE are set: give one`);
    let value: string;
    try {
      value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new Error(`${name}_FILE: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    if (!value) throw new Error(`${name}_FILE: ${path} is empty`);
    env[name] = value;
  }
}
