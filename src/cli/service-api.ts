import { ErrorCode, KedgeError } from '../common/errors.js';
import { KubeApiError } from '../controller/kube/client.js';
import { SERVICE_API_GROUP, SERVICE_API_VERSION } from '../controller/service-api/server.js';

/**
 * `<namespace>/<device>/<name>` split into its parts, or an error that shows the form. With
 * `leafForm`, `<namespace>/<leaf>` (a leaf EdgeDevice by its own name) is accepted too and has
 * no `name`.
 */
export function parseTarget(
  target: string,
  last: string,
  leafForm?: false,
): { namespace: string; device: string; name: string };
export function parseTarget(
  target: string,
  last: string,
  leafForm: true,
): { namespace: string; device: string; name?: string };
export function parseTarget(
  target: string,
  last: string,
  leafForm = false,
): { namespace: string; device: string; name?: string } {
  const parts = target.split('/');
  const shapeOk = parts.length === 3 || (leafForm && parts.length === 2);
  if (!shapeOk || parts.some((p) => !p))
    throw new KedgeError(
      ErrorCode.InvalidInput,
      `target must be <namespace>/<device>/<${last}>${leafForm ? ' or <namespace>/<leaf-device>' : ''}, got "${target}"`,
    );
  const [namespace, device, name] = parts as [string, string, string | undefined];
  return name === undefined ? { namespace, device } : { namespace, device, name };
}

/** The path of an EdgeDevice subresource in the service API. */
export function subresourcePath(namespace: string, device: string, subresource: string): string {
  return `/apis/${SERVICE_API_GROUP}/${SERVICE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/edgedevices/${encodeURIComponent(device)}/${subresource}`;
}

/** A service-API failure as one line that says what failed, without the request line. */
export function serviceApiError(err: unknown, what: string): unknown {
  if (!(err instanceof KubeApiError)) return err;
  return new KedgeError(err.code, `${what} failed: ${err.message.replace(/^[A-Z]+ \S+: /, '')}`);
}
