import type { Command } from 'commander';
import { KubeClient } from '../controller/kube/client.js';
import { parseTarget, serviceApiError, subresourcePath } from './service-api.js';

interface TwinFlags {
  kubeconfig?: string;
}

/**
 * Reads a module twin through the service API (`edgedevices/{name}/twin` in `api.kedge.io`), so
 * the caller's own identity and RBAC decide. The answer is a `ModuleTwin` with
 * `properties.reported` as the cloud plane merged the module's reported patches.
 */
export async function readTwin(client: KubeClient, target: string): Promise<unknown> {
  const { namespace, device, name: module } = parseTarget(target, 'module');
  const path = subresourcePath(namespace, device, 'twin');
  try {
    return await client.request<unknown>({ method: 'GET', path, query: { moduleId: module } });
  } catch (err) {
    throw serviceApiError(err, `reading the twin of ${target}`);
  }
}

export function registerTwinCommand(program: Command): void {
  const twin = program
    .command('twin')
    .description('Module twins through the service API (api.kedge.io).');
  twin
    .command('get <target>')
    .description(
      "Print a module twin's reported properties: <namespace>/<device>/<module> (RBAC: get edgedevices/twin in api.kedge.io). Desired properties are the EdgeDeployment's desiredProperties.",
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .addHelpText('after', '\nExample:\n  kedge twin get default/sensor-1/filter\n')
    .action(async (target: string, flags: TwinFlags) => {
      const doc = await readTwin(KubeClient.fromConfig(flags.kubeconfig), target);
      console.log(JSON.stringify(doc, null, 2));
    });
}
