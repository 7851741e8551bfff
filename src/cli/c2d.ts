import type { Command } from 'commander';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { KubeClient } from '../controller/kube/client.js';
import { DEFAULT_C2D_TTL_SECS, type CloudToDeviceMessage } from '../controller/service-api/c2d.js';
import { SERVICE_API_GROUP, SERVICE_API_VERSION } from '../controller/service-api/server.js';
import { parseTarget, serviceApiError, subresourcePath } from './service-api.js';

interface C2dFlags {
  kubeconfig?: string;
  ttl: string;
  property: string[];
  messageId?: string;
  correlationId?: string;
  contentType?: string;
}

/** What the service API answers for a queued message. */
export interface C2dStatus {
  deviceId: string;
  messageId: string;
  expiryTimeUtc: string;
}

/**
 * Queues a cloud-to-device message through the service API (`edgedevices/{name}/c2d`), with the
 * caller's own Kubernetes identity and RBAC. `target` is `<namespace>/<device>/<leaf>` (a leaf
 * by the id its gateway's hub knows) or `<namespace>/<leaf-device>` (a leaf EdgeDevice by name).
 */
export async function sendC2d(
  client: KubeClient,
  target: string,
  message: Omit<CloudToDeviceMessage, 'deviceId'>,
): Promise<C2dStatus> {
  const { namespace, device, name: leaf } = parseTarget(target, 'leaf', true);
  const body: CloudToDeviceMessage = {
    apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
    kind: 'CloudToDeviceMessage',
    ...(leaf === undefined ? {} : { deviceId: leaf }),
    ...message,
  };
  try {
    return await client.request<C2dStatus>({
      method: 'POST',
      path: subresourcePath(namespace, device, 'c2d'),
      body,
    });
  } catch (err) {
    throw serviceApiError(err, `C2D message to ${target}`);
  }
}

export function registerC2dCommand(program: Command): void {
  program
    .command('c2d')
    .description('Cloud-to-device messages for leaf devices behind an edge device')
    .command('send <target> <body>')
    .description(
      'Queue a message for <namespace>/<device>/<leaf> or for a leaf EdgeDevice <namespace>/<leaf-device>; it waits in the cloud plane until the leaf’s edge device takes it or its TTL ends (RBAC: create edgedevices/c2d in api.kedge.io).',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .option(
      '--ttl <secs>',
      'seconds the message may wait for the device',
      String(DEFAULT_C2D_TTL_SECS),
    )
    .option('-p, --property <key=value>', 'an application property (repeatable)', collect, [])
    .option('--message-id <id>', 'the message id (default: a new UUID)')
    .option('--correlation-id <id>', 'the correlation id')
    .option('--content-type <type>', 'the content type, e.g. application/json')
    .addHelpText(
      'after',
      `\nExamples:\n  kedge c2d send factory/gw-7/sensor-12 reboot\n  kedge c2d send factory/gw-7/sensor-12 '{"setpoint": 21}' -p kind=config --ttl 600\n`,
    )
    .action(async (target: string, body: string, flags: C2dFlags) => {
      const status = await sendC2d(KubeClient.fromConfig(flags.kubeconfig), target, {
        payload: body,
        properties: Object.fromEntries(flags.property.map(parseProperty)),
        ttlInSeconds: Number(flags.ttl),
        ...(flags.messageId ? { messageId: flags.messageId } : {}),
        ...(flags.correlationId ? { correlationId: flags.correlationId } : {}),
        ...(flags.contentType ? { contentType: flags.contentType } : {}),
      });
      console.log(
        `queued ${status.messageId} for ${target}; it expires at ${status.expiryTimeUtc}`,
      );
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseProperty(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0)
    throw new KedgeError(ErrorCode.InvalidInput, `property must be key=value, got "${text}"`);
  return [text.slice(0, at), text.slice(at + 1)];
}
