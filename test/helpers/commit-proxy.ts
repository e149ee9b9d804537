// A TCP relay on loopback in front of a PostgreSQL server that can break the connection carrying the next
// COMMIT, as a primary lost mid-commit does, in either of the two ways a client cannot tell apart:
// `after` passes the COMMIT on and then cuts the connection (it committed, the answer never comes back);
// `before` cuts it without passing the COMMIT on (it did not commit); `silent` is a host that vanished
// mid-commit: the server's end goes without the COMMIT, and the client hears nothing, not even a reset.
// Other connections pass untouched.
// Stopped by the test that made it.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { freePort } from './platform.js';

export interface CommitProxy {
  port: number;
  // Breaks the next connection that sends a COMMIT; resolves when it did.
  loseNextCommit(when: Loss): Promise<void>;
  close(): Promise<void>;
}

const COMMIT = Buffer.from('COMMIT');

export type Loss = 'before' | 'after' | 'silent';

export async function commitProxy(targetPort: number): Promise<CommitProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let armed: { when: Loss; done: () => void } | null = null;
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    let cut = false;
    let silent = false; // this connection's client is left hanging
    client.on('data', (chunk: Buffer) => {
      if (cut) return;
      const a = armed;
      // A simple-protocol query ('Q') holding COMMIT: what a transaction's last round trip sends.
      if (a && chunk[0] === 0x51 && chunk.includes(COMMIT)) {
        armed = null;
        cut = true;
        silent = a.when === 'silent';
        if (!silent) client.destroy(); // the client hears nothing more
        if (a.when === 'after')
          upstream.end(chunk); // the server gets the COMMIT, then the end of the connection
        else upstream.destroy();
        a.done();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!cut) client.write(chunk);
    });
    client.on('close', () => {
      if (!cut) upstream.destroy();
    });
    upstream.on('close', () => {
      if (!silent) client.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    loseNextCommit: (when) =>
      new Promise<void>((done) => {
        armed = { when, done };
      }),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
