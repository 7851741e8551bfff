/**
 * The parts `kedge node` adds around the agent: the local hub (fed the routes and module twins of
 * every accepted desired state) and, when the device belongs to a cluster, the cloud link.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode, KedgeError, errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { DesiredDeployment } from '../common/manifest/index.js';
import type { CloudLink } from './cloudlink/link.js';
import type { NodeConfig } from './config.js';
import { Hub } from './hub/hub.js';
import { addressList, type ListenAddresses } from './hub/listen.js';
import type { HubOptionsInput } from './hub/options.js';
import { resolveProcessUser } from './agent/process-user.js';

/** Hub settings a desired state carries: routes, store-and-forward TTL, module twins. */
export function hubUpdateFrom(desired: DesiredDeployment): Parameters<Hub['applyConfig']>[0] {
  return {
    routes: Object.fromEntries(
      Object.entries(desired.hub.routes).map(([name, r]) => [
        name,
        { route: r.route, priority: r.priority, timeToLiveSecs: r.timeToLiveSecs },
      ]),
    ),
    modules: Object.fromEntries(
      // The hub knows modules by their IoT Hub identity; the manifest keys twins by module name.
      desired.modules.map((m) => [m.moduleId, { desiredProperties: desired.twins[m.name] ?? {} }]),
    ),
    timeToLiveSecs: desired.hub.storeAndForwardTimeToLiveSecs,
  };
}

/** Listen address of the hub when the configuration names none: loopback only. */
const LOOPBACK = '127.0.0.1';
const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * A configured address list plus the module network's gateway (unless the list already binds every
 * interface, which covers it).
 */
export function withModuleAddress(
  configured: ListenAddresses | undefined,
  moduleAddress: string | undefined,
): string[] {
  const list = addressList(configured ?? LOOPBACK);
  if (moduleAddress === undefined || list.some((a) => WILDCARDS.has(a))) return list;
  return [...new Set([...list, moduleAddress])];
}

/**
 * Builds the hub from the node configuration, or undefined when `hub.enabled` is false.
 * `moduleAddress` is the host's address on the module network (Docker runtime): the hub's MQTT
 * and method listeners bind it on the SDK ports 8883 and 443, the workload API on its own port.
 */
export function createHub(
  config: NodeConfig,
  logger: Logger,
  cloud: CloudLink | undefined,
  moduleAddress?: string,
): Hub | undefined {
  const { enabled, ...settings } = config.hub as { enabled?: boolean } & Partial<HubOptionsInput>;
  if (enabled === false) return undefined;
  const gateway = config.agent.gatewayHostName;
  const options = {
    ...socketlessForUnprivileged(config),
    containerHostName: gateway,
    extraHostNames: ['localhost', LOOPBACK, gateway, ...(moduleAddress ? [moduleAddress] : [])],
    ...settings,
    // MQTT and methods reach containers on the SDK ports (hub.moduleHost); the workload API's
    // port travels in IOTEDGE_WORKLOADURI, so it simply binds the module address too.
    host: addressList(settings.host ?? LOOPBACK),
    ...(moduleAddress ? { moduleHost: moduleAddress } : {}),
    workloadHost: withModuleAddress(settings.workloadHost, moduleAddress),
    deviceId: config.deviceId,
    dataDir: path.join(config.dataDir, 'hub'),
  } as HubOptionsInput;
  return new Hub(options, {
    log: logger.child({ component: 'hub' }),
    ...(cloud ? { upstream: cloud.upstream } : {}),
  });
}

/**
 * Process modules prefer the workload API's unix socket, but it lives in kedge's private data
 * directory: modules running as another user get the loopback TCP listener instead.
 */
function socketlessForUnprivileged(config: NodeConfig): Partial<HubOptionsInput> {
  if (config.agent.runtime !== 'process') return {};
  return resolveProcessUser(config.agent.processUser) ? { workloadSocket: null } : {};
}

/**
 * Builds the cloud link when the configuration has a `cloud` section. Loaded only then: it brings
 * MQTT.js, which a standalone device never uses.
 */
export async function createCloudLink(
  config: NodeConfig,
  logger: Logger,
): Promise<CloudLink | undefined> {
  const c = config.cloud;
  if (!c) return undefined;
  const { CloudLink } = await import('./cloudlink/link.js');
  return new CloudLink({
    url: c.url,
    namespace: c.namespace,
    device: c.device,
    credentials: c.x509 ? readCertificate(c.x509) : { keyBase64: c.key! },
    caPem: c.caPem,
    heartbeatSecs: c.heartbeatSecs,
    usageSecs: c.usageSecs,
    log: logger.child({ component: 'cloudlink' }),
  });
}

/** The device certificate and key named in `cloud.x509`, or an error naming the file. */
function readCertificate(x509: { certFile: string; keyFile: string }): {
  certPem: string;
  keyPem: string;
} {
  const read = (setting: string, file: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new KedgeError(
        ErrorCode.InvalidConfig,
        `cloud.x509.${setting}: cannot read ${file}: ${errorMessage(err)}`,
      );
    }
  };
  return { certPem: read('certFile', x509.certFile), keyPem: read('keyFile', x509.keyFile) };
}
