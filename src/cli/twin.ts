import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ErrorCode, KedgeError, errorMessage } from '../common/errors.js';
import { KubeClient } from '../controller/kube/client.js';
import { parseTarget, serviceApiError, subresourcePath } from './service-api.js';

interface TwinFlags {
  kubeconfig?: string;
}

interface PatchFlags extends TwinFlags {
  desired?: string;
  file?: string;
}

/** The twin path and query of `<ns>/<device>/<module>`, or `<ns>/<leaf>` for a leaf device. */
function twinRequest(target: string): { path: string; query: Record<string, string> } {
  const { namespace, device, name: module } = parseTarget(target, 'module', true);
  return {
    path: subresourcePath(namespace, device, 'twin'),
    query: module === undefined ? {} : { moduleId: module },
  };
}

/**
 * Reads a module or leaf twin through the service API (`edgedevices/{name}/twin` in
 * `api.kedge.io`), so the caller's own identity and RBAC decide.
 */
export async function readTwin(client: KubeClient, target: string): Promise<unknown> {
  try {
    return await client.request<unknown>({ method: 'GET', ...twinRequest(target) });
  } catch (err) {
    throw serviceApiError(err, `reading the twin of ${target}`);
  }
}

/** Sends a desired-properties merge patch; answers the twin as it now stands in the cloud. */
export async function patchTwin(
  client: KubeClient,
  target: string,
  desired: Record<string, unknown>,
): Promise<unknown> {
  try {
    return await client.request<unknown>({
      method: 'PATCH',
      ...twinRequest(target),
      body: { properties: { desired } },
      contentType: 'application/merge-patch+json',
    });
  } catch (err) {
    throw serviceApiError(err, `patching the twin of ${target}`);
  }
}

/** The desired patch given with `--desired` or `--file`, as a JSON object. */
function desiredFrom(flags: PatchFlags): Record<string, unknown> {
  if ((flags.desired === undefined) === (flags.file === undefined))
    throw new KedgeError(ErrorCode.InvalidInput, 'give the patch with either --desired or --file');
  const where = flags.file ?? '--desired';
  let text: string;
  try {
    text = flags.file === undefined ? flags.desired! : readFileSync(flags.file, 'utf8');
  } catch (err) {
    throw new KedgeError(ErrorCode.InvalidInput, `cannot read ${where}: ${errorMessage(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new KedgeError(ErrorCode.InvalidInput, `${where} is not JSON: ${errorMessage(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new KedgeError(ErrorCode.InvalidInput, `${where} must be a JSON object`);
  return parsed as Record<string, unknown>;
}

export function registerTwinCommand(program: Command): void {
  const twin = program
    .command('twin')
    .description('Module and leaf-device twins through the service API (api.kedge.io).');
  twin
    .command('get <target>')
    .description(
      'Print a twin: <namespace>/<device>/<module>, or <namespace>/<leaf-device> (RBAC: get edgedevices/twin in api.kedge.io). It shows the reported properties and the desired patches sent with kedge twin patch; the EdgeDeployment holds the rest of the desired properties.',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .addHelpText('after', '\nExample:\n  kedge twin get default/sensor-1/filter\n')
    .action(async (target: string, flags: TwinFlags) => {
      const doc = await readTwin(KubeClient.fromConfig(flags.kubeconfig), target);
      console.log(JSON.stringify(doc, null, 2));
    });
  twin
    .command('patch <target>')
    .description(
      'Patch desired properties (JSON merge patch: null removes a key) of <namespace>/<device>/<module> or <namespace>/<leaf-device> (RBAC: patch edgedevices/twin). The running module gets it as a desired patch with no restart, now or when its device reconnects.',
    )
    .option('--desired <json>', 'the patch, e.g. \'{"threshold": 30}\'')
    .option('-f, --file <path>', 'read the patch from a JSON file')
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .addHelpText(
      'after',
      '\nExample:\n  kedge twin patch default/sensor-1/filter --desired \'{"threshold": 30}\'\n',
    )
    .action(async (target: string, flags: PatchFlags) => {
      const desired = desiredFrom(flags);
      const doc = await patchTwin(KubeClient.fromConfig(flags.kubeconfig), target, desired);
      console.log(JSON.stringify(doc, null, 2));
    });
}
