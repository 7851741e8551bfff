import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { createLogger } from '../common/logger.js';
import type { TelemetryConsumer } from '../controller/cloudhub/auth.js';
import { KubeClient } from '../controller/kube/client.js';
import { DEFAULT_SERVICE_API_SERVICE, startController } from '../controller/manager.js';

interface ControllerFlags {
  kubeconfig?: string;
  namespace: string;
  hubPort: string;
  hubHostname: string[];
  kubeletPort: string;
  kubeletAddress: string;
  clientCaFile?: string;
  metricsPort: string;
  leaderElect: boolean;
  webhook: string[];
  consumersFile?: string;
  watchNamespace: string[];
  concurrency: string;
  serviceApiPort: string;
  serviceApiService: string;
  certValiditySecs?: string;
  certRenewBeforeSecs?: string;
}

export function registerControllerCommand(program: Command): void {
  program
    .command('controller')
    .description(
      'Run the kedge controller: operator, virtual nodes, cloud hub, kubelet API and service API.',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use (default: in-cluster or $KUBECONFIG)')
    .option(
      '--namespace <ns>',
      'namespace for the leader Lease and the CA Secret',
      process.env.POD_NAMESPACE ?? 'kedge-system',
    )
    .option('--hub-port <port>', 'cloud hub TLS MQTT port', '8883')
    .option(
      '--hub-hostname <name...>',
      'host names devices use to reach the cloud hub (certificate SANs)',
      [],
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
    .option('--metrics-port <port>', '/healthz, /readyz and /metrics port', '8080')
    .option('--no-leader-elect', 'run without leader election (a single replica)')
    .option('--webhook <url...>', 'HTTP endpoints that receive device telemetry as JSON POSTs', [])
    .option('--watch-namespace <ns...>', 'namespaces with devices and pods (default: all)', [])
    .option('--concurrency <n>', 'reconciles in parallel per resource kind', '4')
    .option(
      '--consumers-file <path>',
      'JSON list of telemetry consumers [{username, password, namespaces}]',
    )
    .addHelpText(
      'after',
      '\nExample:\n  kedge controller --kubeconfig ~/.kube/config --hub-hostname kedge.example.com\n',
    )
    .action(async (flags: ControllerFlags) => {
      const log = createLogger({ name: 'kedge-controller' });
      const consumers = flags.consumersFile
        ? (JSON.parse(await readFile(flags.consumersFile, 'utf8')) as TelemetryConsumer[])
        : [];
      const controller = await startController({
        client: KubeClient.fromConfig(flags.kubeconfig),
        log,
        namespace: flags.namespace,
        hubPort: Number(flags.hubPort),
        hubHostNames: flags.hubHostname,
        kubeletPort: Number(flags.kubeletPort),
        kubeletAddress: flags.kubeletAddress,
        clientCaPem: flags.clientCaFile ? await readFile(flags.clientCaFile, 'utf8') : undefined,
        metricsPort: Number(flags.metricsPort),
        leaderElection: flags.leaderElect,
        webhooks: flags.webhook,
        consumers,
        watchNamespaces: flags.watchNamespace,
        concurrency: Number(flags.concurrency),
        serviceApiPort: Number(flags.serviceApiPort),
        serviceApiService: flags.serviceApiService,
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
