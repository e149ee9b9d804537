// Structured logs (JSON lines); a readable form when a person is watching a terminal.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string): Logger {
  const level = process.env.ZFAAS_LOG_LEVEL ?? 'info';
  const format = process.env.ZFAAS_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format === 'pretty') {
    return pino({
      name,
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' } },
    });
  }
  return pino({ name, level, base: { pid: process.pid } });
}

export { errText } from './errors.js';
