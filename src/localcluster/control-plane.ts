import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../common/version.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { createCa, createSigningKey, issueCertificate, type KeyPair } from '../common/pki.js';
import { runBuildScript } from './build-script.js';
import { etcdBuild, helmBuild, kubernetesBuild, requireGoFor } from './builds.js';
import { httpsGet, type TlsClient } from './https.js';
import { freePort } from './ports.js';
import { isRunning, startProcess, stopProcess, type ManagedProcess } from './processes.js';

/** How long each component may take to become healthy on a loaded 2-core machine. */
const STARTUP_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 250;
/** The Kubernetes default node-monitor grace period (1.32+). */
const DEFAULT_NODE_MONITOR_GRACE_SECS = 50;
/** The Kubernetes default not-ready/unreachable toleration. */
const DEFAULT_TOLERATION_SECS = 300;
const SERVICE_CIDR = '10.0.0.0/24';

/** Options for {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Where binaries live; defaults to building or reusing the cached build. */
  binDir?: string;
  /** The etcd binary; defaults to building or reusing the cached build (never `etcd` on PATH). */
  etcdBinary?: string;
  /** Where logs are kept after stop. Defaults to a temporary directory. */
  logDir?: string;
  /** kube-controller-manager `--node-monitor-grace-period`, seconds. Defaults to 50. */
  nodeMonitorGracePeriodSecs?: number;
  /** apiserver default not-ready/unreachable toleration, seconds. Defaults to 300. */
  defaultTolerationSecs?: number;
  /** Progress lines for people (builds and start-up). */
  onProgress?: (line: string) => void;
  /**
   * CA that signs kubelet serving certificates (`--kubelet-certificate-authority`). Unset, the
   * API server does not verify them, as most clusters.
   */
  kubeletServingCaPem?: string;
}

/** A running local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler. */
export interface ControlPlane {
  /** https://127.0.0.1:<port> */
  server: string;
  /** Admin (system:masters) kubeconfig. */
  kubeconfigPath: string;
  /** Directory with binaries (kubectl and helm included). */
  binDir: string;
  /** Component logs; kept after stop. */
  logDir: string;
  /** The cluster CA; it also signs client certificates. */
  ca: KeyPair;
  /** Client certificate the apiserver presents to kubelet APIs (CN kube-apiserver-kubelet-client). */
  kubeletClientCert: KeyPair;
  /** PIDs of the component processes. */
  pids(): number[];
  /** Stops every component and removes the data directory (logs stay). */
  stop(): Promise<void>;
}

/** The build scripts live in src/ and are shipped with the package. */
const BUILD_SCRIPT = path.join(PACKAGE_ROOT, 'src/localcluster/build-control-plane.sh');
const ETCD_BUILD_SCRIPT = path.join(PACKAGE_ROOT, 'src/localcluster/build-etcd.sh');

/**
 * Builds (or reuses from the cache) kube-apiserver, kube-controller-manager, kube-scheduler,
 * kubectl and helm, and returns their directory.
 */
export async function ensureBinaries(onProgress?: (line: string) => void): Promise<string> {
  requireGoFor([kubernetesBuild(), helmBuild()]);
  return runBuildScript(BUILD_SCRIPT, 'control-plane', onProgress);
}

/** Builds (under a minute) or reuses the cached etcd and returns the binary's path. */
export async function ensureEtcd(onProgress?: (line: string) => void): Promise<string> {
  requireGoFor([etcdBuild()]);
  return runBuildScript(ETCD_BUILD_SCRIPT, 'etcd', onProgress);
}

interface Pki {
  ca: KeyPair;
  admin: KeyPair;
  controllerManager: KeyPair;
  scheduler: KeyPair;
  kubeletClient: KeyPair;
  serving: KeyPair;
  /** Aggregation: the front proxy's CA and the client certificate the API server proxies with. */
  frontProxyCa: KeyPair;
  frontProxyClient: KeyPair;
  serviceAccount: { privateKeyPem: string; publicKeyPem: string };
}

/** The front-proxy client's name; extension API servers accept only this one. */
const FRONT_PROXY_CLIENT = 'front-proxy-client';

function createPki(): Pki {
  const ca = createCa('kedge-local-ca');
  // A CA of its own, as kubeadm does: a client certificate from the cluster CA must never pass
  // as the front proxy and claim any user in X-Remote-User.
  const frontProxyCa = createCa('kedge-local-front-proxy-ca');
  return {
    frontProxyCa,
    frontProxyClient: issueCertificate(frontProxyCa, {
      commonName: FRONT_PROXY_CLIENT,
      usage: ['client'],
    }),
    ca,
    admin: issueCertificate(ca, {
      commonName: 'kedge-admin',
      organizations: ['system:masters'],
      usage: ['client'],
    }),
    controllerManager: issueCertificate(ca, {
      commonName: 'system:kube-controller-manager',
      organizations: ['system:masters'],
      usage: ['client'],
    }),
    scheduler: issueCertificate(ca, { commonName: 'system:kube-scheduler', usage: ['client'] }),
    kubeletClient: issueCertificate(ca, {
      commonName: 'kube-apiserver-kubelet-client',
      organizations: ['system:masters'],
      usage: ['client'],
    }),
    serving: issueCertificate(ca, {
      commonName: 'kube-apiserver',
      altNames: [
        'localhost',
        '127.0.0.1',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        '10.0.0.1',
      ],
      usage: ['server'],
    }),
    serviceAccount: createSigningKey(),
  };
}

/** A kubeconfig document for a client certificate. */
export function kubeconfigFor(
  server: string,
  caPem: string,
  user: KeyPair,
  name = 'kedge-local',
): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(caPem) } }],
      users: [
        {
          name,
          user: {
            'client-certificate-data': b64(user.certPem),
            'client-key-data': b64(user.keyPem),
          },
        },
      ],
      contexts: [{ name, context: { cluster: name, user: name } }],
      'current-context': name,
    },
    null,
    2,
  );
}

/** Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler on loopback. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const etcd = options.etcdBinary ?? (await ensureEtcd(options.onProgress));
  const binDir = options.binDir ?? (await ensureBinaries(options.onProgress));
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-cp-'));
  const logDir = options.logDir ?? path.join(dir, 'logs');
  await mkdir(logDir, { recursive: true });
  const pki = createPki();
  const files = await writePki(dir, pki, options.kubeletServingCaPem);
  const ports = {
    etcd: await freePort(),
    peer: await freePort(),
    api: await freePort(),
    kcm: await freePort(),
    sched: await freePort(),
  };
  const server = `https://127.0.0.1:${ports.api}`;
  await writeFile(files.admin, kubeconfigFor(server, pki.ca.certPem, pki.admin));
  await writeFile(files.kcm, kubeconfigFor(server, pki.ca.certPem, pki.controllerManager));
  await writeFile(files.sched, kubeconfigFor(server, pki.ca.certPem, pki.scheduler));

  const procs: ManagedProcess[] = [];
  const log = (name: string): string => path.join(logDir, `${name}.log`);
  const stop = async (): Promise<void> => {
    for (const p of [...procs].reverse()) await stopProcess(p);
    await rm(path.join(dir, 'etcd'), { recursive: true, force: true });
  };
  const progress = options.onProgress ?? ((): void => undefined);
  const adminTls: TlsClient = {
    ca: pki.ca.certPem,
    cert: pki.admin.certPem,
    key: pki.admin.keyPem,
  };
  try {
    progress('[control-plane] starting etcd');
    procs.push(startProcess('etcd', etcd, etcdArgs(dir, ports.etcd, ports.peer), log('etcd')));
    await waitHealthy(procs[0]!, `http://127.0.0.1:${ports.etcd}/health`, {});
    progress('[control-plane] starting kube-apiserver');
    const api = startProcess(
      'kube-apiserver',
      path.join(binDir, 'kube-apiserver'),
      apiserverArgs(files, ports, options),
      log('kube-apiserver'),
    );
    procs.push(api);
    await waitHealthy(api, `${server}/readyz`, adminTls);
    progress('[control-plane] starting kube-controller-manager and kube-scheduler');
    const kcm = startProcess(
      'kube-controller-manager',
      path.join(binDir, 'kube-controller-manager'),
      kcmArgs(files, ports.kcm, options),
      log('kube-controller-manager'),
    );
    const sched = startProcess(
      'kube-scheduler',
      path.join(binDir, 'kube-scheduler'),
      schedulerArgs(files, ports.sched),
      log('kube-scheduler'),
    );
    procs.push(kcm, sched);
    await waitHealthy(kcm, `https://127.0.0.1:${ports.kcm}/healthz`, { insecure: true });
    await waitHealthy(sched, `https://127.0.0.1:${ports.sched}/healthz`, { insecure: true });
    await waitFor('the default ServiceAccount', async () => {
      const res = await httpsGet(
        `${server}/api/v1/namespaces/default/serviceaccounts/default`,
        adminTls,
      );
      return res.status === 200;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    server,
    kubeconfigPath: files.admin,
    binDir,
    logDir,
    ca: pki.ca,
    kubeletClientCert: pki.kubeletClient,
    pids: () => procs.filter(isRunning).map((p) => p.child.pid!),
    stop: async () => {
      await stop();
      await rm(path.join(dir, 'pki'), { recursive: true, force: true });
    },
  };
}

interface PkiFiles {
  dir: string;
  ca: string;
  caKey: string;
  admin: string;
  kcm: string;
  sched: string;
  saKey: string;
  saPub: string;
  kubeletClientCert: string;
  kubeletClientKey: string;
  frontProxyCa: string;
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  kubeletServingCa?: string;
}

async function writePki(dir: string, pki: Pki, kubeletServingCaPem?: string): Promise<PkiFiles> {
  const p = (name: string): string => path.join(dir, 'pki', name);
  await mkdir(path.join(dir, 'pki'), { recursive: true, mode: 0o700 });
  const files: PkiFiles = {
    dir,
    ca: p('ca.crt'),
    caKey: p('ca.key'),
    admin: path.join(dir, 'admin.kubeconfig'),
    kcm: p('kcm.kubeconfig'),
    sched: p('scheduler.kubeconfig'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    kubeletClientCert: p('kubelet-client.crt'),
    kubeletClientKey: p('kubelet-client.key'),
    frontProxyCa: p('front-proxy-ca.crt'),
    frontProxyClientCert: p('front-proxy-client.crt'),
    frontProxyClientKey: p('front-proxy-client.key'),
    ...(kubeletServingCaPem ? { kubeletServingCa: p('kubelet-serving-ca.crt') } : {}),
  };
  const writes: [string, string][] = [
    [files.ca, pki.ca.certPem],
    [files.caKey, pki.ca.keyPem],
    [files.saKey, pki.serviceAccount.privateKeyPem],
    [files.saPub, pki.serviceAccount.publicKeyPem],
    [files.kubeletClientCert, pki.kubeletClient.certPem],
    [files.kubeletClientKey, pki.kubeletClient.keyPem],
    [p('apiserver.crt'), pki.serving.certPem],
    [p('apiserver.key'), pki.serving.keyPem],
    [files.frontProxyCa, pki.frontProxyCa.certPem],
    [files.frontProxyClientCert, pki.frontProxyClient.certPem],
    [files.frontProxyClientKey, pki.frontProxyClient.keyPem],
  ];
  if (files.kubeletServingCa) writes.push([files.kubeletServingCa, kubeletServingCaPem!]);
  for (const [file, content] of writes) await writeFile(file, content, { mode: 0o600 });
  return files;
}

function etcdArgs(dir: string, client: number, peer: number): string[] {
  const c = `http://127.0.0.1:${client}`;
  const p = `http://127.0.0.1:${peer}`;
  return [
    '--name=kedge',
    `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${c}`,
    `--advertise-client-urls=${c}`,
    `--listen-peer-urls=${p}`,
    `--initial-advertise-peer-urls=${p}`,
    `--initial-cluster=kedge=${p}`,
    '--auto-compaction-retention=1',
  ];
}

function apiserverArgs(
  files: PkiFiles,
  ports: { etcd: number; api: number },
  options: ControlPlaneOptions,
): string[] {
  const toleration = options.defaultTolerationSecs ?? DEFAULT_TOLERATION_SECS;
  return [
    `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ports.api}`,
    `--cert-dir=${path.join(files.dir, 'pki')}`,
    `--tls-cert-file=${path.join(files.dir, 'pki', 'apiserver.crt')}`,
    `--tls-private-key-file=${path.join(files.dir, 'pki', 'apiserver.key')}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    `--service-account-key-file=${files.saPub}`,
    `--service-account-signing-key-file=${files.saKey}`,
    '--authorization-mode=Node,RBAC',
    `--client-ca-file=${files.ca}`,
    '--allow-privileged=true',
    `--kubelet-client-certificate=${files.kubeletClientCert}`,
    `--kubelet-client-key=${files.kubeletClientKey}`,
    '--kubelet-preferred-address-types=InternalIP,Hostname',
    `--default-not-ready-toleration-seconds=${toleration}`,
    `--default-unreachable-toleration-seconds=${toleration}`,
    // Loopback addresses are not valid endpoints for the kubernetes Service.
    '--endpoint-reconciler-type=none',
    ...aggregationArgs(files),
    ...(files.kubeletServingCa
      ? [`--kubelet-certificate-authority=${files.kubeletServingCa}`]
      : []),
  ];
}

/**
 * API aggregation (kedge's service API, `api.kedge.io`): the API server proxies to extension
 * API servers with the front-proxy client certificate and names the end user in headers.
 */
function aggregationArgs(files: PkiFiles): string[] {
  return [
    `--requestheader-client-ca-file=${files.frontProxyCa}`,
    `--requestheader-allowed-names=${FRONT_PROXY_CLIENT}`,
    '--requestheader-username-headers=X-Remote-User',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    `--proxy-client-cert-file=${files.frontProxyClientCert}`,
    `--proxy-client-key-file=${files.frontProxyClientKey}`,
    // No kube-proxy here: route to an APIService's endpoint, not its Service's cluster IP.
    '--enable-aggregator-routing=true',
  ];
}

function kcmArgs(files: PkiFiles, port: number, options: ControlPlaneOptions): string[] {
  const grace = options.nodeMonitorGracePeriodSecs ?? DEFAULT_NODE_MONITOR_GRACE_SECS;
  return [
    `--kubeconfig=${files.kcm}`,
    `--authentication-kubeconfig=${files.kcm}`,
    `--authorization-kubeconfig=${files.kcm}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--service-account-private-key-file=${files.saKey}`,
    `--root-ca-file=${files.ca}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--cluster-signing-cert-file=${files.ca}`,
    `--cluster-signing-key-file=${files.caKey}`,
    '--node-monitor-period=1s',
    `--node-monitor-grace-period=${grace}s`,
    '--controllers=*',
  ];
}

function schedulerArgs(files: PkiFiles, port: number): string[] {
  return [
    `--kubeconfig=${files.sched}`,
    `--authentication-kubeconfig=${files.sched}`,
    `--authorization-kubeconfig=${files.sched}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
  ];
}

async function waitHealthy(proc: ManagedProcess, url: string, tls: TlsClient): Promise<void> {
  await waitFor(proc.name, async () => {
    if (!isRunning(proc)) {
      throw new KedgeError(
        ErrorCode.Unavailable,
        `${proc.name} exited during start-up; see ${proc.logFile}`,
      );
    }
    if (url.startsWith('http://')) {
      const res = await fetch(url).catch(() => undefined);
      return res?.ok === true;
    }
    const res = await httpsGet(url, tls).catch(() => undefined);
    return res?.status === 200;
  });
}

async function waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(POLL_INTERVAL_MS);
  }
  throw new KedgeError(
    ErrorCode.Timeout,
    `${what} did not become ready within ${STARTUP_TIMEOUT_MS / 1000} s`,
  );
}
