/**
 * JSON Schema (draft 7, for ajv) of the inner manifest form, `modulesContent`. It follows the
 * SchemaStore `azure-iot-edge-deployment` schema and edgeAgent's model classes; see
 * `shared/reference/azure-iot-edge.md` §1.
 */

const MODULE_NAME = '^[a-zA-Z0-9_-]+$';
/** The longest IoT Hub module id. */
const MAX_MODULE_ID_LENGTH = 128;
const ENV_NAME = '^[^\\+#$\\s\\.]+$';
const ROUTE_NAME = '^[^\\.\\$# ]+$';
const CREATE_OPTIONS_KEY = '^(createoptions|createOptions)([0-9]{2})?$';
const UINT32_MAX = 4_294_967_295;
const MAX_ROUTE_PRIORITY = 9;

const envSchema = {
  type: 'object',
  propertyNames: { pattern: ENV_NAME },
  additionalProperties: {
    type: 'object',
    required: ['value'],
    additionalProperties: false,
    properties: { value: { type: ['string', 'number', 'boolean'] } },
  },
};

const settingsSchema = {
  type: 'object',
  required: ['image'],
  additionalProperties: false,
  properties: {
    image: { type: 'string', minLength: 1 },
    digest: { type: 'string' },
  },
  patternProperties: { [CREATE_OPTIONS_KEY]: { type: ['object', 'string'] } },
};

const moduleProperties = {
  // kedge extension: the module's IoT Hub identity when it differs from its key (see DesiredModule).
  moduleId: { type: 'string', pattern: MODULE_NAME, maxLength: MAX_MODULE_ID_LENGTH },
  // kedge extension: the cluster's spec hash, echoed in reports (see RawModule.specHash).
  specHash: { type: 'string', maxLength: 64 },
  version: { type: 'string' },
  type: { const: 'docker' },
  status: { enum: ['running', 'stopped'] },
  restartPolicy: { enum: ['never', 'on-failure', 'on-unhealthy', 'always'] },
  imagePullPolicy: { enum: ['on-create', 'never', 'always'] },
  startupOrder: { type: 'integer', minimum: 0, maximum: UINT32_MAX },
  settings: settingsSchema,
  env: envSchema,
};

const moduleSchema = {
  type: 'object',
  required: ['settings'],
  additionalProperties: false,
  properties: moduleProperties,
};

const credentialSchema = {
  type: 'object',
  required: ['address', 'username', 'password'],
  additionalProperties: false,
  properties: {
    address: { type: 'string', minLength: 1, pattern: '\\S' },
    username: { type: 'string', minLength: 1, pattern: '\\S' },
    password: { type: 'string', minLength: 1 },
  },
};

const edgeAgentDesired = {
  type: 'object',
  required: ['schemaVersion', 'runtime'],
  additionalProperties: false,
  properties: {
    schemaVersion: { type: 'string', pattern: '^1\\.[01](\\.0)?$' },
    $version: { type: ['integer', 'string'] },
    runtime: {
      type: 'object',
      required: ['type'],
      additionalProperties: false,
      properties: {
        type: { const: 'docker' },
        settings: {
          type: 'object',
          additionalProperties: false,
          properties: {
            minDockerVersion: { type: 'string' },
            loggingOptions: { type: 'string' },
            registryCredentials: { type: 'object', additionalProperties: credentialSchema },
          },
        },
      },
    },
    systemModules: {
      type: 'object',
      additionalProperties: false,
      properties: { edgeAgent: moduleSchema, edgeHub: moduleSchema },
    },
    modules: {
      type: 'object',
      propertyNames: { pattern: MODULE_NAME },
      additionalProperties: moduleSchema,
    },
  },
};

const routeObject = {
  type: 'object',
  required: ['route'],
  additionalProperties: false,
  properties: {
    route: { type: 'string', minLength: 1 },
    priority: { type: 'integer', minimum: 0, maximum: MAX_ROUTE_PRIORITY },
    timeToLiveSecs: { type: 'integer', minimum: 0, maximum: UINT32_MAX },
  },
};

const edgeHubDesired = {
  type: 'object',
  required: ['schemaVersion'],
  additionalProperties: false,
  properties: {
    schemaVersion: { type: 'string', pattern: '^1\\.[0-4](\\.0)?$' },
    $version: { type: ['integer', 'string'] },
    // Schema 1.2+: the MQTT broker's authorizations and bridges. Accepted so such manifests
    // parse; kedge's hub has no broker of that kind and ignores it (the importer says so).
    mqttBroker: { type: 'object' },
    routes: {
      type: 'object',
      propertyNames: { pattern: ROUTE_NAME },
      additionalProperties: { oneOf: [{ type: 'string', minLength: 1 }, routeObject] },
    },
    storeAndForwardConfiguration: {
      type: 'object',
      required: ['timeToLiveSecs'],
      additionalProperties: false,
      properties: {
        timeToLiveSecs: { type: 'integer' },
        storeLimits: {
          type: 'object',
          additionalProperties: false,
          properties: { maxSizeBytes: { type: 'integer', minimum: 1 } },
        },
      },
    },
  },
};

const twinSchema = {
  type: 'object',
  required: ['properties.desired'],
  additionalProperties: false,
  properties: { 'properties.desired': { type: 'object' } },
};

/** Schema of `modulesContent`. */
export const MODULES_CONTENT_SCHEMA = {
  type: 'object',
  required: ['$edgeAgent'],
  propertyNames: { pattern: `^(\\$edgeAgent|\\$edgeHub|[a-zA-Z0-9_-]+)$` },
  properties: {
    $edgeAgent: {
      type: 'object',
      required: ['properties.desired'],
      additionalProperties: false,
      properties: { 'properties.desired': edgeAgentDesired },
    },
    $edgeHub: {
      type: 'object',
      required: ['properties.desired'],
      additionalProperties: false,
      properties: { 'properties.desired': edgeHubDesired },
    },
  },
  additionalProperties: twinSchema,
} as const;
