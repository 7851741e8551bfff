/**
 * The hub's implementation of the agent seam {@link ModuleIdentityProvider}: registers the module
 * and returns the IoT Edge environment that makes `ModuleClient.fromEnvironment()` work.
 */
import type { ModuleIdentityProvider } from '../../common/module-identity.js';
import type { IdentityRegistry } from './identities.js';

/** Where the hub and its workload API can be reached, per runtime. */
export interface ModuleEndpoints {
  deviceId: string;
  iotHubHostName: string;
  /** Host name in the server certificate SAN that containers resolve to the hub host. */
  containerHostName: string;
  /** Host name local processes use (must also be in the SAN). */
  processHostName: string;
  workloadPort: number | null;
  workloadSocket: string | null;
}

export class HubModuleIdentityProvider implements ModuleIdentityProvider {
  readonly #identities: IdentityRegistry;
  readonly #endpoints: () => ModuleEndpoints;

  constructor(identities: IdentityRegistry, endpoints: () => ModuleEndpoints) {
    this.#identities = identities;
    this.#endpoints = endpoints;
  }

  environmentFor(moduleId: string, runtime: 'docker' | 'process'): Promise<Record<string, string>> {
    const creds = this.#identities.ensureModule(moduleId);
    const e = this.#endpoints();
    const host = runtime === 'docker' ? e.containerHostName : e.processHostName;
    // Containers cannot see the host's unix socket unless the agent bind-mounts it, so they use
    // TCP; local processes prefer the socket.
    const workloadUri =
      runtime === 'process' && e.workloadSocket
        ? `unix://${e.workloadSocket}`
        : `http://${host}:${e.workloadPort ?? 0}/`;
    return Promise.resolve({
      IOTEDGE_WORKLOADURI: workloadUri,
      IOTEDGE_DEVICEID: e.deviceId,
      IOTEDGE_MODULEID: moduleId,
      IOTEDGE_MODULEGENERATIONID: creds.generationId,
      IOTEDGE_IOTHUBHOSTNAME: e.iotHubHostName,
      // A host name only: the Python SDK takes `host:port` for a host name, and every SDK dials
      // its own fixed ports on it (8883 MQTT/TLS, 443 methods); see docs/adr/0020.
      IOTEDGE_GATEWAYHOSTNAME: host,
      IOTEDGE_AUTHSCHEME: 'sasToken',
      IOTEDGE_APIVERSION: '2018-06-28',
    });
  }

  removeModule(moduleId: string): Promise<void> {
    this.#identities.removeModule(moduleId);
    return Promise.resolve();
  }
}
