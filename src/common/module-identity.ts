/**
 * The seam between the agent (which starts modules) and the hub (which authenticates them).
 * The hub owns module identities and the workload API; the agent asks it, per module, for what
 * the module needs so that `ModuleClient.fromEnvironment()` works unmodified.
 */
export interface ModuleIdentityProvider {
  /**
   * Registers (or refreshes) the identity of `moduleId` and returns the IoT Edge environment for
   * it: IOTEDGE_WORKLOADURI, IOTEDGE_DEVICEID, IOTEDGE_MODULEID, IOTEDGE_MODULEGENERATIONID,
   * IOTEDGE_IOTHUBHOSTNAME, IOTEDGE_GATEWAYHOSTNAME, IOTEDGE_AUTHSCHEME and friends.
   * `runtime` tells how the module reaches the hub: from a container on the kedge bridge network
   * or as a local process.
   */
  environmentFor(moduleId: string, runtime: 'docker' | 'process'): Promise<Record<string, string>>;
  /** Forgets a module that was removed from the deployment; its credentials stop working. */
  removeModule(moduleId: string): Promise<void>;
}
