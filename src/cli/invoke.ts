import type { Command } from 'commander';
import type { MethodResponse } from '../common/cloudlink/protocol.js';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { KubeApiError, KubeClient } from '../controller/kube/client.js';
import {
  DEFAULT_METHOD_TIMEOUT_SECS,
  type DirectMethodRequest,
} from '../controller/service-api/invoke.js';
import { SERVICE_API_GROUP, SERVICE_API_VERSION } from '../controller/service-api/server.js';
import { EDGE_AGENT_MODULE_ID } from '../edgenode/agent/edge-agent-methods.js';
import { parseTarget, serviceApiError, subresourcePath } from './service-api.js';

interface InvokeFlags {
  kubeconfig?: string;
  timeout: string;
}

/** A direct-method call from the CLI. */
export interface InvokeRequest {
  target: string;
  method: string;
  payload: unknown;
  timeoutSecs: number;
}

/**
 * Calls a direct method through the service API (`edgedevices/{name}/invoke` in
 * `api.kedge.io`), so the caller's own Kubernetes identity and RBAC decide, and the device is
 * reached over its link.
 */
export async function invokeMethod(
  client: KubeClient,
  { target, method, payload, timeoutSecs }: InvokeRequest,
): Promise<MethodResponse> {
  const { namespace, device, name: module } = parseTarget(target, 'module', true);
  const path = subresourcePath(namespace, device, 'invoke');
  const body: DirectMethodRequest = {
    apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
    kind: 'DirectMethodRequest',
    ...(module === undefined ? {} : { moduleId: module }),
    methodName: method,
    payload,
    responseTimeoutInSeconds: timeoutSecs,
  };
  try {
    return await client.request<MethodResponse>({ method: 'POST', path, body });
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 504) {
      throw new KedgeError(
        ErrorCode.Timeout,
        `method ${method} on ${target} timed out after ${timeoutSecs} s`,
      );
    }
    throw serviceApiError(err, `method ${method} on ${target}`);
  }
}

export function registerInvokeCommand(program: Command): void {
  program
    .command('invoke <target> <method> [payload]')
    .description(
      "Call a direct method on a module (<namespace>/<device>/<module>, where <module> is the module's id on the hub: its moduleId, else its name, e.g. SimulatedTemperatureSensor for an imported module) or on a leaf device (<namespace>/<leaf-device>, the leaf EdgeDevice by its own name), through the service API (RBAC: create edgedevices/invoke in api.kedge.io on the device named).",
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .option(
      '--timeout <secs>',
      'how long the module may take to answer',
      String(DEFAULT_METHOD_TIMEOUT_SECS),
    )
    .addHelpText(
      'after',
      `\nExamples:\n  kedge invoke default/sensor-1/filter ping\n  kedge invoke factory/gw-7/filter setThreshold '{"threshold": 30}' --timeout 10\n  kedge invoke factory/sensor-12 reboot     # a leaf EdgeDevice behind its gateway\n`,
    )
    .action(
      async (
        target: string,
        method: string,
        payloadText: string | undefined,
        flags: InvokeFlags,
      ) => {
        const response = await invokeMethod(KubeClient.fromConfig(flags.kubeconfig), {
          target,
          method,
          payload: parsePayload(payloadText),
          timeoutSecs: Number(flags.timeout),
        });
        console.log(JSON.stringify(response.payload, null, 2));
        if (response.status >= 400) {
          process.stderr.write(`kedge: ${method} answered with status ${response.status}\n`);
          process.exitCode = 1;
        }
      },
    );
}

/**
 * `kedge restart <namespace>/<device>/<module>`: the device's `$edgeAgent` RestartModule, as
 * `iotedge restart` does on the device. The module keeps its container and counts a restart.
 */
export function registerRestartCommand(program: Command): void {
  program
    .command('restart <target>')
    .description(
      'Restart a module on its device: <namespace>/<device>/<module>, through $edgeAgent RestartModule (RBAC: create edgedevices/invoke in api.kedge.io).',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .action(async (target: string, flags: { kubeconfig?: string }) => {
      const { namespace, device, name: module } = parseTarget(target, 'module');
      const response = await invokeMethod(KubeClient.fromConfig(flags.kubeconfig), {
        target: `${namespace}/${device}/${EDGE_AGENT_MODULE_ID}`,
        method: 'RestartModule',
        payload: { schemaVersion: '1.0', id: module },
        timeoutSecs: DEFAULT_METHOD_TIMEOUT_SECS,
      });
      if (response.status >= 400) {
        const message = (response.payload as { message?: string } | null)?.message;
        throw new KedgeError(
          ErrorCode.Unavailable,
          `restarting ${target} failed (${response.status})${message ? `: ${message}` : ''}`,
        );
      }
      console.log(`restarted ${target}`);
    });
}

function parsePayload(text: string | undefined): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new KedgeError(ErrorCode.InvalidInput, `payload must be JSON, got ${text}`);
  }
}
