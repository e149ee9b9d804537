// The runtime's `dependencies` step, run once per function version per node. In effect it runs the
// function's own code (pip runs a package's setup.py, npm its install scripts), so it gets what a call
// gets: a container with limits, and no way to fill the host's disk. The function's tree is copied into a
// size-limited tmpfs at the runtime's path; after the step, the tree is streamed out as a tar on stdout and
// unpacked on the host, counted byte by byte, with node-tar refusing `..`, absolute paths and anything a
// symlink would redirect. The step's own prints go to stderr and become its log.
import type Docker from 'dockerode';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { x as untar } from 'tar';
import { dependenciesContainer, type Owner } from '../common/container-spec.js';
import { Bounded, inspectExited, removeContainer, waitOrKill } from '../common/docker.js';
import type { DepsJob, DepsRun } from '../protocol/worker.js';

const SRC = '/zfaas/src';

// Copy in, run the step with its stdout on stderr (stdout carries only the tar), copy out.
const script = (command: string): string =>
  [
    'set -e',
    `tar -C ${SRC} -cf - . | tar -C "$ZFAAS_TREE" -xf - --no-same-owner`,
    'cd "$ZFAAS_TREE"',
    `( ${command}\n) </dev/null >&2`,
    'exec tar -C "$ZFAAS_TREE" -cf - .',
  ].join('\n');

// The container is named by the instance: a shutdown in the middle of the step finds and removes it.
export async function runDependencies(docker: Docker, s: DepsJob, owner: Owner): Promise<DepsRun> {
  const maxBytes = s.maxMiB * 1024 * 1024;
  const container = await docker.createContainer(
    dependenciesContainer(
      {
        name: s.name,
        fn: s.fn,
        runtime: s.runtime,
        srcDir: s.srcDir,
        srcMount: SRC,
        script: script(s.runtime.dependencies.trim()),
        maxMiB: s.maxMiB,
        network: s.network,
      },
      owner,
    ),
  );
  const log = new Bounded(8000, 'tail');
  let tooLarge = false;
  let unpackError: string | undefined;
  // A container that is already gone needs no kill.
  const kill = (): void => void container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  try {
    const raw = (await container.attach({ stream: true, stdout: true, stderr: true })) as unknown as Readable;
    // The tar is a little larger than the files it holds (headers, padding): allow for that.
    const counted = new ByteLimit(maxBytes + 64 * 1024 * 1024, () => {
      tooLarge = true;
      kill();
    });
    const unpack = untar({ cwd: s.outDir, preserveOwner: false, strict: true, noMtime: true }) as unknown as Writable;
    counted.pipe(unpack);
    const unpacked = new Promise<void>((resolve) => {
      unpack.on('close', () => resolve());
      unpack.on('error', (e: Error) => {
        unpackError ??= e.message;
        // The rest of the stream is dropped, so that the step never blocks writing it.
        counted.unpipe(unpack);
        counted.resume();
        // A refused entry is a forged tar: the step is stopped. No tar at all is what a step whose command
        // failed leaves (it stopped before packing): it ends by itself, and its exit and output say why.
        if (!/TAR_BAD_ARCHIVE/.test(e.message)) kill();
        resolve();
      });
    });
    demux(raw, counted, (b) => log.push(b));
    raw.on('end', () => counted.end());
    await container.start();
    const exit = await waitOrKill(container, s.timeoutMs);
    await Promise.race([unpacked, new Promise((r) => setTimeout(r, 5000))]);
    const info = await inspectExited(
      docker,
      container,
      exit.timedOut || tooLarge || (unpackError !== undefined && !/TAR_BAD_ARCHIVE/.test(unpackError)),
    );
    return {
      exitCode: exit.StatusCode,
      timedOut: exit.timedOut,
      tooLarge,
      oomKilled: Boolean(info?.State?.OOMKilled),
      unpackError,
      log: log.text(),
    };
  } finally {
    await removeContainer(container);
  }
}

// Docker's multiplexed stream (8-byte headers: type, 3 zero bytes, length) split into stdout, written with
// backpressure (the unpacking sets the pace), and stderr, kept bounded.
function demux(raw: Readable, out: Writable, err: (b: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  raw.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const payload = pending.subarray(8, 8 + size);
      const stream = pending[0];
      pending = pending.subarray(8 + size);
      if (stream === 1) {
        if (!out.write(payload)) {
          raw.pause();
          out.once('drain', () => raw.resume());
        }
      } else err(payload);
    }
  });
}

// Passes bytes through until `max`, then stops passing and calls `over` once.
class ByteLimit extends Transform {
  private seen = 0;
  private stopped = false;
  constructor(
    private readonly max: number,
    private readonly over: () => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      if (!this.stopped) {
        this.stopped = true;
        this.over();
      }
      done();
      return;
    }
    done(null, chunk);
  }
}
