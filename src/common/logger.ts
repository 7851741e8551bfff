import { pino, type Logger } from 'pino';

/** Field paths whose values are secrets and must never reach a log line. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'key',
  '*.key',
  'primaryKey',
  '*.primaryKey',
  'sharedAccessKey',
  '*.sharedAccessKey',
  'token',
  '*.token',
  'sasToken',
  '*.sasToken',
  'authorization',
  '*.authorization',
  'headers.authorization',
];

export type { Logger };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Component name put on every line. */
  name: string;
  /** pino level. Defaults to `KEDGE_LOG_LEVEL`, else `info`. */
  level?: string;
  /** Write to this file instead of stderr. */
  file?: string;
}

/** A pino logger with kedge's redaction rules. Logs go to stderr (so stdout stays for output) or a file. */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? process.env.KEDGE_LOG_LEVEL ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    pino.destination(options.file ? { dest: options.file, mkdir: true } : 2),
  );
}

/** A logger that drops everything, for library use without a configured logger. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
