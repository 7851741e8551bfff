/**
 * Warnings for IoT Edge runtime settings that `kedge manifest import` accepts but kedge does not
 * apply: the edgeHub 1.2+ MQTT broker and the system modules' proxy environment. Each names the
 * setting and says what to do instead, so nothing is dropped silently.
 */
import type { RawModulesContent } from '../../common/manifest/index.js';

/** The proxy variables edgeAgent and edgeHub read (any case). */
const PROXY_ENV = new Set(['https_proxy', 'http_proxy', 'no_proxy', 'all_proxy']);

/** Warnings for the runtime settings of `content` that kedge accepts and ignores. */
export function runtimeSettingWarnings(content: RawModulesContent): string[] {
  return [...mqttBrokerWarnings(content), ...proxyWarnings(content)];
}

function mqttBrokerWarnings(content: RawModulesContent): string[] {
  const hub = content.$edgeHub?.['properties.desired'];
  if (hub?.mqttBroker === undefined) return [];
  const parts = Object.keys(hub.mqttBroker);
  const what = parts.length > 0 ? ` (${parts.join(', ')})` : '';
  return [
    `$edgeHub mqttBroker${what} ignored: the kedge hub speaks the IoT Hub MQTT protocol only, with no custom-topic broker or bridges; schemaVersion ${hub.schemaVersion} is read as 1.1 (routes and store-and-forward)`,
  ];
}

function proxyWarnings(content: RawModulesContent): string[] {
  const system = content.$edgeAgent['properties.desired'].systemModules ?? {};
  const out: string[] = [];
  for (const key of ['edgeAgent', 'edgeHub'] as const) {
    const names = Object.keys(system[key]?.env ?? {}).filter((n) => PROXY_ENV.has(n.toLowerCase()));
    if (names.length === 0) continue;
    out.push(
      `systemModules.${key} env ${names.join(', ')} not applied: kedge node has no proxy setting (its cloud link dials the gateway's mqtts address directly, so the device needs a direct route to it). Image pulls go through the container engine: give dockerd the proxy (HTTPS_PROXY/NO_PROXY in its service environment, or "proxies" in /etc/docker/daemon.json). Modules that need the proxy keep it in their own env`,
    );
  }
  return out;
}
