// API keys: "zfk_" + a 16-hex id + "_" + 32 random bytes (base64url). The id finds the record; the random
// part is checked against a salted scrypt hash (a slow hash, so a stolen store does not yield keys), in
// constant time. The key itself is shown once, when it is made or rotated, and stored nowhere.
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { KeyRecord, Role } from '../../common/model.js';

const KEY_RE = /^zfk_([a-f0-9]{16})_([A-Za-z0-9_-]{43})$/;
// 16 MiB and about 40 ms of one core per check; the API checks a key once and then keeps the answer.
const SCRYPT: ScryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

const scrypt = (secret: string, salt: Buffer): Promise<Buffer> =>
  new Promise((resolve, reject) => scryptCb(secret, salt, 32, SCRYPT, (e, k) => (e ? reject(e) : resolve(k))));

// The id and secret part of something sent as a key; null when it is not shaped like one.
export function parseKey(key: string): { id: string; secret: string } | null {
  const m = KEY_RE.exec(key);
  return m ? { id: m[1]!, secret: m[2]! } : null;
}

// A new key, and its record to store (`id` given: the same key rotated).
export async function makeKey(namespace: string, role: Role, id?: string): Promise<{ key: string; record: KeyRecord }> {
  const keyId = id ?? randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const salt = randomBytes(16);
  const hash = await scrypt(secret, salt);
  return {
    key: `zfk_${keyId}_${secret}`,
    record: {
      id: keyId,
      namespace,
      role,
      salt: salt.toString('hex'),
      hash: hash.toString('hex'),
      createdAt: new Date().toISOString(),
    },
  };
}

export async function keyMatches(secret: string, record: KeyRecord): Promise<boolean> {
  const got = await scrypt(secret, Buffer.from(record.salt, 'hex'));
  return timingSafeEqual(got, Buffer.from(record.hash, 'hex'));
}
