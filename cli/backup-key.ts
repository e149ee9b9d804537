// Where the key that encrypts backups comes from: ZFAAS_BACKUP_KEY (the key itself), or the file
// --backup-key-file (ZFAAS_BACKUP_KEY_FILE), not both; else the one `zfaas up` keeps beside the secrets' master key
// ($XDG_CONFIG_HOME/zfaas/backup.key, else ~/.config/zfaas/backup.key; the folder 0700, the file 0600).
// `zfaas up` makes that file on its first start; `zfaas backup` and `zfaas restore` only read it. The key
// lives apart from the data and from the backups: a backup is useless without it.
//
// Light on purpose: `zfaas backup` loads this with the client commands.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const BACKUP_KEY_MIN = 32; // characters of key material, as for the secrets' master key

// Something is wrong with the key or where it should be; the message says what to do.
export class BackupKeyProblem extends Error {}

export const defaultBackupKeyFile = (): string => join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'zfaas', 'backup.key');

export interface BackupKey {
  material: string;
  from: string; // 'ZFAAS_BACKUP_KEY' or the file's path
  made: boolean; // this call made the file
}

const how = (): string =>
  'backups are encrypted: give a key of 32 or more random characters with --backup-key-file FILE or ZFAAS_BACKUP_KEY ' +
  `(make one: umask 077; openssl rand -hex 32 > FILE); zfaas up keeps one at ${defaultBackupKeyFile()}`;

// The key material. `make`: a missing file is made with a new random key (what `zfaas up` does).
export async function backupKey(o: { file?: string; make: boolean }): Promise<BackupKey> {
  const fromEnv = process.env.ZFAAS_BACKUP_KEY;
  const file = o.file || process.env.ZFAAS_BACKUP_KEY_FILE;
  if (fromEnv && file) throw new BackupKeyProblem('both ZFAAS_BACKUP_KEY and a backup key file are given: give one');
  if (fromEnv) return { material: checked(fromEnv, 'ZFAAS_BACKUP_KEY'), from: 'ZFAAS_BACKUP_KEY', made: false };
  const path = file || defaultBackupKeyFile();
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw new BackupKeyProblem(`cannot read the backup key ${path}: ${code ?? String(e)}`);
    if (!o.make) throw new BackupKeyProblem(`no backup key at ${path}: ${how()}`);
  }
  if (text !== undefined) return { material: checked(text, path), from: path, made: false };
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(path, 0o600);
    return { material: checked(await readFile(path, 'utf8'), path), from: path, made: true };
  } catch (e) {
    if (e instanceof BackupKeyProblem) throw e;
    // Another `zfaas up` made it meanwhile: that one is the key.
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { ...(await backupKey({ file: path, make: false })), made: false };
    throw new BackupKeyProblem(`cannot make the backup key ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function checked(material: string, from: string): string {
  const m = material.trim();
  if (m.length < BACKUP_KEY_MIN) throw new BackupKeyProblem(`the backup key in ${from} is ${m.length} characters long: ${how()}`);
  return m;
}
