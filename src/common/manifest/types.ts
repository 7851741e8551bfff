/**
 * Types of the Azure IoT Edge deployment manifest (schema 1.1), as written by users, and of the
 * normalized {@link DesiredDeployment} that the agent, the hub and the controller work from.
 * Runtime-neutral: no Node.js or Docker imports.
 */

/** Restart policies in edgeAgent's order: each one restarts in every case the previous one does. */
export const RESTART_POLICIES = ['never', 'on-failure', 'on-unhealthy', 'always'] as const;
/** When the agent restarts an exited or unhealthy module. */
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

/** Desired module status. */
export type DesiredStatus = 'running' | 'stopped';

/**
 * `on-create` (default): pull when the module's container is created and the image is not on the
 * device. `never`: never pull; the image must already be there. `always` (kedge's, from a pod's
 * `imagePullPolicy: Always`): pull whenever the container is created, and again every
 * `agent.imagePullIntervalSecs`; a tag that now names another image recreates the module.
 */
export type ImagePullPolicy = 'on-create' | 'never' | 'always';

/** Credentials for one registry; `address` is matched against an image's registry host. */
export interface RegistryCredential {
  address: string;
  username: string;
  password: string;
}

/** One `env` entry as written in a manifest. */
export interface RawEnvValue {
  value: string | number | boolean;
}

/** A module exactly as written under `$edgeAgent` `modules` or `systemModules`. */
export interface RawModule {
  /**
   * kedge extension: the module's IoT Hub module id when it differs from its key, which then
   * names only the container (see {@link DesiredModule.moduleId}). IoT Edge manifests leave it out.
   */
  moduleId?: string;
  /**
   * kedge extension: the cluster's hash of the module spec this module was built from (the pod's
   * `kedge.io/spec-hash`). The agent echoes it in its reports, so the cluster can tell a device
   * that runs this spec from one that still runs an older one; it never recreates a module.
   */
  specHash?: string;
  version?: string;
  type?: 'docker';
  status?: DesiredStatus;
  restartPolicy?: RestartPolicy;
  imagePullPolicy?: ImagePullPolicy;
  startupOrder?: number;
  /** `image`, `createOptions` (object or JSON string), `createOptions01`… chunks, `digest`. */
  settings: { image: string; digest?: string; [createOptions: string]: unknown };
  env?: Record<string, RawEnvValue>;
}

/** `$edgeAgent` `properties.desired`. */
export interface RawEdgeAgentDesired {
  schemaVersion: string;
  runtime: {
    type: 'docker';
    settings?: {
      minDockerVersion?: string;
      loggingOptions?: string;
      registryCredentials?: Record<string, RegistryCredential>;
    };
  };
  systemModules?: { edgeAgent?: RawModule; edgeHub?: RawModule };
  modules?: Record<string, RawModule>;
  $version?: number | string;
}

/** A route in the object form of `$edgeHub` schema 1.1. */
export interface RawRouteObject {
  route: string;
  priority?: number;
  timeToLiveSecs?: number;
}

/** `$edgeHub` `properties.desired`. */
export interface RawEdgeHubDesired {
  schemaVersion: string;
  routes?: Record<string, string | RawRouteObject>;
  /** Schema 1.2+: MQTT broker authorizations and bridges. Parsed, never applied. */
  mqttBroker?: Record<string, unknown>;
  storeAndForwardConfiguration?: {
    timeToLiveSecs: number;
    storeLimits?: { maxSizeBytes?: number };
  };
  $version?: number | string;
}

/** The inner form of a manifest: what lives under `modulesContent`. */
export interface RawModulesContent {
  $edgeAgent: { 'properties.desired': RawEdgeAgentDesired };
  $edgeHub?: { 'properties.desired': RawEdgeHubDesired };
  /** Module twins; the index type is loose so that `$edgeAgent`/`$edgeHub` fit it too. */
  [moduleTwin: string]: { 'properties.desired': object } | undefined;
}

/** A full manifest document: `{ "modulesContent": { … } }`. */
export interface RawManifest {
  modulesContent: RawModulesContent;
}

/** A normalized module: what the agent reconciles on. */
export interface DesiredModule {
  /** Module name (the key under `modules`): the container name and hostname on the device. */
  name: string;
  /**
   * The module's identity on the hub: IOTEDGE_MODULEID, its credentials, routes, twin and
   * methods. The manifest's `moduleId` when given, else `name`, as in IoT Edge. A cluster
   * deployment sets it when the IoT Edge name (`SimulatedTemperatureSensor`) is not a DNS label.
   */
  moduleId: string;
  /** The user-defined `version` string; changing it recreates the module. */
  version?: string;
  /** The cluster's spec hash, echoed in reports and left out of the config hash (see RawModule). */
  specHash?: string;
  /** Image reference with `:latest` added when no tag or digest was given. */
  image: string;
  /** Optional image digest pin (`settings.digest`). */
  digest?: string;
  /** Docker `ContainerCreate` options, parsed from the object, string or chunked form. */
  createOptions: Record<string, unknown>;
  /** Environment variables, values converted to strings. */
  env: Record<string, string>;
  /** Defaults to `running`. */
  status: DesiredStatus;
  /** Defaults to `on-unhealthy`, edgeAgent's default when the field is missing. */
  restartPolicy: RestartPolicy;
  /** Defaults to `on-create`. */
  imagePullPolicy: ImagePullPolicy;
  /** Lower starts first. Defaults to 4294967295 (uint max), as in edgeAgent. */
  startupOrder: number;
}

/** A normalized route. */
export interface DesiredRoute {
  /** The route text, `FROM … [WHERE …] INTO …`. */
  route: string;
  /** 0 (highest) to 9. Defaults to {@link DEFAULT_ROUTE_PRIORITY}. */
  priority: number;
  /** 0 means "inherit the store-and-forward TTL". Defaults to 0. */
  timeToLiveSecs: number;
}

/** Normalized `$edgeHub` settings: what the hub reconciles on. */
export interface DesiredHub {
  schemaVersion: string;
  routes: Record<string, DesiredRoute>;
  /** Defaults to 7200 (2 h, the IoT Edge docs default); a negative value means forever. */
  storeAndForwardTimeToLiveSecs: number;
  /** Only set when the manifest sets `storeLimits.maxSizeBytes`. */
  storeMaxSizeBytes?: number;
}

/** The normalized desired state of one device. */
export interface DesiredDeployment {
  /** `$edgeAgent` schemaVersion ("1.0" or "1.1"). */
  schemaVersion: string;
  /** `$version` of the `$edgeAgent` desired properties when present, else a content hash. */
  version: string;
  registryCredentials: RegistryCredential[];
  /** User modules sorted by startupOrder, then name. System modules are not in this list. */
  modules: DesiredModule[];
  /** `systemModules` as written, normalized; kedge node is itself agent and hub, so they run nowhere. */
  systemModules: { edgeAgent?: DesiredModule; edgeHub?: DesiredModule };
  hub: DesiredHub;
  /** Module twins: `properties.desired` per module name (the key, not the moduleId). */
  twins: Record<string, Record<string, unknown>>;
}

/** The lowest route priority, as edgeHub's `RouteFactory.DefaultPriority`. */
export const DEFAULT_ROUTE_PRIORITY = 2_000_000_000;
/** The store-and-forward TTL when the manifest leaves it out: 2 h, from the IoT Edge docs. */
export const DEFAULT_STORE_TTL_SECS = 7200;
/** startupOrder when it is left out: uint max, so such modules start last (edgeAgent). */
export const DEFAULT_STARTUP_ORDER = 4_294_967_295;
