/**
 * The `kedge node` configuration file (YAML), validated with ajv; every error names its key.
 * Precedence: built-in defaults < file < environment (`KEDGE_<SECTION>_<KEY>`) < CLI flags.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { Ajv, type ErrorObject } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, KedgeError, errorMessage } from '../common/errors.js';
import { DEFAULT_PROCESS_USER } from './agent/process-user.js';

/** Agent settings. Durations in seconds, as an operator writes them. */
export interface AgentConfig {
  /** `docker` (default) or `process`. */
  runtime: 'docker' | 'process';
  /** Bridge network for modules. Default `kedge`. */
  network: string;
  /** Prefix for container names. Default '' (container name = module name, as IoT Edge). */
  containerNamePrefix: string;
  /** Name modules use to reach the hub on the host. Default: this machine's host name. */
  gatewayHostName: string;
  /** Restarts before a module is `failed`. Default 20 (edgeAgent). */
  maxRestarts: number;
  /** Cool-off unit of `min(unit·2^n, max)`. Default 10 s. */
  restartBackoffUnitSecs: number;
  /** Cool-off ceiling. Default 300 s. */
  restartBackoffMaxSecs: number;
  /** Healthy run time that resets the restart count. Default 600 s. */
  healthyResetSecs: number;
  /** Full reconcile pass interval. Default 10 s. */
  resyncIntervalSecs: number;
  /**
   * How often the images of modules with pull policy `always` (a pod's `imagePullPolicy: Always`)
   * are pulled again; a tag that now names another image recreates the module. Default 300 s;
   * 0 only pulls when a container is created.
   */
  imagePullIntervalSecs: number;
  /** SIGTERM-to-SIGKILL grace when stopping a module. Default 10 s. */
  stopGraceSecs: number;
  /** Stop the modules when `kedge node` exits. Default false: they keep running. */
  stopModulesOnExit: boolean;
  /**
   * User the process runtime runs modules as when kedge runs as root: a name, `uid` or
   * `uid:gid`. Default `nobody`; `root` keeps kedge's user (development only).
   */
  processUser: string;
}

/** The local metrics endpoint. */
export interface MetricsConfig {
  /** Default true. */
  enabled: boolean;
  /** Default `127.0.0.1`: metrics stay on the device unless asked otherwise. */
  host: string;
  /** Default 9600; 0 picks a free port. */
  port: number;
}

/** The link to kedge controller; printed by `kedge device bootstrap`. Absent in standalone mode. */
export interface CloudConfig {
  /** Cloud hub address, `mqtts://host:port`. */
  url: string;
  /** Namespace of the EdgeDevice. */
  namespace: string;
  /** EdgeDevice name. */
  device: string;
  /** Device key, base64 (SAS). Either this or `x509`. */
  key?: string;
  /** The device's X.509 client certificate and private key, PEM files. Either this or `key`. */
  x509?: { certFile: string; keyFile: string };
  /** CA certificate of the cloud hub, PEM. */
  caPem: string;
  /** Heartbeat interval. Default 10 s. */
  heartbeatSecs?: number;
  /** How often CPU and memory usage is sampled and sent. Default 15 s (metrics-server's resolution). */
  usageSecs?: number;
  /**
   * Accept a plaintext `mqtt://` url. Development only: the device's tokens, desired state (with
   * resolved Secrets) and telemetry then cross the network unencrypted. Default false.
   */
  allowPlaintext?: boolean;
}

/** The whole `kedge node` configuration. */
export interface NodeConfig {
  /** Device id. Default: this machine's host name. */
  deviceId: string;
  /** Where kedge keeps its state. Default `/var/lib/kedge`. */
  dataDir: string;
  /** pino level. Default `info`. */
  logLevel: string;
  agent: AgentConfig;
  metrics: MetricsConfig;
  /** Hub settings (`enabled: false` runs the agent alone); see the hub's options. */
  hub: Record<string, unknown>;
  /** Set when the device belongs to a cluster. */
  cloud?: CloudConfig;
}

/** Defaults of every setting. */
export function defaultConfig(): NodeConfig {
  const host = os.hostname();
  return {
    deviceId: host,
    dataDir: '/var/lib/kedge',
    logLevel: 'info',
    agent: {
      runtime: 'docker',
      network: 'kedge',
      containerNamePrefix: '',
      gatewayHostName: host,
      maxRestarts: 20,
      restartBackoffUnitSecs: 10,
      restartBackoffMaxSecs: 300,
      healthyResetSecs: 600,
      resyncIntervalSecs: 10,
      imagePullIntervalSecs: 300,
      stopGraceSecs: 10,
      stopModulesOnExit: false,
      processUser: DEFAULT_PROCESS_USER,
    },
    metrics: { enabled: true, host: '127.0.0.1', port: 9600 },
    hub: {},
  };
}

const positive = { type: 'number', exclusiveMinimum: 0 };
const name = { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' };

/** JSON Schema of the file. Every key is optional; unknown keys are errors (typos). */
export const NODE_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    deviceId: { type: 'string', minLength: 1, pattern: '^[A-Za-z0-9_.:@-]+$' },
    dataDir: { type: 'string', minLength: 1 },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },
    agent: {
      type: 'object',
      additionalProperties: false,
      properties: {
        runtime: { enum: ['docker', 'process'] },
        network: name,
        containerNamePrefix: { type: 'string', pattern: '^[A-Za-z0-9_.-]*$' },
        gatewayHostName: name,
        maxRestarts: { type: 'integer', minimum: 0 },
        restartBackoffUnitSecs: positive,
        restartBackoffMaxSecs: positive,
        healthyResetSecs: positive,
        resyncIntervalSecs: positive,
        imagePullIntervalSecs: { type: 'number', minimum: 0 },
        stopGraceSecs: { type: 'number', minimum: 0 },
        stopModulesOnExit: { type: 'boolean' },
        processUser: { type: 'string', minLength: 1 },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
      },
    },
    hub: { type: 'object' },
    cloud: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'namespace', 'device', 'caPem'],
      properties: {
        url: { type: 'string', pattern: '^mqtts?://' },
        namespace: name,
        device: name,
        key: { type: 'string', minLength: 16 },
        x509: {
          type: 'object',
          additionalProperties: false,
          required: ['certFile', 'keyFile'],
          properties: {
            certFile: { type: 'string', minLength: 1 },
            keyFile: { type: 'string', minLength: 1 },
          },
        },
        caPem: { type: 'string', pattern: 'BEGIN CERTIFICATE' },
        heartbeatSecs: positive,
        usageSecs: positive,
        allowPlaintext: { type: 'boolean' },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(NODE_CONFIG_SCHEMA);

function keyOf(error: ErrorObject): string {
  const base = error.instancePath.split('/').slice(1).join('.');
  const params = error.params as Record<string, unknown>;
  const extra = (params.additionalProperty ?? params.missingProperty) as string | undefined;
  const key = extra === undefined ? base : [base, extra].filter(Boolean).join('.');
  return key || '(root)';
}

function describeError(error: ErrorObject): string {
  if (error.keyword === 'additionalProperties') return `${keyOf(error)}: unknown key`;
  const params = error.params as { allowedValues?: unknown[] };
  if (error.keyword === 'enum')
    return `${keyOf(error)}: must be one of ${params.allowedValues?.join(', ')}`;
  return `${keyOf(error)}: ${error.message ?? error.keyword}`;
}

/** The scheme of an unencrypted cloud link. */
const PLAINTEXT_SCHEME = 'mqtt://';

/** A plaintext cloud link unless explicitly allowed for development. */
function plaintextProblem(partial: { cloud?: Partial<CloudConfig> }): string | undefined {
  const cloud = partial.cloud;
  if (!cloud?.url?.startsWith(PLAINTEXT_SCHEME) || cloud.allowPlaintext === true) return undefined;
  return (
    'cloud.url: mqtt:// is unencrypted (device tokens, desired state and telemetry in clear); ' +
    'use mqtts://, or set cloud.allowPlaintext: true for development only'
  );
}

/** A cloud link needs exactly one credential: a key or a certificate. */
function credentialProblem(partial: { cloud?: Partial<CloudConfig> }): string | undefined {
  const cloud = partial.cloud;
  if (!cloud || (cloud.key === undefined) !== (cloud.x509 === undefined)) return undefined;
  return 'cloud: set either key (SAS) or x509 (certFile and keyFile), not both and not neither';
}

/** Checks a partial configuration; throws naming every bad key. */
export function validateConfig(partial: unknown, origin: string): void {
  const cloudOf = partial as { cloud?: Partial<CloudConfig> };
  const problems = validate(partial)
    ? [plaintextProblem(cloudOf), credentialProblem(cloudOf)].filter(
        (p): p is string => p !== undefined,
      )
    : (validate.errors ?? []).map(describeError);
  if (problems.length === 0) return;
  throw new KedgeError(ErrorCode.InvalidConfig, `${origin}: ${problems.join('; ')}`);
}

type Section = 'agent' | 'metrics';
const SECTIONS: Section[] = ['agent', 'metrics'];

/** `restartBackoffUnitSecs` → `RESTART_BACKOFF_UNIT_SECS`. */
function envName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

function coerce(raw: string, type: string | undefined): unknown {
  if (type === 'integer' || type === 'number') return raw.trim() === '' ? raw : Number(raw);
  if (type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw;
  return raw;
}

/**
 * Settings from `KEDGE_<KEY>` (top level) and `KEDGE_<SECTION>_<KEY>` (e.g.
 * `KEDGE_AGENT_MAX_RESTARTS=5`, `KEDGE_METRICS_PORT=0`), typed by the schema.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const props = NODE_CONFIG_SCHEMA.properties as Record<
    string,
    { type?: string; properties?: object }
  >;
  for (const key of ['deviceId', 'dataDir', 'logLevel']) {
    const value = env[`KEDGE_${envName(key)}`];
    if (value !== undefined) out[key] = value;
  }
  for (const section of SECTIONS) {
    const sectionProps = props[section]?.properties as Record<string, { type?: string }>;
    const values: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(sectionProps)) {
      const value = env[`KEDGE_${section.toUpperCase()}_${envName(key)}`];
      if (value !== undefined) values[key] = coerce(value, schema.type);
    }
    if (Object.keys(values).length > 0) out[section] = values;
  }
  return out;
}

function merge(base: NodeConfig, partial: Record<string, unknown>): NodeConfig {
  const out = { ...base, ...partial };
  out.agent = { ...base.agent, ...(partial.agent as Partial<AgentConfig> | undefined) };
  out.metrics = { ...base.metrics, ...(partial.metrics as Partial<MetricsConfig> | undefined) };
  return out;
}

/** Where the configuration comes from. */
export interface LoadConfigOptions {
  /** YAML file; optional. */
  file?: string;
  /** Defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** CLI flags, applied last. */
  overrides?: Record<string, unknown>;
}

/** Loads and validates the configuration. @throws KedgeError InvalidConfig naming the key. */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<NodeConfig> {
  let config = defaultConfig();
  if (options.file) {
    let text: string;
    try {
      text = await readFile(options.file, 'utf8');
    } catch (err) {
      throw new KedgeError(ErrorCode.InvalidConfig, `cannot read config ${options.file}`, {
        cause: err,
      });
    }
    let doc: unknown;
    try {
      doc = parseYaml(text) ?? {};
    } catch (err) {
      const detail = errorMessage(err).split('\n')[0] ?? '';
      throw new KedgeError(ErrorCode.InvalidConfig, `${options.file}: not valid YAML: ${detail}`, {
        cause: err,
      });
    }
    validateConfig(doc, options.file);
    config = merge(config, doc as Record<string, unknown>);
  }
  const fromEnv = configFromEnv(options.env ?? process.env);
  validateConfig(fromEnv, 'environment');
  config = merge(config, fromEnv);
  if (options.overrides) {
    validateConfig(options.overrides, 'command line');
    config = merge(config, options.overrides);
  }
  return config;
}
