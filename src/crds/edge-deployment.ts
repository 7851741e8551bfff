import {
  API_VERSION,
  CATEGORY,
  DNS_LABEL_PATTERN,
  GROUP,
  conditionsSchema,
  labelSelectorSchema,
  routeFields,
  routeRules,
} from './common.js';
import type { CrdSource } from './crd.js';
import {
  anyJson,
  arr,
  bool,
  freeform,
  int,
  intOrPercent,
  named,
  obj,
  quantity,
  str,
  strEnum,
} from './schema.js';

/** IoT Edge restart policies. */
export const RESTART_POLICIES = ['always', 'on-failure', 'on-unhealthy', 'never'] as const;
/** Desired module states. */
export const DESIRED_STATUSES = ['running', 'stopped'] as const;
/** Image pull policies, in Kubernetes terms. */
export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;

/** IoT Edge module names: letters, digits, `-` and `_`, any case (the manifest's module keys). */
const MODULE_ID_PATTERN = '^[A-Za-z0-9_-]+$';
/** The longest IoT Hub module id. */
const MAX_MODULE_ID_LENGTH = 128;
/** The hub identity of a module in CEL: its moduleId, else its name. */
const celModuleId = (v: string): string => `(has(${v}.moduleId) ? ${v}.moduleId : ${v}.name)`;

const keyRef = (what: string): ReturnType<typeof obj> =>
  obj(
    `A key of a ${what} in the deployment's namespace.`,
    {
      name: str(`${what} name.`, { minLength: 1 }),
      key: str(`Key within the ${what}.`, { minLength: 1 }),
    },
    { required: ['name', 'key'] },
  );

const envVar = named(
  'ModuleEnvVar',
  obj(
    'An environment variable of the module.',
    {
      name: str('Variable name.', { minLength: 1, maxLength: 256 }),
      value: str('Literal value.'),
      valueFrom: obj('Value taken from a Secret or ConfigMap key, resolved by the controller.', {
        secretKeyRef: keyRef('Secret'),
        configMapKeyRef: keyRef('ConfigMap'),
      }),
    },
    {
      required: ['name'],
      'x-kubernetes-validations': [
        {
          rule: '!(has(self.value) && has(self.valueFrom))',
          message: 'give an env var either value or valueFrom, not both',
        },
      ],
    },
  ),
);

const moduleSpec = named(
  'EdgeModule',
  obj(
    'One module (container) to run on every targeted device.',
    {
      name: str(
        'Module name: the container name in the pod and on the device, and the module identity on the hub unless moduleId is set.',
        { pattern: DNS_LABEL_PATTERN, maxLength: 63 },
      ),
      moduleId: str(
        'The module\'s IoT Hub module id when it is not a DNS label, as IoT Edge names it (SimulatedTemperatureSensor): IOTEDGE_MODULEID, its hub credentials, routes (/messages/modules/<id>/…, BrokeredEndpoint("/modules/<id>/inputs/…"), $connectionModuleId), its twin, direct methods and the `kedge invoke` target. Letters, digits, - and _ (IoT Edge module names), case kept. Defaults to name.',
        { pattern: MODULE_ID_PATTERN, maxLength: MAX_MODULE_ID_LENGTH },
      ),
      image: str('Container image.', { minLength: 1, maxLength: 1024 }),
      imagePullPolicy: strEnum('When to pull the image. Defaults to IfNotPresent.', PULL_POLICIES),
      command: arr('Entrypoint override.', str('One argument.'), { maxItems: 64 }),
      args: arr('Arguments to the entrypoint.', str('One argument.'), { maxItems: 256 }),
      env: arr('Environment variables.', envVar, { maxItems: 128 }),
      createOptions: freeform('Docker Engine create options, passed through as in IoT Edge.'),
      restartPolicy: strEnum(
        'When the agent restarts the module. Defaults to always.',
        RESTART_POLICIES,
      ),
      desiredStatus: strEnum(
        'Whether the module should run. Defaults to running.',
        DESIRED_STATUSES,
      ),
      startupOrder: int('Modules start in ascending order. Defaults to 4294967295 (last).', {
        minimum: 0,
        maximum: 4294967295,
      }),
      desiredProperties: freeform('Desired properties of the module twin.'),
      resources: obj('Resource limits of the module.', {
        limits: obj('Upper bounds enforced by the runtime.', {
          cpu: quantity('CPU limit, for example 500m.'),
          memory: quantity('Memory limit, for example 128Mi.'),
        }),
      }),
    },
    { required: ['name', 'image'] },
  ),
);

const deploymentRoute = named(
  'DeploymentRoute',
  obj(
    'A route inlined in the deployment.',
    {
      name: str('Route name, unique within the deployment.', {
        pattern: DNS_LABEL_PATTERN,
        maxLength: 63,
      }),
      ...routeFields(),
    },
    { required: ['name'], 'x-kubernetes-validations': routeRules },
  ),
);

/** IoT Edge module names: letters, digits, `_` and `-`, any case. */
const MODULE_REF_PATTERN = '^[A-Za-z0-9_-]+$';
/** Twin property names exclude `.`, `$` and spaces (IoT Hub); a path joins them with dots. */
const TWIN_PATH_PATTERN = '^[^.$\\s]+(\\.[^.$\\s]+)*$';
/** Bounds that keep the uniqueness rule's CEL cost within the API server's budget. */
const MAX_DESIRED_PATHS = 100;
const MAX_TWIN_PATH_LENGTH = 512;

const desiredPropertyPath = named(
  'DesiredPropertyPath',
  obj(
    'Desired properties at one path of a module twin, as an IoT Edge layered deployment sets `<module>: {"properties.desired.<path>": value}`. The module may come from any EdgeDeployment that targets the device.',
    {
      module: str(
        'Name of the module whose twin this sets (spec.modules[].name of this or another deployment that targets the device).',
        { pattern: MODULE_REF_PATTERN, maxLength: 128 },
      ),
      path: str(
        "Dot-separated path under the twin's desired properties, for example `layeredProperties.SendInterval`.",
        { pattern: TWIN_PATH_PATTERN, maxLength: MAX_TWIN_PATH_LENGTH },
      ),
      value: anyJson('The value at that path: any JSON value.'),
    },
    { required: ['module', 'path', 'value'] },
  ),
);

/** Defaults of `spec.rollout`, in one place for the controller, the docs and the CRD text. */
export const ROLLOUT_DEFAULTS = {
  /** A quarter of the fleet at once, as a Deployment's default. */
  maxUnavailable: '25%',
  /** One failing device in ten stops a rollout. */
  failureThreshold: '10%',
  autoRollback: true,
  /** As a Deployment's progressDeadlineSeconds: ten minutes to pull and start. */
  progressDeadlineSeconds: 600,
} as const;

/** A count of at least 1, or a percentage from 1% to 100%, checked by the API server. */
const countOrPercentRule = (field: string): { rule: string; message: string } => ({
  rule: "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
  message: `${field} must be a device count of at least 1 or a percentage from 1% to 100%`,
});

const rollout = named(
  'EdgeDeploymentRollout',
  obj(
    'How a change to the modules reaches the fleet: a bounded number of devices at a time, and a halt with rollback to the last good spec when too many fail. A change that only touches desiredProperties or routes applies everywhere at once.',
    {
      maxUnavailable: intOrPercent(
        `How many targeted devices may be updating at once: a count, or a percentage of the targeted devices (rounded down, at least 1). A device counts until it reports every module running the new spec, fails, or passes progressDeadlineSeconds. Devices that run no version of this deployment yet get it at once. Defaults to ${ROLLOUT_DEFAULTS.maxUnavailable}.`,
        [countOrPercentRule('maxUnavailable')],
      ),
      failureThreshold: intOrPercent(
        `How many devices may fail the new spec before the rollout halts: a count, or a percentage of the targeted devices (rounded up, at least 1). A device fails when a module reports a failure on the new spec or misses progressDeadlineSeconds. Defaults to ${ROLLOUT_DEFAULTS.failureThreshold}.`,
        [countOrPercentRule('failureThreshold')],
      ),
      autoRollback: bool(
        'Whether a halted rollout rolls every device back to the last spec that reached every device. false leaves devices as they are (the rest never get the new spec) until the spec changes again. Defaults to true.',
      ),
      progressDeadlineSeconds: int(
        `Seconds a connected device has to report every module running the new spec before it counts as failed. Defaults to ${ROLLOUT_DEFAULTS.progressDeadlineSeconds}.`,
        { minimum: 1, maximum: 86400 },
      ),
    },
  ),
);

const spec = named(
  'EdgeDeploymentSpec',
  obj(
    'Modules and routes for every device the selector targets.',
    {
      selector: labelSelectorSchema,
      priority: int(
        'Wins module-name conflicts with other deployments on the same device; higher wins, ties go to the name that sorts first. Defaults to 0.',
        { minimum: 0, maximum: 2147483647 },
      ),
      modules: arr('Modules to run.', moduleSpec, { maxItems: 50 }),
      routes: arr('Routes for the hub on each targeted device.', deploymentRoute, {
        maxItems: 100,
      }),
      hub: obj('Hub settings.', {
        storeAndForward: obj('Store-and-forward settings.', {
          timeToLiveSecs: int(
            'How long upstream messages are kept while offline, in seconds. Defaults to 7200.',
            {
              minimum: 0,
              maximum: 31536000,
            },
          ),
        }),
      }),
      desiredProperties: arr(
        'Module twin desired properties set by path, merged over the twins of the modules the device runs: for each path the deployment with the higher priority wins (ties: the name that sorts first), as IoT Edge layers deployments.',
        desiredPropertyPath,
        { maxItems: MAX_DESIRED_PATHS },
      ),
      rollout,
      imagePullSecrets: arr(
        'Secrets of type kubernetes.io/dockerconfigjson with registry credentials.',
        obj(
          'A Secret reference.',
          { name: str('Secret name.', { minLength: 1 }) },
          { required: ['name'] },
        ),
        { maxItems: 16 },
      ),
    },
    {
      required: ['selector'],
      'x-kubernetes-validations': [
        {
          rule: '!has(self.modules) || self.modules.all(m, self.modules.exists_one(n, n.name == m.name))',
          message: 'module names must be unique within a deployment',
          fieldPath: '.modules',
        },
        {
          rule: `!has(self.modules) || self.modules.all(m, self.modules.exists_one(n, ${celModuleId('n')} == ${celModuleId('m')}))`,
          message: 'module ids (moduleId, else name) must be unique within a deployment',
          fieldPath: '.modules',
        },
        {
          rule: '!has(self.routes) || self.routes.all(r, self.routes.exists_one(q, q.name == r.name))',
          message: 'route names must be unique within a deployment',
          fieldPath: '.routes',
        },
        {
          rule: '!has(self.desiredProperties) || self.desiredProperties.all(p, self.desiredProperties.exists_one(q, q.module == p.module && q.path == p.path))',
          message: 'desiredProperties must set each module and path once',
          fieldPath: '.desiredProperties',
        },
        {
          rule: 'has(self.modules) || has(self.routes) || has(self.desiredProperties)',
          message: 'a deployment needs at least one module, route or desiredProperties entry',
        },
      ],
    },
  ),
);

const status = named(
  'EdgeDeploymentStatus',
  obj('Rollout state across the targeted devices.', {
    observedGeneration: int('The .metadata.generation this status was computed from.'),
    targetedCount: int('Devices the selector matches.', { minimum: 0 }),
    appliedCount: int('Devices whose desired state includes this deployment.', { minimum: 0 }),
    reportedSuccessfulCount: int(
      'Devices reporting every module of this deployment running the spec they should run (status.rollout.targetRevision, or the last good revision after a rollback); a device still on an older spec does not count.',
      { minimum: 0 },
    ),
    reportedFailedCount: int(
      'Devices reporting a module of this deployment failed on the spec they should run, or past the progress deadline.',
      { minimum: 0 },
    ),
    rollout: named(
      'EdgeDeploymentRolloutStatus',
      obj('Where the rollout of the current spec stands.', {
        phase: strEnum(
          'Progressing (devices are being updated), Complete (every device runs the current spec), Halted (too many failures; nothing changes until the spec does), RollingBack (too many failures; devices return to the last good spec) or RolledBack (every device runs the last good spec again).',
          ['Progressing', 'Complete', 'Halted', 'RollingBack', 'RolledBack'],
        ),
        targetRevision: str('Hash of the module spec of the current generation.'),
        stableRevision: str(
          'Hash of the last module spec that reached every device; kept in a ControllerRevision owned by this deployment. Empty before any did.',
        ),
        updatedCount: int('Devices given the target revision.', { minimum: 0 }),
        failedRevision: str('Hash of the module spec whose rollout failed, if any.'),
        failedGeneration: int('The .metadata.generation whose rollout failed, if any.'),
        message: str('What the rollout is doing, or why it halted.', { maxLength: 1024 }),
      }),
    ),
    failingDevices: arr(
      'Devices that fail, bounded to 20 entries.',
      named(
        'FailingDevice',
        obj('A device that fails, and why.', {
          device: str('EdgeDevice name.'),
          module: str('Module that fails.'),
          reason: str('Short CamelCase reason.'),
          message: str('Detail.', { maxLength: 1024 }),
        }),
      ),
      { maxItems: 20 },
    ),
    conflicts: arr(
      'Modules this deployment lost to a higher-priority deployment, bounded to 20 entries.',
      named(
        'ModuleConflict',
        obj('A lost module-name conflict.', {
          device: str('EdgeDevice name.'),
          module: str('Module name.'),
          winner: str('EdgeDeployment that won the module.'),
        }),
      ),
      { maxItems: 20 },
    ),
    conditions: conditionsSchema(
      'Ready, Applied, Progressing, RolledBack, Conflict and RoutesValid conditions.',
    ),
  }),
);

export const edgeDeployment: CrdSource = {
  group: GROUP,
  apiVersion: API_VERSION,
  kind: 'EdgeDeployment',
  plural: 'edgedeployments',
  singular: 'edgedeployment',
  shortNames: ['edep'],
  categories: [CATEGORY],
  description:
    'Modules and routes for every EdgeDevice its selector targets (a layered deployment).',
  spec,
  status,
  rootRules: [],
  printerColumns: [
    { name: 'Priority', type: 'integer', jsonPath: '.spec.priority' },
    { name: 'Targeted', type: 'integer', jsonPath: '.status.targetedCount' },
    { name: 'Applied', type: 'integer', jsonPath: '.status.appliedCount' },
    { name: 'Successful', type: 'integer', jsonPath: '.status.reportedSuccessfulCount' },
    { name: 'Failed', type: 'integer', jsonPath: '.status.reportedFailedCount' },
    { name: 'Rollout', type: 'string', jsonPath: '.status.rollout.phase' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
};
