/**
 * `kedge check` on a device: reads the node config with the loader `kedge node` uses, then checks
 * the gateway link, certificates, clock, disk, engine and ports. Each check returns results; none
 * throws.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../common/errors.js';
import { silentLogger } from '../common/logger.js';
import { loadConfig, type NodeConfig } from '../edgenode/config.js';
import { createRuntime } from '../edgenode/node-runner.js';
import { addressList, type ListenAddresses } from '../edgenode/hub/listen.js';
import { HUB_DEFAULTS, type HubOptions } from '../edgenode/hub/options.js';
import {
  judgeClock,
  judgeExpiry,
  ntpSynchronized,
  parseCertificate,
  type CertificateSubject,
} from './certificates.js';
import { checkDisk } from './disk.js';
import { DIAL_TIMEOUT_MS, probeGateway } from './gateway.js';
import {
  findPortOwner,
  judgePort,
  nodeHealthy,
  probePort,
  type NodePort,
  type RunningNodeInfo,
} from './ports.js';
import { fail, ok, skip, warn, type CheckResult } from './result.js';
import type { X509Certificate } from 'node:crypto';

/** The config `kedge node` reads under systemd (packaging/systemd/kedge-node.service). */
export const DEFAULT_CONFIG_FILE = '/etc/kedge/node.yaml';

/** Inputs of {@link runDeviceChecks}. */
export interface DeviceCheckOptions {
  configFile: string;
  /** Defaults to `process.env` (the `KEDGE_*` overrides `kedge node` honours too). */
  env?: NodeJS.ProcessEnv;
}

/** The names of the checks that need a readable config, for the skip lines. */
const NEEDS_CONFIG = ['gateway', 'certificates', 'clock', 'disk space', 'engine', 'ports'];

async function checkConfig(
  options: DeviceCheckOptions,
): Promise<{ result: CheckResult; config?: NodeConfig }> {
  try {
    const config = await loadConfig({
      file: options.configFile,
      ...(options.env ? { env: options.env } : {}),
    });
    const mode = config.cloud
      ? `cloud ${config.cloud.namespace}/${config.cloud.device}`
      : 'standalone';
    return {
      config,
      result: ok(
        'config',
        `${options.configFile} is valid (device ${config.deviceId}, runtime ${config.agent.runtime}, ${mode})`,
      ),
    };
  } catch (err) {
    return {
      result: fail(
        'config',
        errorMessage(err),
        `fix the key named above in ${options.configFile} (every key is described in docs/agent.md); kedge node refuses to start with it`,
      ),
    };
  }
}

/** The hub's resolved settings, or undefined when `hub.enabled` is false. */
function hubSettings(config: NodeConfig): HubOptions | undefined {
  const { enabled, ...settings } = config.hub as { enabled?: boolean } & Partial<HubOptions>;
  if (enabled === false) return undefined;
  return {
    ...HUB_DEFAULTS,
    ...settings,
    storeAndForward: { ...HUB_DEFAULTS.storeAndForward, ...settings.storeAndForward },
    serverCert: { ...HUB_DEFAULTS.serverCert, ...settings.serverCert },
  } as HubOptions;
}

function firstAddress(value: ListenAddresses): string {
  return addressList(value)[0] ?? '127.0.0.1';
}

/** Every fixed port the node will listen on (port 0 picks a free one and cannot conflict). */
export function nodePorts(config: NodeConfig): NodePort[] {
  const ports: NodePort[] = [];
  const hub = hubSettings(config);
  if (hub) {
    const host = firstAddress(hub.host);
    ports.push({ port: hub.tlsPort, host, key: 'hub.tlsPort' });
    if (hub.methodsPort !== null)
      ports.push({ port: hub.methodsPort, host, key: 'hub.methodsPort' });
    if (hub.plainPort !== null) ports.push({ port: hub.plainPort, host, key: 'hub.plainPort' });
    if (hub.workloadPort !== null)
      ports.push({
        port: hub.workloadPort,
        host: firstAddress(hub.workloadHost),
        key: 'hub.workloadPort',
      });
  }
  if (config.metrics.enabled)
    ports.push({ port: config.metrics.port, host: config.metrics.host, key: 'metrics.port' });
  return ports.filter((p) => p.port !== 0);
}

/** The local endpoint's base URL, or undefined when it is off or on a random port. */
export function localEndpointUrl(config: NodeConfig): string | undefined {
  if (!config.metrics.enabled || config.metrics.port === 0) return undefined;
  const host = config.metrics.host === '0.0.0.0' ? '127.0.0.1' : config.metrics.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.metrics.port}`;
}

/** Whether `kedge node` runs here: its `/healthz` answers; its pid is the metrics port's owner. */
async function runningNode(config: NodeConfig): Promise<RunningNodeInfo | undefined> {
  const url = localEndpointUrl(config);
  if (!url || !(await nodeHealthy(url))) return undefined;
  const owner = await findPortOwner(config.metrics.port);
  return owner ? { pid: owner.pid } : {};
}

async function checkPorts(config: NodeConfig): Promise<CheckResult[]> {
  const node = await runningNode(config);
  const ports = nodePorts(config);
  const results: CheckResult[] = [];
  for (const p of ports) results.push(judgePort(p, await probePort(p), node));
  const state = node
    ? ok(
        'kedge node',
        `running${node.pid ? ` (pid ${node.pid})` : ''}; ${localEndpointUrl(config)}/healthz answers`,
      )
    : ok(
        'kedge node',
        localEndpointUrl(config)
          ? 'not running (its /healthz does not answer)'
          : 'unknown: metrics endpoint off or on a random port',
      );
  return [state, ...results];
}

async function checkEngine(config: NodeConfig): Promise<CheckResult> {
  if (config.agent.runtime === 'process')
    return ok('engine', 'process runtime: modules are local processes, no engine needed');
  const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  let timer: NodeJS.Timeout | undefined;
  try {
    const info = await Promise.race([
      createRuntime(config, silentLogger()).then((runtime) => runtime.info()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${DIAL_TIMEOUT_MS / 1000} s`)),
          DIAL_TIMEOUT_MS,
        );
      }),
    ]);
    return ok('engine', `Docker ${info.version} answers at ${where}`);
  } catch (err) {
    return fail(
      'engine',
      `Docker at ${where} does not answer: ${errorMessage(err)}`,
      'start the engine (systemctl start docker), or point DOCKER_HOST at it; use agent.runtime: process for a device without one',
    );
  } finally {
    clearTimeout(timer);
  }
}

async function readCertificate(file: string): Promise<X509Certificate | undefined> {
  return parseCertificate(await readFile(file, 'utf8').catch(() => ''));
}

/** The hub's device CA and server certificate in the data directory, when they exist yet. */
async function hubCertificates(config: NodeConfig): Promise<CertificateSubject[]> {
  const hub = hubSettings(config);
  if (!hub) return [];
  const dir = path.join(config.dataDir, 'hub', 'pki');
  const subjects: CertificateSubject[] = [];
  const ca = await readCertificate(path.join(dir, 'device-ca.crt'));
  if (ca)
    subjects.push({
      name: `device CA (${dir}/device-ca.crt)`,
      certificate: ca,
      hint: `move ${dir}/device-ca.* away and restart kedge node: it creates a new CA and modules fetch the new trust bundle`,
    });
  const server = await readCertificate(path.join(dir, 'hub-server.crt'));
  if (server)
    subjects.push({
      name: `hub server (${dir}/hub-server.crt)`,
      certificate: server,
      // The hub re-issues it this long before expiry; nearer than that means it is not running.
      warnBeforeMs: hub.serverCert.renewBeforeSecs * 1000,
      hint: 'restart kedge node: the hub issues a new server certificate at start and renews it while it runs',
    });
  return subjects;
}

function cloudCaSubject(config: NodeConfig): CertificateSubject | undefined {
  const cert = config.cloud ? parseCertificate(config.cloud.caPem) : undefined;
  if (!cert) return undefined;
  return {
    name: 'cloud CA (cloud.caPem)',
    certificate: cert,
    hint: "the cluster's CA (ConfigMap kedge-ca) must be renewed; then re-run kedge device bootstrap for the new cloud.caPem",
  };
}

/** Certificates: the cloud CA, the gateway's (from the handshake), the hub's own. */
async function checkCertificates(
  config: NodeConfig,
  gatewayCert: X509Certificate | undefined,
): Promise<CheckResult[]> {
  const subjects: CertificateSubject[] = [];
  const cloudCa = cloudCaSubject(config);
  if (cloudCa) subjects.push(cloudCa);
  if (gatewayCert)
    subjects.push({
      name: `gateway (${gatewayCert.subject.replace(/\n/g, ', ')})`,
      certificate: gatewayCert,
      hint: 'the controller renews Secret kedge-gateway-tls; check that it runs and the gateways picked up the new files',
    });
  subjects.push(...(await hubCertificates(config)));
  const now = Date.now();
  return subjects.length > 0
    ? subjects.map((s) => judgeExpiry(s, now))
    : [
        skip(
          'certificates',
          'none yet: no cloud section, and the hub has not created its certificates',
        ),
      ];
}

async function checkGateway(
  config: NodeConfig,
): Promise<{ results: CheckResult[]; certificate?: X509Certificate }> {
  if (!config.cloud)
    return { results: [ok('gateway', 'standalone (no cloud section): nothing to dial')] };
  try {
    return await probeGateway(config.cloud.url, config.cloud.caPem);
  } catch (err) {
    return {
      results: [
        fail(
          'gateway',
          `cloud.url ${config.cloud.url}: ${errorMessage(err)}`,
          'cloud.url must be mqtts://host:port',
        ),
      ],
    };
  }
}

/** Runs every device check; a broken config is one failure and skips the rest. */
export async function runDeviceChecks(options: DeviceCheckOptions): Promise<CheckResult[]> {
  const { result, config } = await checkConfig(options);
  if (!config) return [result, ...NEEDS_CONFIG.map((n) => skip(n, 'needs a valid config'))];
  const gateway = await checkGateway(config);
  const [certificates, ntp, disk, engine, ports] = await Promise.all([
    checkCertificates(config, gateway.certificate),
    ntpSynchronized(),
    checkDisk(config.dataDir, hubSettings(config)?.storeAndForward.maxBytes ?? 0),
    checkEngine(config),
    checkPorts(config),
  ]);
  const clock = config.cloud
    ? judgeClock(gateway.certificate, Date.now(), ntp)
    : warnIfUnsynced(ntp);
  return [result, ...gateway.results, ...certificates, clock, disk, engine, ...ports];
}

function warnIfUnsynced(ntp: boolean | undefined): CheckResult {
  if (ntp === false)
    return warn('clock', 'NTP not synchronized', 'enable time sync (timedatectl set-ntp true)');
  return judgeClock(undefined, Date.now(), ntp);
}
