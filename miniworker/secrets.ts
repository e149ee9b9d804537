// Secrets for containers without a loader's line (a fresh container per call, a held container whose calls
// are `docker exec`s): each new or changed value is written into the container's secrets tmpfs by a
// `docker exec` of `cat` as the function's uid, the value on that exec's stdin. So a value never appears
// in a command line, the environment, a label or the engine's logs, and never touches the node's disk.
import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { USER } from '../common/container-spec.js';
import { Bounded, type Demuxer } from '../common/docker.js';
import { SECRETS_DIR } from '../protocol/loader.js';
import type { SecretFile, SecretStamps } from '../protocol/worker.js';

// $0: the folder, $1: the name (both arguments, never interpolated). The folder is 0500 (the function
// cannot write it); it is opened for the write and closed again. umask 0277: the file is born 0400.
const WRITE = 'set -e; chmod 0700 "$0"; rm -f "$0/$1"; umask 0277; cat > "$0/$1"; chmod 0500 "$0"';
const REMOVE = 'set -e; d="$0"; chmod 0700 "$d"; for n in "$@"; do rm -f "$d/$n"; done; chmod 0500 "$d"';

const EXEC_TIMEOUT_MS = 10_000;

// Brings the container's folder to `files`: writes what is new or changed, removes what is not listed
// (a secret the function no longer names). `held` is updated as each step succeeds.
export async function syncSecrets(container: Docker.Container, files: SecretFile[], held: SecretStamps = new Map()): Promise<void> {
  const names = new Set(files.map((f) => f.name));
  const stale = [...held.keys()].filter((n) => !names.has(n));
  if (stale.length) {
    await execWith(container, ['sh', '-c', REMOVE, SECRETS_DIR, ...stale]);
    for (const n of stale) held.delete(n);
  }
  // One at a time: each exec opens and closes the folder.
  for (const f of files) {
    if (held.get(f.name) === f.stamp) continue;
    await execWith(container, ['sh', '-c', WRITE, SECRETS_DIR, f.name], Buffer.from(f.value, 'base64'));
    held.set(f.name, f.stamp);
  }
}

// One exec as the function's uid, `input` on its stdin; a non-zero exit or no end in time is an error
// (what it wrote on stderr says why: a name, a permission, never a value).
async function execWith(container: Docker.Container, cmd: string[], input?: Buffer): Promise<void> {
  const exec = await container.exec({ Cmd: cmd, User: USER, AttachStdin: true, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: true });
  const err = new Bounded(2000, 'tail');
  const out = new PassThrough();
  const errOut = new PassThrough();
  out.resume();
  errOut.on('data', (b: Buffer) => err.push(b));
  (container.modem as Demuxer).demuxStream(stream, out, errOut);
  const ended = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writing a secret into the container did not finish in time')), EXEC_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    stream.on('end', done);
    stream.on('close', done);
    stream.on('error', done);
  });
  stream.end(input ?? Buffer.alloc(0));
  await ended;
  const info = await exec.inspect();
  if (info.ExitCode !== 0)
    throw new Error(`could not write the function's secrets (exit ${info.ExitCode}): ${err.text().trim().slice(-500)}`);
}
