// CURVE security for every ZMQ link between hosts (API broker, DB service, instances). Keys are Z85 text,
// as `zfaas keys` prints them. Servers (API broker, DB service) hold one secret key; clients know the
// servers' public key and hold their own pair; servers accept only client keys on their allowed list,
// checked by a ZAP handler (ZeroMQ's authentication protocol, RFC 27) in the same process.
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { curveKeyPair, Router, type Socket } from 'zeromq';
import { errText, type Logger } from './log.js';

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

export function z85Decode(s: string): Buffer {
  if (s.length % 5 !== 0) throw new Error('a Z85 key has a length that is a multiple of 5');
  const out = Buffer.alloc((s.length / 5) * 4);
  for (let i = 0; i < s.length; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85.indexOf(s[i + j]!);
      if (d < 0) throw new Error(`not a Z85 character: ${JSON.stringify(s[i + j])}`);
      v = v * 85 + d;
    }
    out.writeUInt32BE(v >>> 0, (i / 5) * 4);
  }
  return out;
}

export function z85Encode(b: Buffer): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4) {
    let v = b.readUInt32BE(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[v % 85]! + chunk;
      v = Math.floor(v / 85);
    }
    s += chunk;
  }
  return s;
}

// The public key of a CURVE secret key (X25519, as libsodium's crypto_scalarmult_base).
export function curvePublicKey(secretZ85: string): string {
  const secret = z85Decode(secretZ85);
  if (secret.length !== 32) throw new Error('a CURVE secret key is 40 Z85 characters');
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]);
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(spki.length - 32));
}

export function newKeyPair(): { publicKey: string; secretKey: string } {
  return curveKeyPair();
}

export interface CurveServer {
  secretKey: string;
  allowed: string[]; // client public keys
}

export interface CurveClient {
  secretKey: string;
  serverKey: string;
}

export const serverOptions = (c?: CurveServer): Record<string, unknown> =>
  c ? { curveServer: true, curveSecretKey: c.secretKey, zapDomain: 'zfaas' } : {};

export const clientOptions = (c?: CurveClient): Record<string, unknown> =>
  c ? { curveServerKey: c.serverKey, curveSecretKey: c.secretKey, curvePublicKey: curvePublicKey(c.secretKey) } : {};

// Reads keys from flags or the environment; a malformed key is a startup error, not a silent fallback.
export function parseKeyList(v: string | undefined): string[] {
  const keys = (v ?? '')
    .split(/[\s,]+/)
    .map((k) => k.trim())
    .filter(Boolean);
  for (const k of keys) if (z85Decode(k).length !== 32) throw new Error(`not a CURVE public key: ${k}`);
  return keys;
}

let zap: { allowed: Set<string>; socket: Router } | undefined;

// One ZAP handler per process answers for every CURVE server socket in it (they share the context).
export async function startZap(allowed: string[], log: Logger): Promise<void> {
  if (zap) {
    for (const k of allowed) zap.allowed.add(k);
    return;
  }
  const socket = new Router({ linger: 0 });
  await socket.bind('inproc://zeromq.zap.01');
  zap = { allowed: new Set(allowed), socket };
  void (async () => {
    try {
      for await (const frames of socket) {
        // [peer, "", version, requestId, domain, address, identity, mechanism, ...credentials]
        const [peer, , version, requestId, , address, , mechanism, key] = frames as Buffer[];
        const publicKey = mechanism?.toString() === 'CURVE' && key?.length === 32 ? z85Encode(key) : '';
        const ok = publicKey !== '' && zap!.allowed.has(publicKey);
        if (!ok)
          log.warn({ address: address?.toString(), key: publicKey || mechanism?.toString() }, 'node link refused: unknown CURVE key');
        await socket.send([
          peer!,
          Buffer.alloc(0),
          version ?? Buffer.from('1.0'),
          requestId ?? Buffer.alloc(0),
          Buffer.from(ok ? '200' : '400'),
          Buffer.from(ok ? 'OK' : 'unknown key'),
          Buffer.from(publicKey),
          Buffer.alloc(0),
        ]);
      }
    } catch (e) {
      if (zap) log.error({ err: errText(e) }, 'ZAP handler stopped');
    }
  })();
}

// Handshakes that fail before ZAP is asked (a replayed or forged HELLO/INITIATE, a client with the wrong
// server key) never reach the handler above; libzmq reports them only as socket events, so log those too.
export function logFailedHandshakes(socket: Socket, log: Logger, what: string): void {
  void (async () => {
    try {
      for await (const ev of socket.events) {
        // `handshake:error:auth` follows a ZAP refusal, which the handler has logged with the key already.
        if (ev.type === 'handshake:error:protocol' || ev.type === 'handshake:error:other')
          log.warn(
            { address: ev.address, reason: ev.type.slice('handshake:error:'.length), err: errText(ev.error) },
            `${what} refused: CURVE handshake failed`,
          );
      }
    } catch {
      // the socket closed: nothing more to watch
    }
  })();
}

export function stopZap(): void {
  const z = zap;
  zap = undefined;
  z?.socket.close();
}
