// Structured logs (JSON lines); a readable form when a person is watching a terminal.
import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

// How pino-pretty shows a line, in this process's own logger and for the lines its children write.
const PRETTY = { colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' };

/** ZFAAS_LOG_FORMAT when it names a format, else pretty on a terminal and JSON lines anywhere else. */
export function logFormat(): LogFormat {
  const f = process.env.ZFAAS_LOG_FORMAT;
  if (f === 'pretty' || f === 'json') return f;
  return process.stdout.isTTY ? 'pretty' : 'json';
}

export function createLogger(name: string): Logger {
  const level = process.env.ZFAAS_LOG_LEVEL ?? 'info';
  if (logFormat() === 'pretty') return pino({ name, level, transport: { target: 'pino-pretty', options: PRETTY } });
  return pino({ name, level, base: { pid: process.pid } });
}

/**
 * Turns one JSON log line of a child process into what this process's pretty logger would print (a line
 * that is not JSON comes back as it is, with its line end). Children always log JSON: each one formatting
 * its own would cost it a worker thread.
 */
export function prettyLine(): (line: string) => string {
  return prettyFactory(PRETTY);
}

export { errText } from './errors.js';
