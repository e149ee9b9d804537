// The CLI's failures and their exit codes. Every failure reaches the user as one line on stderr with a
// code a script can test; nothing else may end the process with a stack trace.
import { CommanderError } from 'commander';

export const EXIT = {
  OK: 0,
  /** The API refused the request (404, 409, 400 ...) or something else went wrong. */
  FAILURE: 1,
  /** Bad flags or arguments: the request was never sent. */
  USAGE: 2,
  /** The call ran and ended in ERROR. */
  CALL_ERROR: 3,
  /** The call ran past its timeout. */
  CALL_TIMEOUT: 4,
  /** The call had not finished when we stopped waiting (it goes on; `zfaas call N` shows it later). */
  CALL_PENDING: 5,
  /** The API could not be reached at all (sysexits EX_UNAVAILABLE). */
  UNREACHABLE: 69,
  /** The API refused our credentials (sysexits EX_NOPERM). */
  AUTH: 77,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

// Not common/log.js's errText: that module loads pino, which a client command never needs.
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Text from elsewhere (a name the user typed, the API's message, a function's error) made safe for a
 * terminal: control characters (escape sequences could clear the screen or retitle the window) are shown
 * as \uXXXX; with `oneLine`, line breaks too, so a failure stays one line on stderr.
 */
export function printable(text: string, oneLine = true): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  const control = oneLine ? /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g : /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
  return text.replace(control, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A failure whose message is already meant for the user. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.FAILURE,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

/** The API answered with a status >= 400; `message` is its own `{"error": ...}` text. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message, status === 401 || status === 403 ? EXIT.AUTH : EXIT.FAILURE);
  }
}

export class UnreachableError extends CliError {
  constructor(api: string, reason: string) {
    super(`cannot reach the zfaas API at ${api} (${reason}); start it with "zfaas up" or point --api / ZFAAS_API at it`, EXIT.UNREACHABLE);
  }
}

/** Maps anything thrown by a command to its one line and exit code. */
export function describeFailure(e: unknown): { message: string; exitCode: ExitCode } {
  if (e instanceof CliError) return { message: e.message, exitCode: e.exitCode };
  // A commander argument parser used inside an action (e.g. a call number): still a usage error.
  if (e instanceof CommanderError) return { message: e.message.replace(/^error: /, ''), exitCode: EXIT.USAGE };
  return { message: errText(e), exitCode: EXIT.FAILURE };
}
