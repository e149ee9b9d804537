// What a dependencies step's run says, in one line for the build's record: nothing (it built the tree), or
// what failed, with the end of the step's own output (npm's, pip's words) where the step printed any. Pure.
//
// The order matters. The node's own limits first (time, size, memory: the step was stopped). Then a tar the
// node refused entry by entry (the step forged one: it is killed for it). Then the step's exit: a command
// that failed stops the step before it packs its tree, so the node finds no tar at all - that is the
// command's failure, never the unpacking's. Last, a step that exited 0 and still made no tree.
import type { DepsRun } from '../protocol/worker.js';

export interface DepsLimits {
  timeoutMs: number;
  maxMiB: number;
}

// How much of the output goes into the one-line error (the record keeps more: Build.log).
const ERROR_TAIL = 1500;

export function depsFailure(r: DepsRun, limits: DepsLimits): string | undefined {
  const tail = r.log.trim().slice(-ERROR_TAIL);
  const said = tail ? `: ${tail}` : ' (it printed nothing)';
  if (r.timedOut) return `dependencies step timed out after ${limits.timeoutMs / 1000} s${said}`;
  if (r.tooLarge || /No space left on device/i.test(tail))
    return `dependencies step made a tree larger than the ${limits.maxMiB} MiB a function may hold${tail ? `: ${tail.slice(-500)}` : ''}`;
  if (r.oomKilled) return `dependencies step ran out of memory${said}`;
  const noTar = r.unpackError !== undefined && /TAR_BAD_ARCHIVE/.test(r.unpackError);
  if (r.unpackError !== undefined && !noTar) return `the tree the dependencies step made could not be unpacked: ${r.unpackError}`;
  if (r.exitCode !== 0) return `dependencies step failed (exit ${r.exitCode ?? 'unknown'})${said}`;
  if (noTar) return `dependencies step made no tree: it exited 0 but wrote no archive of the function's folder${said}`;
  return undefined;
}
