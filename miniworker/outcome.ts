// How a finished container run becomes a call's outcome (the function contract in the brief).
import type { CallOutcome } from '../common/model.js';
import type { RunResult } from '../common/docker.js';
import { failure } from '../common/faults.js';

export const TRUNCATION_MARK = '\n[zfaas: output truncated]';
// Logs keep their end: the mark says that what came before was dropped.
export const LOGS_TRUNCATION_MARK = '[zfaas: earlier output truncated]\n';

export function outcomeOf(r: RunResult, timeoutS: number, memoryMiB: number): CallOutcome {
  const logs = r.stderrTruncated ? LOGS_TRUNCATION_MARK + r.stderr : r.stderr;
  if (r.outputExceeded !== undefined) {
    const mib = Math.round(r.outputExceeded / (1024 * 1024));
    const result = r.stdoutTruncated ? r.stdout + TRUNCATION_MARK : r.stdout;
    return {
      ...failure('function', `function wrote more than ${mib} MiB of output and was stopped`),
      result,
      logs,
      durationMs: r.durationMs,
    };
  }
  if (r.timedOut) {
    return {
      ...failure('timeout', `function ran past its timeout of ${timeoutS} s and was killed`),
      logs,
      durationMs: r.durationMs,
    };
  }
  if (r.oomKilled) {
    return {
      ...failure('function', `function was killed: it exceeded its memory limit of ${memoryMiB} MiB`),
      logs,
      durationMs: r.durationMs,
    };
  }
  if (r.exitCode !== 0) {
    const tail = r.stderr.trim().slice(-4000);
    return {
      ...failure('function', tail ? `exit code ${r.exitCode}: ${tail}` : `exit code ${r.exitCode}`),
      logs,
      durationMs: r.durationMs,
    };
  }
  const result = r.stdout.endsWith('\n') ? r.stdout.slice(0, -1) : r.stdout;
  return { status: 'DONE', result: r.stdoutTruncated ? result + TRUNCATION_MARK : result, logs, durationMs: r.durationMs };
}
