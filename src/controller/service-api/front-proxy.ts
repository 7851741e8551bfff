import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Resources, type KubeClient } from '../kube/client.js';

/** The end user the API server vouches for in a proxied request. */
export interface EndUser {
  user: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

/**
 * How the API server's front proxy identifies itself and the end user: the `requestheader-*`
 * keys it publishes in `kube-system/extension-apiserver-authentication`.
 */
export interface FrontProxyConfig {
  /** CA that signs the front-proxy client certificate; empty when aggregation is not set up. */
  clientCaPem: string;
  /** Common names the front-proxy certificate may have; empty means any the CA signed. */
  allowedNames: string[];
  usernameHeaders: string[];
  uidHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

/** The ConfigMap the API server keeps its client and front-proxy CAs in. */
const AUTH_CONFIGMAP = 'extension-apiserver-authentication';

/** Reads the front-proxy settings the API server publishes. */
export async function loadFrontProxyConfig(client: KubeClient): Promise<FrontProxyConfig> {
  const cm = await client.get<{ metadata: object; data?: Record<string, string> }>(
    Resources.configMaps('kube-system'),
    AUTH_CONFIGMAP,
  );
  const data = cm.data ?? {};
  const list = (key: string, fallback: string[]): string[] => {
    const parsed: unknown = data[key] ? JSON.parse(data[key]) : null;
    return Array.isArray(parsed) ? parsed.map(String) : fallback;
  };
  return {
    clientCaPem: data['requestheader-client-ca-file'] ?? '',
    allowedNames: list('requestheader-allowed-names', []),
    usernameHeaders: list('requestheader-username-headers', ['X-Remote-User']),
    uidHeaders: list('requestheader-uid-headers', []),
    groupHeaders: list('requestheader-group-headers', ['X-Remote-Group']),
    extraHeaderPrefixes: list('requestheader-extra-headers-prefix', ['X-Remote-Extra-']),
  };
}

/**
 * The end user of a request that came through the API server's front proxy: the TLS client
 * certificate must chain to the requestheader CA and carry an allowed name; only then are the
 * identity headers believed. Undefined otherwise.
 */
export function frontProxyUser(
  req: IncomingMessage,
  config: FrontProxyConfig,
): EndUser | undefined {
  const socket = req.socket as TLSSocket;
  if (!config.clientCaPem || !socket.authorized) return undefined;
  const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
  if (config.allowedNames.length > 0 && !config.allowedNames.includes(cn)) return undefined;
  const headers = req.headersDistinct;
  const first = (names: string[]): string | undefined =>
    names.map((n) => headers[n.toLowerCase()]?.[0]).find((v) => v);
  const user = first(config.usernameHeaders);
  if (!user) return undefined;
  const uid = first(config.uidHeaders);
  return {
    user,
    ...(uid ? { uid } : {}),
    groups: config.groupHeaders.flatMap((n) => headers[n.toLowerCase()] ?? []),
    extra: extraOf(headers, config.extraHeaderPrefixes),
  };
}

/** `X-Remote-Extra-<key>` headers; keys are lower case and URL-unescaped, as Kubernetes reads them. */
function extraOf(headers: NodeJS.Dict<string[]>, prefixes: string[]): Record<string, string[]> {
  const extra: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(headers)) {
    const prefix = prefixes.find((p) => name.startsWith(p.toLowerCase()));
    if (!prefix || !values) continue;
    const key = decodeURIComponent(name.slice(prefix.length));
    extra[key] = [...(extra[key] ?? []), ...values];
  }
  return extra;
}
