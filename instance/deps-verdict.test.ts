// What a dependencies step's run says: a command that failed is reported in its own words (its exit and
// the end of its output), never as the archive the node could not unpack because the step stopped before
// packing one; a tar the step forged is still reported as refused; the node's limits say which one.
import { describe, expect, it } from 'vitest';
import type { DepsRun } from '../protocol/worker.js';
import { depsFailure } from './deps-verdict.js';

const limits = { timeoutMs: 300_000, maxMiB: 48 };
const run = (r: Partial<DepsRun>): DepsRun => ({ exitCode: 0, timedOut: false, tooLarge: false, oomKilled: false, log: '', ...r });
const NO_TAR = 'TAR_BAD_ARCHIVE: Unrecognized archive format';

describe('a dependencies step', () => {
  it('that built its tree says nothing', () => {
    expect(depsFailure(run({ log: 'added 3 packages' }), limits)).toBeUndefined();
  });

  it('whose command failed says so with the command output, not the unpacking', () => {
    const log = 'npm ERR! code EAI_AGAIN\nnpm ERR! request to https://registry.npmjs.org/left-pad failed';
    const said = depsFailure(run({ exitCode: 1, unpackError: NO_TAR, log }), limits);
    expect(said).toBe(`dependencies step failed (exit 1): ${log}`);
    expect(said).not.toMatch(/TAR_BAD_ARCHIVE/);
  });

  it('whose command failed silently says that it printed nothing', () => {
    expect(depsFailure(run({ exitCode: 3, unpackError: NO_TAR }), limits)).toBe('dependencies step failed (exit 3) (it printed nothing)');
  });

  it('that exited 0 and made no tree says so', () => {
    expect(depsFailure(run({ unpackError: NO_TAR, log: 'done' }), limits)).toBe(
      "dependencies step made no tree: it exited 0 but wrote no archive of the function's folder: done",
    );
  });

  it('that forged a tar the node refused says the tree could not be unpacked', () => {
    const e = 'TAR_ENTRY_ERROR: path contains ..';
    expect(depsFailure(run({ exitCode: 137, unpackError: e }), limits)).toBe(
      `the tree the dependencies step made could not be unpacked: ${e}`,
    );
  });

  it("stopped by the node's limits says which, before anything else", () => {
    expect(depsFailure(run({ timedOut: true, exitCode: 137, unpackError: NO_TAR, log: 'Collecting numpy' }), limits)).toBe(
      'dependencies step timed out after 300 s: Collecting numpy',
    );
    expect(depsFailure(run({ tooLarge: true, exitCode: 137 }), limits)).toBe(
      'dependencies step made a tree larger than the 48 MiB a function may hold',
    );
    expect(depsFailure(run({ exitCode: 1, log: 'write error: No space left on device' }), limits)).toMatch(/larger than the 48 MiB/);
    expect(depsFailure(run({ oomKilled: true, exitCode: 137 }), limits)).toBe('dependencies step ran out of memory (it printed nothing)');
  });
});
