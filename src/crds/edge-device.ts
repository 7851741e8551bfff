import { API_VERSION, CATEGORY, DNS_LABEL_PATTERN, GROUP, conditionsSchema } from './common.js';
import type { CrdSource } from './crd.js';
import { arr, bool, int, named, obj, quantity, str, strEnum, stringMap, time } from './schema.js';

/** Per-module runtime states, as IoT Edge reports them. */
export const RUNTIME_STATUSES = [
  'unknown',
  'backoff',
  'running',
  'unhealthy',
  'stopped',
  'failed',
  'dead',
] as const;

/** Connection phases of a device. */
export const DEVICE_PHASES = ['Pending', 'Connected', 'Disconnected'] as const;

/**
 * Node label keys a device may not claim: `kubernetes.io/` and `k8s.io/` and their subdomains
 * (`node-role.kubernetes.io/`, `node-restriction.kubernetes.io/`…). They steer the scheduler and
 * node isolation; kedge sets the ones it needs (role, hostname, os, arch) itself.
 */
export const RESERVED_NODE_LABEL_PATTERN = '^([^/]*[.])?(kubernetes[.]io|k8s[.]io)/';
/** Reserved keys a device may still set: topology, as the NodeRestriction admission allows a kubelet. */
export const ALLOWED_RESERVED_NODE_LABELS = [
  'topology.kubernetes.io/region',
  'topology.kubernetes.io/zone',
] as const;

/** Whether a label key is reserved for Kubernetes and kedge on a device's Node. */
export function isReservedNodeLabel(key: string): boolean {
  return (
    new RegExp(RESERVED_NODE_LABEL_PATTERN).test(key) &&
    !(ALLOWED_RESERVED_NODE_LABELS as readonly string[]).includes(key)
  );
}

/** Labels on one Node at most; bounds the CEL rule's cost. */
const MAX_NODE_LABELS = 64;

const nodeLabels = stringMap(
  'Extra labels for the device Node, on top of the EdgeDevice labels and the kedge labels. Keys under kubernetes.io/ and k8s.io/ (and their subdomains, such as node-role.kubernetes.io/) are refused, except topology.kubernetes.io/region and zone.',
  {
    maxProperties: MAX_NODE_LABELS,
    'x-kubernetes-validations': [
      {
        rule: `self.all(k, !k.matches('${RESERVED_NODE_LABEL_PATTERN}') || k in [${ALLOWED_RESERVED_NODE_LABELS.map((l) => `'${l}'`).join(', ')}])`,
        message:
          'nodeLabels may not use the reserved prefixes kubernetes.io/ and k8s.io/ or their subdomains (node-role.kubernetes.io/, node-restriction.kubernetes.io/…); kedge sets those labels itself',
      },
    ],
  },
);

/** Most namespaces a device may take pods from; bounds the list. */
const MAX_TENANT_NAMESPACES = 64;

const tenancy = named(
  'DeviceTenancy',
  obj('Which namespaces may run pods on the device. By default only its own.', {
    allowPodsFromNamespaces: arr(
      "Namespaces besides the device's own whose pods may run on it. Their env, envFrom and imagePullSecrets are always read from the pod's own namespace.",
      str('A namespace name.', { pattern: DNS_LABEL_PATTERN, maxLength: 63 }),
      { maxItems: MAX_TENANT_NAMESPACES, 'x-kubernetes-list-type': 'set' },
    ),
  }),
);

const hostAccess = named(
  'DeviceHostAccess',
  obj(
    "Host access the device allows its modules. A module's createOptions (or pod spec) that reach the host also need the namespace's Pod Security level to be privileged: both must allow it. Defaults to none.",
    {
      privileged: bool(
        'Allow HostConfig.Privileged, and host user, cgroup namespaces, unconfined seccomp or AppArmor and unsafe sysctls.',
      ),
      hostNetwork: bool('Allow HostConfig.NetworkMode (and UTSMode) host.'),
      hostPID: bool('Allow HostConfig.PidMode host.'),
      hostIPC: bool('Allow HostConfig.IpcMode host.'),
      hostPaths: arr(
        'Host paths modules may bind (HostConfig.Binds, bind Mounts): the path itself and everything below it. `/` allows every path; the Docker socket gives root on the device.',
        str('An absolute host path.', { pattern: '^/', maxLength: 4096 }),
        { maxItems: 32 },
      ),
      devices: bool(
        'Allow host devices: HostConfig.Devices, DeviceRequests and DeviceCgroupRules.',
      ),
      capabilities: arr(
        'Capabilities beyond the Pod Security baseline set modules may add (HostConfig.CapAdd), for example NET_ADMIN.',
        str('A capability name, without the CAP_ prefix.', { pattern: '^[A-Z_]+$', maxLength: 64 }),
        { maxItems: 64 },
      ),
    },
  ),
);

const taint = named(
  'DeviceTaint',
  obj(
    'A taint added to the device Node.',
    {
      key: str('Taint key.', { minLength: 1, maxLength: 316 }),
      value: str('Taint value.', { maxLength: 63 }),
      effect: strEnum('Taint effect.', ['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
    },
    { required: ['key', 'effect'] },
  ),
);

const authentication = named(
  'DeviceAuthentication',
  obj(
    'How the device proves its identity to the cloud hub.',
    {
      type: strEnum('Authentication type. Defaults to SymmetricKey.', ['SymmetricKey', 'X509']),
      symmetricKey: obj('Symmetric-key settings.', {
        secretName: str(
          'Secret holding the device key under `primaryKey` (base64 of at least 16 bytes). Defaults to `<device>-kedge-key`; the controller generates it when missing. A Secret the controller did not create must carry the label `kedge.io/device-key-for: <device>`.',
          { minLength: 1, maxLength: 253 },
        ),
      }),
      x509: obj(
        'X.509 settings: the device certificate by its thumbprint, or the CA that signs it.',
        {
          thumbprint: str('SHA-256 thumbprint (hex) of the device certificate.', {
            pattern: '^[A-Fa-f0-9]{64}$',
          }),
          caCertificate: str(
            "PEM certificate of the CA that signs the device's certificates (CA-signed X.509, as IoT Hub's): a certificate it signs, directly or through intermediates the device sends, whose subject CN is the device name, is accepted.",
            { minLength: 1, maxLength: 16384 },
          ),
        },
        {
          'x-kubernetes-validations': [
            {
              rule: 'has(self.thumbprint) != has(self.caCertificate)',
              message: 'authentication.x509 takes exactly one of thumbprint and caCertificate',
            },
          ],
        },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: "!has(self.type) || self.type != 'X509' || has(self.x509)",
          message: 'authentication.x509 is required when authentication.type is X509',
        },
        {
          rule: "!has(self.x509) || (has(self.type) && self.type == 'X509')",
          message: 'authentication.x509 is only allowed when authentication.type is X509',
        },
      ],
    },
  ),
);

const heartbeat = named(
  'DeviceHeartbeat',
  obj(
    'Heartbeat and offline-tolerance settings.',
    {
      intervalSecs: int(
        'How often the device reports that it is alive, in seconds. Defaults to 10.',
        {
          minimum: 1,
          maximum: 300,
        },
      ),
      offlineAfterSecs: int(
        'Seconds without a heartbeat after which the device counts as Disconnected and its Node NotReady. Defaults to 40.',
        { minimum: 2, maximum: 86400 },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: '!has(self.intervalSecs) || !has(self.offlineAfterSecs) || self.offlineAfterSecs > self.intervalSecs',
          message: 'heartbeat.offlineAfterSecs must be greater than heartbeat.intervalSecs',
        },
      ],
    },
  ),
);

const moduleStatus = named(
  'DeviceModuleStatus',
  obj(
    'What the device reports about one module.',
    {
      name: str('Module name.'),
      image: str('Image the module runs.'),
      imageID: str('Resolved image ID.'),
      runtimeStatus: strEnum('Runtime state of the module.', RUNTIME_STATUSES),
      restartCount: int('Restarts since the module was last created or reset.', { minimum: 0 }),
      exitCode: int('Exit code of the last run.'),
      lastStartTimeUtc: time('When the module last started.'),
      lastExitTimeUtc: time('When the module last exited.'),
      lastRestartTimeUtc: time('When the agent last restarted the module.'),
      statusDescription: str('Detail of the state, such as an error text.', { maxLength: 1024 }),
    },
    { required: ['name'] },
  ),
);

const spec = named(
  'EdgeDeviceSpec',
  obj('Desired state of an edge device.', {
    nodeLabels,
    taints: arr('Taints added to the device Node besides kedge.io/edge=true:NoSchedule.', taint, {
      maxItems: 16,
    }),
    authentication,
    parent: str(
      "Name of the gateway EdgeDevice (same namespace) this leaf device connects through. A leaf gets no Node and no modules: its identity (key or X.509 thumbprint) is synced to the gateway's hub, which caches it for offline use.",
      { pattern: DNS_LABEL_PATTERN, maxLength: 63 },
    ),
    heartbeat,
    tenancy,
    hostAccess,
  }),
);

const status = named(
  'EdgeDeviceStatus',
  obj('Observed state of an edge device, as the controller and the device report it.', {
    observedGeneration: int('The .metadata.generation this status was computed from.'),
    phase: strEnum('Connection phase.', DEVICE_PHASES),
    lastSeen: time('Last heartbeat received from the device.'),
    connectedSince: time('When the current connection started.'),
    nodeName: str('Name of the Node that represents the device. A leaf device has none.'),
    parent: str(
      'For a leaf device: the gateway EdgeDevice whose hub it connects through, once that gateway exists and is not itself a leaf.',
    ),
    agentVersion: str('kedge version running on the device.'),
    containerRuntime: str('Container runtime and version, for example docker://24.0.7.'),
    os: str('Operating system, for example linux.'),
    arch: str('CPU architecture, for example amd64.'),
    capacity: named(
      'DeviceCapacity',
      obj('Resources the device reports.', {
        cpu: quantity('CPU cores.'),
        memory: quantity('Memory in bytes.'),
        storage: quantity('Disk space of the data directory in bytes.'),
        pods: quantity('Modules the device accepts.'),
      }),
    ),
    moduleSummary: str('Running modules over desired modules, for example 2/3.'),
    desiredVersion: int('Version of the desired configuration last sent to the device.', {
      minimum: 0,
    }),
    appliedVersion: int('Version of the desired configuration the device last applied.', {
      minimum: 0,
    }),
    modules: arr('Per-module summary, bounded to 64 entries.', moduleStatus, { maxItems: 64 }),
    conditions: conditionsSchema(
      'Ready, Connected and ModulesHealthy conditions; a leaf device has Parent instead of NodeOwned and ModulesHealthy.',
    ),
  }),
);

export const edgeDevice: CrdSource = {
  group: GROUP,
  apiVersion: API_VERSION,
  kind: 'EdgeDevice',
  plural: 'edgedevices',
  singular: 'edgedevice',
  shortNames: ['ed', 'edev'],
  categories: [CATEGORY],
  description: 'An edge device running `kedge node`. The controller presents it as a Node.',
  spec,
  status,
  rootRules: [
    {
      rule: '!has(self.spec.parent) || self.spec.parent != self.metadata.name',
      message: 'spec.parent must name another device, not the device itself',
      fieldPath: '.spec.parent',
    },
  ],
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Node', type: 'string', jsonPath: '.status.nodeName' },
    { name: 'Modules', type: 'string', jsonPath: '.status.moduleSummary' },
    { name: 'Version', type: 'string', jsonPath: '.status.agentVersion', priority: 1 },
    { name: 'Last Seen', type: 'date', jsonPath: '.status.lastSeen' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
