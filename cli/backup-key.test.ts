// Where the backup key comes from (backup-key.ts), in a temp config folder: `zfaas up` makes it once, its
// owner's alone, and finds it again; backup and restore only read it; a key given twice, too short or
// missing is refused saying what to do.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { backupKey, BackupKeyProblem, defaultBackupKeyFile } from './backup-key.js';

let dir: string;
const saved = { xdg: process.env.XDG_CONFIG_HOME, key: process.env.ZFAAS_BACKUP_KEY, file: process.env.ZFAAS_BACKUP_KEY_FILE };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'zfaas-backup-key-'));
  process.env.XDG_CONFIG_HOME = join(dir, 'config');
  delete process.env.ZFAAS_BACKUP_KEY;
  delete process.env.ZFAAS_BACKUP_KEY_FILE;
});
afterEach(async () => {
  for (const [name, value] of [
    ['XDG_CONFIG_HOME', saved.xdg],
    ['ZFAAS_BACKUP_KEY', saved.key],
    ['ZFAAS_BACKUP_KEY_FILE', saved.file],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  await rm(dir, { recursive: true, force: true });
});

const problem = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'no problem',
    (e: unknown) => {
      expect(e).toBeInstanceOf(BackupKeyProblem);
      return (e as Error).message;
    },
  );

describe('the backup key', () => {
  it('is made once where zfaas up keeps it, its owner’s alone, and found there again', async () => {
    const path = defaultBackupKeyFile();
    expect(path).toBe(join(dir, 'config', 'zfaas', 'backup.key'));
    expect(await problem(backupKey({ make: false }))).toMatch(/^no backup key at .*backup\.key: backups are encrypted/);
    const made = await backupKey({ make: true });
    expect(made).toMatchObject({ from: path, made: true });
    expect(made.material).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'config', 'zfaas'))).mode & 0o777).toBe(0o700);
    expect(await backupKey({ make: true })).toEqual({ ...made, made: false });
    expect(await backupKey({ make: false })).toEqual({ ...made, made: false });
    expect((await readFile(path, 'utf8')).trim()).toBe(made.material);
  });

  it('comes from ZFAAS_BACKUP_KEY or a file, never both, and is long enough', async () => {
    const file = join(dir, 'mine.key');
    await writeFile(file, `  ${'f'.repeat(40)}\n`);
    expect(await backupKey({ file, make: false })).toEqual({ material: 'f'.repeat(40), from: file, made: false });
    process.env.ZFAAS_BACKUP_KEY = 'e'.repeat(32);
    expect(await backupKey({ make: true })).toEqual({ material: 'e'.repeat(32), from: 'ZFAAS_BACKUP_KEY', made: false });
    expect(await problem(backupKey({ file, make: false }))).toMatch(/both ZFAAS_BACKUP_KEY and a backup key file are given/);
    process.env.ZFAAS_BACKUP_KEY = 'short';
    expect(await problem(backupKey({ make: false }))).toMatch(/the backup key in ZFAAS_BACKUP_KEY is 5 characters long/);
    delete process.env.ZFAAS_BACKUP_KEY;
    process.env.ZFAAS_BACKUP_KEY_FILE = file;
    expect((await backupKey({ make: false })).from).toBe(file);
    await expect(stat(defaultBackupKeyFile())).rejects.toThrow(); // none made where none was asked for
  });
});
