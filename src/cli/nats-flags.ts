import type { Command } from 'commander';

/** Flags every cloud-plane process takes to reach NATS (see `natsSettings`). */
export interface NatsFlags {
  natsUrl?: string;
  natsCreds?: string;
  natsUser?: string;
  natsCa?: string;
}

/** Adds the NATS connection flags; each falls back to its `KEDGE_NATS_*` variable. */
export function withNatsFlags(command: Command): Command {
  return command
    .option(
      '--nats-url <urls>',
      'NATS servers, comma-separated (env KEDGE_NATS_URL; default nats://127.0.0.1:4222)',
    )
    .option('--nats-creds <file>', 'NATS credentials file (env KEDGE_NATS_CREDS_FILE)')
    .option(
      '--nats-user <user>',
      'NATS user; the password comes from KEDGE_NATS_PASSWORD (env KEDGE_NATS_USER)',
    )
    .option('--nats-ca <file>', 'CA certificate for TLS to NATS (env KEDGE_NATS_CA_FILE)');
}

/** A number flag, falling back to an environment variable, then to `fallback`. */
export function numberFrom(flag: string | undefined, envName: string, fallback: number): number {
  const raw = flag ?? process.env[envName];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(
      `${envName.toLowerCase().replaceAll('_', '-')} must be a whole number, got "${raw}"`,
    );
  return value;
}

/** A list flag, falling back to a comma-separated environment variable. */
export function listFrom(flag: string[] | undefined, envName: string): string[] {
  if (flag?.length) return flag;
  return (process.env[envName] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
