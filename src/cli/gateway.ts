import type { Command } from 'commander';
import { readFileSync, watchFile, unwatchFile } from 'node:fs';
import { connectNats, natsSettings } from '../common/cloudplane/nats.js';
import { startHealthServer } from '../common/health-server.js';
import { createLogger } from '../common/logger.js';
import { Gateway } from '../gateway/gateway.js';
import { numberFrom, withNatsFlags, type NatsFlags } from './nats-flags.js';

interface GatewayFlags extends NatsFlags {
  port?: string;
  host: string;
  tlsCert?: string;
  tlsKey?: string;
  maxConnections?: string;
  metricsPort?: string;
}

/** Mounted Secrets change on disk when the controller renews them; they are re-read this often. */
const TLS_POLL_MS = 60_000;

export function registerGatewayCommand(program: Command): void {
  const command = program
    .command('gateway')
    .description(
      'Run a kedge gateway: the TLS MQTT endpoint devices dial, backed by NATS JetStream.',
    )
    .option('--port <port>', 'TLS MQTT port (env KEDGE_GATEWAY_PORT; default 8883)')
    .option('--host <address>', 'address to listen on', '0.0.0.0')
    .option('--tls-cert <file>', 'serving certificate, PEM (env KEDGE_GATEWAY_TLS_CERT)')
    .option('--tls-key <file>', 'its private key, PEM (env KEDGE_GATEWAY_TLS_KEY)')
    .option(
      '--max-connections <n>',
      'open connections at most (env KEDGE_GATEWAY_MAX_CONNECTIONS; default 10000)',
    )
    .option(
      '--metrics-port <port>',
      '/healthz, /readyz and /metrics (env KEDGE_METRICS_PORT; default 8080)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  kedge gateway --nats-url nats://nats:4222 --tls-cert /tls/tls.crt --tls-key /tls/tls.key\n',
    );
  withNatsFlags(command).action(async (flags: GatewayFlags) => {
    const log = createLogger({ name: 'kedge-gateway' });
    const certFile = flags.tlsCert ?? process.env.KEDGE_GATEWAY_TLS_CERT;
    const keyFile = flags.tlsKey ?? process.env.KEDGE_GATEWAY_TLS_KEY;
    if (!certFile || !keyFile)
      throw new Error('--tls-cert and --tls-key (or KEDGE_GATEWAY_TLS_CERT/KEY) are required');
    const readTls = (): { certPem: string; keyPem: string } => ({
      certPem: readFileSync(certFile, 'utf8'),
      keyPem: readFileSync(keyFile, 'utf8'),
    });
    let ready = false;
    const nc = await connectNats(natsSettings(flags), 'kedge-gateway', log);
    const gateway = await Gateway.start({
      nc,
      port: numberFrom(flags.port, 'KEDGE_GATEWAY_PORT', 8883),
      host: flags.host,
      tls: readTls(),
      limits: {
        maxConnections: numberFrom(flags.maxConnections, 'KEDGE_GATEWAY_MAX_CONNECTIONS', 10_000),
      },
      log,
    });
    const health = await startHealthServer(
      numberFrom(flags.metricsPort, 'KEDGE_METRICS_PORT', 8080),
      gateway.metrics.registry,
      () => ready && !nc.isClosed(),
    );
    watchFile(certFile, { interval: TLS_POLL_MS }, () => {
      gateway.setCertificate(readTls());
      log.info('serving a renewed certificate');
    });
    ready = true;
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log.info('shutting down');
    unwatchFile(certFile);
    await gateway.close();
    await nc.drain().catch(() => nc.close());
    health.close();
  });
}
