import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { CA_CERT_KEY, CA_CONFIGMAP } from '../controller/certificates.js';
import { KubeClient, Resources, type KubeObject } from '../controller/kube/client.js';
import { keySecretName } from '../controller/reconcile-device.js';
import type { EdgeDevice } from '../crds/index.js';

/** How long bootstrap waits for the controller to generate the device key. */
const KEY_WAIT_MS = 30_000;

interface BootstrapFlags {
  namespace: string;
  kubeconfig?: string;
  hubUrl: string;
  controllerNamespace: string;
  dataDir: string;
  runtime: string;
  /** For an X.509 device: where its certificate and key are on the device. */
  certFile?: string;
  keyFile?: string;
}

/** Where an X.509 device's certificate and key are, unless `--cert-file`/`--key-file` say. */
const DEFAULT_CERT_FILE = '/etc/kedge/device.crt';
const DEFAULT_KEY_FILE = '/etc/kedge/device.key';

type SecretObject = KubeObject & { data?: Record<string, string> };

/** The `kedge node` configuration a device needs to join the cluster. */
export async function bootstrapConfig(
  client: KubeClient,
  name: string,
  flags: BootstrapFlags,
): Promise<Record<string, unknown>> {
  const device = await client.find<EdgeDevice & KubeObject>(
    Resources.edgeDevices(flags.namespace),
    name,
  );
  if (!device)
    throw new KedgeError(
      ErrorCode.NotFound,
      `EdgeDevice ${flags.namespace}/${name} not found; kubectl apply it first`,
    );
  // An X.509 device brings its own certificate; the configuration only says where it is.
  const credential =
    device.spec.authentication?.type === 'X509'
      ? {
          x509: {
            certFile: flags.certFile ?? DEFAULT_CERT_FILE,
            keyFile: flags.keyFile ?? DEFAULT_KEY_FILE,
          },
        }
      : { key: await waitForKey(client, flags.namespace, keySecretName(device)) };
  // The CA certificate only: enrolment needs no access to the CA Secret and its key.
  const ca = await client.find<KubeObject & { data?: Record<string, string> }>(
    Resources.configMaps(flags.controllerNamespace),
    CA_CONFIGMAP,
  );
  const caPem = ca?.data?.[CA_CERT_KEY];
  if (!caPem)
    throw new KedgeError(
      ErrorCode.NotFound,
      `ConfigMap ${flags.controllerNamespace}/${CA_CONFIGMAP} not found; is kedge controller running?`,
    );
  return {
    deviceId: name,
    dataDir: flags.dataDir,
    agent: { runtime: flags.runtime },
    cloud: {
      url: flags.hubUrl,
      namespace: flags.namespace,
      device: name,
      ...credential,
      caPem,
      ...(device.spec.heartbeat?.intervalSecs
        ? { heartbeatSecs: device.spec.heartbeat.intervalSecs }
        : {}),
    },
  };
}

async function waitForKey(
  client: KubeClient,
  namespace: string,
  secretName: string,
): Promise<string> {
  const deadline = Date.now() + KEY_WAIT_MS;
  while (Date.now() < deadline) {
    const secret = await client.find<SecretObject>(Resources.secrets(namespace), secretName);
    const key = secret?.data?.primaryKey;
    if (key) return Buffer.from(key, 'base64').toString('utf8');
    await sleep(500);
  }
  throw new KedgeError(
    ErrorCode.Timeout,
    `no key in Secret ${namespace}/${secretName} after ${KEY_WAIT_MS / 1000} s; is kedge controller running?`,
  );
}

export function registerDeviceCommands(program: Command): void {
  const device = program.command('device').description('Work with edge devices.');
  device
    .command('bootstrap <name>')
    .description(
      'Print the kedge node configuration (hub address, identity, key or certificate files, CA) for a device.',
    )
    .option('-n, --namespace <ns>', 'namespace of the EdgeDevice', 'default')
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .option(
      '--hub-url <url>',
      'cloud hub address as the device sees it',
      process.env.KEDGE_HUB_URL ?? 'mqtts://localhost:8883',
    )
    .option('--controller-namespace <ns>', 'namespace of kedge controller', 'kedge-system')
    .option('--data-dir <dir>', 'data directory on the device', '/var/lib/kedge')
    .option('--runtime <runtime>', 'module runtime on the device: docker or process', 'docker')
    .option(
      '--cert-file <path>',
      `X.509 devices: the device certificate (PEM) on the device (default ${DEFAULT_CERT_FILE})`,
    )
    .option(
      '--key-file <path>',
      `X.509 devices: its private key (PEM) on the device (default ${DEFAULT_KEY_FILE})`,
    )
    .addHelpText(
      'after',
      '\nExample:\n  kedge device bootstrap sensor-1 -n factory --hub-url mqtts://kedge.example.com:8883 > node.yaml\n  kedge node --config node.yaml\n',
    )
    .action(async (name: string, flags: BootstrapFlags) => {
      const config = await bootstrapConfig(KubeClient.fromConfig(flags.kubeconfig), name, flags);
      const cloud = config.cloud as { key?: string };
      const note = cloud.key
        ? 'It holds the device key: keep it secret.'
        : 'Put the device certificate and key where cloud.x509 says.';
      process.stdout.write(`# kedge node configuration for ${flags.namespace}/${name}. ${note}\n`);
      process.stdout.write(stringify(config));
    });
}
