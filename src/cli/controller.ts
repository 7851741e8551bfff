import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { natsSettings } from '../common/cloudplane/nats.js';
import { createLogger } from '../common/logger.js';
import { KubeClient } from '../controller/kube/client.js';
import { DEFAULT_SERVICE_API_SERVICE, startController } from '../controller/manager.js';
import { listFrom, numberFrom, withNatsFlags, type NatsFlags } from './nats-flags.js';

interface ControllerFlags extends NatsFlags {
  kubeconfig?: string;
  namespace: string;
  streamReplicas?: string;
  embeddedGateway: boolean;
  gatewayPort?: string;
  gatewayHostname: string[];
  kubeletPort: string;
  kubeletAddress: string;
  clientCaFile?: string;
  metricsPort: string;
  leaderElect: boolean;
  watchNamespace: string[];
  concurrency: string;
  serviceApiPort: string;
  serviceApiService: string;
  serveMetricsApi?: boolean;
  certValiditySecs?: string;
  certRenewBeforeSecs?: string;
}

export function registerControllerCommand(program: Command): void {
  const command = program
    .command('controller')
    .description(
      'Run the kedge controller: operator, virtual nodes, kubelet API, service API, and with --embedded-gateway a gateway.',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use (default: in-cluster or $KUBECONFIG)')
    .option(
      '--namespace <ns>',
      'namespace for the leader Lease and the CA Secret',
      process.env.POD_NAMESPACE ?? 'kedge-system',
    )
    .option(
      '--stream-replicas <n>',
      'JetStream replicas of kedge streams and buckets (env KEDGE_STREAM_REPLICAS; default 1)',
    )
    .option(
      '--embedded-gateway',
      'also run a gateway in this process (env KEDGE_EMBEDDED_GATEWAY=true)',
      process.env.KEDGE_EMBEDDED_GATEWAY === 'true',
    )
    .option(
      '--gateway-port <port>',
      'TLS MQTT port of the embedded gateway (env KEDGE_GATEWAY_PORT; default 8883)',
    )
    .option(
      '--gateway-hostname <name...>',
      'host names devices use to reach the gateways, certificate SANs (env KEDGE_GATEWAY_HOSTNAMES, comma-separated)',
    )
    .option('--kubelet-port <port>', 'kubelet API HTTPS port', '10250')
    .option(
      '--kubelet-address <ip>',
      'address the API server uses to reach the kubelet API',
      process.env.POD_IP ?? '127.0.0.1',
    )
    .option(
      '--client-ca-file <path>',
      'CA of the API server kubelet client certificate (default: read from the cluster)',
    )
    .option(
      '--service-api-port <port>',
      'HTTPS port of the service API (api.kedge.io, through the API server aggregator)',
      '8443',
    )
    .option(
      '--service-api-service <name>',
      'Service in --namespace that the api.kedge.io APIService points at (certificate name)',
      DEFAULT_SERVICE_API_SERVICE,
    )
    .option(
      '--cert-validity-secs <secs>',
      'validity of the kubelet API and service API certificates (default: one year)',
    )
    .option(
      '--cert-renew-before-secs <secs>',
      'renew those certificates this long before they expire (default: 30 days)',
    )
    .option(
      '--serve-metrics-api',
      'serve metrics.k8s.io (kubectl top) for kedge nodes; only in a cluster without metrics-server',
    )
    .option('--metrics-port <port>', '/healthz, /readyz and /metrics port', '8080')
    .option('--no-leader-elect', 'run without leader election (a single replica)')
    .option('--watch-namespace <ns...>', 'namespaces with devices and pods (default: all)', [])
    .option('--concurrency <n>', 'reconciles in parallel per resource kind', '4')
    .addHelpText(
      'after',
      '\nExample:\n  kedge controller --kubeconfig ~/.kube/config --nats-url nats://nats:4222 --embedded-gateway --gateway-hostname kedge.example.com\n',
    );
  withNatsFlags(command).action(async (flags: ControllerFlags) => {
    const log = createLogger({ name: 'kedge-controller' });
    const controller = await startController({
      client: KubeClient.fromConfig(flags.kubeconfig),
      log,
      namespace: flags.namespace,
      nats: natsSettings(flags),
      streamReplicas: numberFrom(flags.streamReplicas, 'KEDGE_STREAM_REPLICAS', 1),
      embeddedGateway: flags.embeddedGateway
        ? { port: numberFrom(flags.gatewayPort, 'KEDGE_GATEWAY_PORT', 8883) }
        : undefined,
      gatewayHostNames: listFrom(flags.gatewayHostname, 'KEDGE_GATEWAY_HOSTNAMES'),
      kubeletPort: Number(flags.kubeletPort),
      kubeletAddress: flags.kubeletAddress,
      clientCaPem: flags.clientCaFile ? await readFile(flags.clientCaFile, 'utf8') : undefined,
      metricsPort: Number(flags.metricsPort),
      leaderElection: flags.leaderElect,
      watchNamespaces: flags.watchNamespace,
      concurrency: Number(flags.concurrency),
      serviceApiPort: Number(flags.serviceApiPort),
      serviceApiService: flags.serviceApiService,
      metricsApi: flags.serveMetricsApi === true,
      certificates: {
        ...(flags.certValiditySecs ? { validitySecs: Number(flags.certValiditySecs) } : {}),
        ...(flags.certRenewBeforeSecs
          ? { renewBeforeSecs: Number(flags.certRenewBeforeSecs) }
          : {}),
      },
    });
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log.info('shutting down');
    await controller.stop();
  });
}
