// The build-state rules: a version whose runtime has a dependencies step is born building; only a build
// still running takes an end, the first end wins, and an end says what it must (a failure what failed);
// a call runs on a ready build (or a version with none), waits on a running one, and ends at once in
// ERROR on a failed one, with what failed.
import { describe, expect, it } from 'vitest';
import { BUILD_LOG_MAX, callGate, endBuild, logTail, newBuild, type Build, type BuildEnd } from './build.js';

const started: Build = { state: 'building', startedAt: '2026-01-01T00:00:00.000Z' };
const ready: BuildEnd = { state: 'ready', startedAt: 'x', finishedAt: '2026-01-01T00:00:05.000Z', node: 'n1', digest: 'a'.repeat(64) };
const failed: BuildEnd = {
  state: 'failed',
  startedAt: 'x',
  finishedAt: '2026-01-01T00:00:05.000Z',
  node: 'n1',
  error: 'dependencies step failed (exit 3): no registry',
  log: 'no registry',
};

describe('a new version', () => {
  it('builds when its runtime has a dependencies step, and has no build otherwise', () => {
    const now = new Date('2026-01-01T00:00:00.000Z');
    expect(newBuild('npm install', now)).toEqual(started);
    expect(newBuild('  \n ', now)).toBeUndefined();
    expect(newBuild('', now)).toBeUndefined();
  });
});

describe('a build ending', () => {
  it('takes the end of a running build, keeping when it started', () => {
    expect(endBuild(started, ready)).toEqual({ changed: true, next: { ...ready, startedAt: started.startedAt } });
    expect(endBuild(started, failed)).toEqual({ changed: true, next: { ...failed, startedAt: started.startedAt } });
  });

  it('takes only the first end: a build sent twice does not change what the first said', () => {
    const first = endBuild(started, failed);
    if (!first.changed) throw new Error('refused');
    expect(endBuild(first.next, ready)).toEqual({ changed: false, why: 'the build has ended already (failed)' });
    expect(endBuild(first.next, failed).changed).toBe(false);
  });

  it('refuses an end for a version without a build', () => {
    expect(endBuild(undefined, ready)).toEqual({ changed: false, why: 'the version has no build' });
  });

  it('refuses a failure that does not say what failed, and a ready build with an error', () => {
    const { error: _error, ...mute } = failed;
    expect(endBuild(started, mute).changed).toBe(false);
    expect(endBuild(started, { ...ready, error: 'x' }).changed).toBe(false);
  });
});

describe('a call of a version', () => {
  const fn = (build?: Build) => ({ functionName: 'team~pkg', version: 3, ...(build ? { build } : {}) });

  it('runs when the version is built, or has nothing to build', () => {
    expect(callGate(fn({ ...ready, startedAt: 'x' }))).toEqual({ kind: 'run' });
    expect(callGate(fn())).toEqual({ kind: 'run' });
  });

  it('waits while the version builds', () => {
    expect(callGate(fn(started))).toEqual({ kind: 'wait' });
  });

  it('fails at once after a failed build, saying which version and what failed', () => {
    expect(callGate(fn(failed))).toEqual({
      kind: 'fail',
      error: 'version 3 of pkg cannot run: its build failed at deploy: dependencies step failed (exit 3): no registry',
    });
  });
});

describe('a log tail', () => {
  it('keeps a short log whole, without trailing blank lines', () => {
    expect(logTail('one\ntwo\n\n')).toBe('one\ntwo');
  });

  it('keeps the end of a long log, from a line start', () => {
    const log = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    const t = logTail(log);
    expect(t.length).toBeLessThanOrEqual(BUILD_LOG_MAX);
    expect(t.endsWith('line 1999')).toBe(true);
    expect(t.startsWith('line ')).toBe(true);
  });
});
