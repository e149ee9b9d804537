// The encryption of a backup file: AES-256-GCM in the STREAM construction (Hoang, Reyhanitabar, Rogaway
// and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance"; age and Tink's
// streaming AEAD are built the same way), so that every part is authenticated before restore uses a byte
// of it, and a file cut short, reordered or spliced fails as surely as one changed.
//
//   header  one line of JSON, in the clear:
//           {"format":"zfaas-backup","version":2,"cipher":"aes-256-gcm-stream","chunkBytes":65536,
//            "salt":BASE64(32 bytes),"keyId":HEX(8 bytes)}
//   parts   the sealed stream: part i is AES-256-GCM(key, nonce_i, plaintext_i, aad = the header line)
//           followed by its 16-byte tag. Every plaintext part is chunkBytes long but the last, which holds
//           0 to chunkBytes bytes; nonce_i is i as 11 bytes big-endian, then 1 for the last part, else 0.
//
// The key of a file is HKDF-SHA256 of the operator's key material with the file's own random salt, so no
// two files share a key (and their counters never a nonce). keyId is HKDF of the material alone: restore
// tells "made with another key" from "changed" by it, and it says nothing of the key.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';

export const CIPHER = 'aes-256-gcm-stream';
export const SEALED_VERSION = 2;
export const CHUNK_BYTES = 64 * 1024;
const TAG = 16;
const MAX_HEADER = 4096;
const KEY_INFO = 'zfaas-backup v2 aes-256-gcm';
const KEY_ID_INFO = 'zfaas-backup v2 key id';

export const SealedHeaderSchema = z.object({
  format: z.literal('zfaas-backup'),
  version: z.literal(SEALED_VERSION),
  cipher: z.literal(CIPHER),
  chunkBytes: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024),
  salt: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  keyId: z.string().regex(/^[a-f0-9]{16}$/),
});
export type SealedHeader = z.infer<typeof SealedHeaderSchema>;

// Why a sealed file cannot be opened; the message is meant for the user as it is.
export class Unopenable extends Error {}

export const keyIdOf = (material: string): string =>
  Buffer.from(hkdfSync('sha256', material, Buffer.alloc(0), KEY_ID_INFO, 8)).toString('hex');

const fileKey = (material: string, salt: Buffer): Buffer => Buffer.from(hkdfSync('sha256', material, salt, KEY_INFO, 32));

function nonce(i: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(i, 5, 6); // 11 bytes of counter; 2^48 parts of 64 KiB is far beyond any store
  n[11] = last ? 1 : 0;
  return n;
}

function seal(key: Buffer, aad: Buffer, i: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonce(i, last));
  c.setAAD(aad);
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function open(key: Buffer, aad: Buffer, i: number, last: boolean, part: Buffer): Buffer | null {
  const d = createDecipheriv('aes-256-gcm', key, nonce(i, last));
  d.setAAD(aad);
  d.setAuthTag(part.subarray(part.length - TAG));
  try {
    return Buffer.concat([d.update(part.subarray(0, part.length - TAG)), d.final()]);
  } catch {
    return null;
  }
}

// Encrypts a byte stream into a sealed file: the header line, then the parts.
export function sealer(material: string, chunkBytes = CHUNK_BYTES): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* (source) {
    const salt = randomBytes(32);
    const header: SealedHeader = {
      format: 'zfaas-backup',
      version: SEALED_VERSION,
      cipher: CIPHER,
      chunkBytes,
      salt: salt.toString('base64'),
      keyId: keyIdOf(material),
    };
    const aad = Buffer.from(`${JSON.stringify(header)}\n`);
    const key = fileKey(material, salt);
    yield aad;
    let pending: Buffer[] = [];
    let size = 0;
    let i = 0;
    for await (const b of source) {
      pending.push(b);
      size += b.length;
      if (size <= chunkBytes) continue;
      // A full part is sealed only once more follows it: the last part, whatever its size, is marked.
      const all = Buffer.concat(pending);
      let at = 0;
      for (; all.length - at > chunkBytes; at += chunkBytes) yield seal(key, aad, i++, false, all.subarray(at, at + chunkBytes));
      pending = [all.subarray(at)];
      size = all.length - at;
    }
    yield seal(key, aad, i, true, Buffer.concat(pending));
  };
}

// Decrypts a sealed file part by part; nothing comes out of a part that does not authenticate.
export function opener(material: string, name: string): (source: AsyncIterable<Buffer>) => AsyncGenerator<Buffer> {
  return async function* (source) {
    let buf: Buffer = Buffer.alloc(0);
    const it = source[Symbol.asyncIterator]();
    let ended = false;
    const more = async (): Promise<boolean> => {
      if (ended) return false;
      const r = await it.next();
      if (r.done) {
        ended = true;
        return false;
      }
      buf = buf.length === 0 ? r.value : Buffer.concat([buf, r.value]);
      return true;
    };
    let nl = -1;
    while ((nl = buf.indexOf(10)) < 0 && buf.length <= MAX_HEADER && (await more()));
    if (nl < 0) {
      const start = buf.subarray(0, 24).toString('latin1');
      if (ended && buf.length > 0 && '{"format":"zfaas-backup"'.startsWith(start.slice(0, 24)))
        throw new Unopenable(`${name} is truncated: it ends inside its header`);
      throw new Unopenable(`${name} is not a zfaas backup (no header line)`);
    }
    const aad = buf.subarray(0, nl + 1);
    let parsed: unknown;
    try {
      parsed = JSON.parse(aad.toString('utf8'));
    } catch {
      throw new Unopenable(`${name} is not a zfaas backup (its header is not JSON)`);
    }
    const h = SealedHeaderSchema.safeParse(parsed);
    if (!h.success) throw new Unopenable(`${name} is not an encrypted zfaas backup this zfaas reads (its header is not one)`);
    const mine = keyIdOf(material);
    if (h.data.keyId !== mine)
      throw new Unopenable(
        `${name} was encrypted with another backup key (its key id is ${h.data.keyId}, this key's is ${mine}): give the key it was made with (--backup-key-file or ZFAAS_BACKUP_KEY)`,
      );
    const key = fileKey(material, Buffer.from(h.data.salt, 'base64'));
    const part = h.data.chunkBytes + TAG;
    buf = buf.subarray(nl + 1);
    let i = 0;
    for (;;) {
      // A whole part with more after it is not the last; what is left at the end is.
      while (buf.length <= part && (await more()));
      if (buf.length > part) {
        const plain = open(key, aad, i, false, buf.subarray(0, part));
        if (!plain) throw new Unopenable(`${name} has been changed or damaged: its part ${i + 1} does not authenticate under this key`);
        buf = buf.subarray(part);
        i++;
        yield plain;
        continue;
      }
      if (buf.length < TAG) throw new Unopenable(`${name} is truncated: it ends inside its part ${i + 1}`);
      const plain = open(key, aad, i, true, buf);
      if (plain) {
        if (plain.length > 0) yield plain;
        return;
      }
      // A part that authenticates as a middle one, at the end: the parts after it were cut off.
      if (buf.length === part && open(key, aad, i, false, buf))
        throw new Unopenable(`${name} is truncated: it ends after its part ${i + 1}, before its last part`);
      throw new Unopenable(`${name} has been changed, damaged or cut short: its last part (${i + 1}) does not authenticate under this key`);
    }
  };
}
