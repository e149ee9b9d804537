// The logical records of a backup: each kind comes back as it was written (its JSON byte for byte, an
// archive's bytes as they are), and a record of an unknown kind, of another layout or that does not fit its
// schema is refused, saying which.
import { describe, expect, it } from 'vitest';
import { FunctionSettingsSchema } from '../common/model.js';
import { decodeRecord, encodeRecord, isLogicalKey, type BackupRecord } from './backup-records.js';

const at = '2026-01-01T00:00:00.000Z';
const records: BackupRecord[] = [
  { kind: 'runtime', value: { name: 'py', image: 'img', path: '/ws', dependencies: '', run: 'true' } },
  { kind: 'archive', digest: 'a'.repeat(64), data: Buffer.from([0, 1, 2, 255]) },
  { kind: 'function', name: 'team~f', current: 2, latest: 3 },
  {
    kind: 'version',
    value: {
      functionName: 'f',
      runtimeName: 'py',
      version: 1,
      digest: 'a'.repeat(64),
      size: 4,
      format: 'tar.gz',
      createdAt: at,
      settings: FunctionSettingsSchema.parse({}),
    },
  },
  {
    kind: 'call',
    value: {
      callNum: 7,
      funcName: 'f',
      version: 1,
      params: { x: 1 },
      status: 'DONE',
      result: '\u0000ok',
      attempts: 1,
      createdAt: at,
      logs: 'é',
    },
  },
  { kind: 'idempotency', key: 'default~operator~k 1', value: { funcName: 'f', hash: 'b'.repeat(64), callNum: 7, at: 1 } },
  { kind: 'schedule', value: { id: 'ab', funcName: 'f', cron: '* * * * *', timezone: 'UTC', params: {}, missed: 'skip', createdAt: at } },
  { kind: 'namespace', value: { name: 'team', createdAt: at, quotas: { running: 2 } } },
  {
    kind: 'key',
    value: { id: '0123456789abcdef', namespace: 'team', role: 'invoker', salt: 'c'.repeat(32), hash: 'd'.repeat(64), createdAt: at },
  },
  {
    kind: 'secret',
    namespace: 'team',
    value: { name: 'tok', version: 1, bytes: 3, createdAt: at, updatedAt: at, iv: 'aXY=', tag: 'dGFn', data: 'ZA==' },
  },
];

describe('backup records', () => {
  it.each(records.map((r) => [r.kind, r] as const))('a %s record comes back as it was', (_kind, r) => {
    const [key, value] = encodeRecord(r);
    expect(isLogicalKey(key)).toBe(true);
    const back = decodeRecord(key, value);
    expect(back).toEqual(r);
    expect(encodeRecord(back)[1].equals(value)).toBe(true);
  });

  it('refuses a raw LevelDB key, an unknown kind, and a record that does not fit its kind', () => {
    expect(isLogicalKey(Buffer.from('!call!000000000001'))).toBe(false);
    expect(() => decodeRecord(Buffer.from('!call!000000000001'), Buffer.from('{}'))).toThrow(/not a record of a logical backup/);
    expect(() => decodeRecord(Buffer.from('zfaas:widget:1'), Buffer.from('{}'))).toThrow(/unknown kind "widget"/);
    expect(() => decodeRecord(Buffer.from('zfaas:call:1'), Buffer.from('{"callNum":"one"}'))).toThrow();
    expect(() => decodeRecord(Buffer.from('zfaas:runtime:py'), Buffer.from('not json'))).toThrow(SyntaxError);
  });
});
