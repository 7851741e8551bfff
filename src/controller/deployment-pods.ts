import { createHash } from 'node:crypto';
import type { EdgeDeployment, EdgeModule } from '../crds/index.js';
import { API_VERSION } from '../crds/index.js';
import { EDGE_TAINT, Labels } from '../provider/naming.js';
import { ModuleAnnotations } from '../provider/translate.js';
import type { KubeObject } from './kube/client.js';

/** Annotation with the hash of the module spec a pod was built from. */
export const SPEC_HASH_ANNOTATION = ModuleAnnotations.specHash;
/**
 * Annotation with the hash of the part of the module spec that a pod cannot change in place
 * (command, args, env, resources, pull policy and secrets). Pods that agree on it are updated in
 * place, so the device sees one change from the old module to the new one and pulls the new
 * image before it stops the old module (docs/adr/0028).
 */
export const POD_HASH_ANNOTATION = 'kedge.io/pod-hash';
/** Module settings a pod carries in annotations or in a mutable field (the image). */
const IN_PLACE_FIELDS = [
  'image',
  'restartPolicy',
  'desiredStatus',
  'startupOrder',
  'createOptions',
  'desiredProperties',
  'moduleId',
] as const;
const MAX_NAME_LENGTH = 253;
const HASH_LENGTH = 8;

/**
 * Tolerations on every pod kedge creates: the edge taint, and not-ready/unreachable without a
 * time limit, so an offline device never has its pods evicted or recreated.
 */
export const KEDGE_TOLERATIONS = [
  { key: EDGE_TAINT.key, operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
];

/** The pod that runs one module of a deployment on one device. */
export function desiredModulePod(
  deployment: EdgeDeployment,
  module: EdgeModule,
  device: string,
  nodeName: string,
): KubeObject {
  const hash = moduleHash(deployment, module);
  const namespace = deployment.metadata.namespace!;
  const annotations = {
    ...moduleAnnotations(module),
    [SPEC_HASH_ANNOTATION]: hash,
    [POD_HASH_ANNOTATION]: podHash(deployment, module),
  };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(deployment.metadata.name!, module.name, device),
      namespace,
      labels: {
        [Labels.deployment]: deployment.metadata.name!,
        [Labels.module]: module.name,
        [Labels.device]: device,
        [Labels.managedBy]: 'kedge',
      },
      annotations,
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'EdgeDeployment',
          name: deployment.metadata.name!,
          uid: deployment.metadata.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      nodeName,
      restartPolicy: 'Always',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      tolerations: KEDGE_TOLERATIONS,
      imagePullSecrets: deployment.spec.imagePullSecrets,
      containers: [
        {
          name: module.name,
          image: module.image,
          imagePullPolicy: module.imagePullPolicy ?? 'IfNotPresent',
          ...(module.command ? { command: module.command } : {}),
          ...(module.args ? { args: module.args } : {}),
          ...(module.env ? { env: module.env } : {}),
          ...(module.resources?.limits ? { resources: { limits: module.resources.limits } } : {}),
        },
      ],
    },
  };
}

function moduleAnnotations(module: EdgeModule): Record<string, string> {
  const out: Record<string, string> = {};
  if (module.restartPolicy) out[ModuleAnnotations.restartPolicy] = module.restartPolicy;
  if (module.desiredStatus) out[ModuleAnnotations.desiredStatus] = module.desiredStatus;
  if (module.startupOrder !== undefined)
    out[ModuleAnnotations.startupOrder] = String(module.startupOrder);
  if (module.createOptions)
    out[ModuleAnnotations.createOptions] = JSON.stringify(module.createOptions);
  if (module.desiredProperties)
    out[ModuleAnnotations.desiredProperties] = JSON.stringify(module.desiredProperties);
  if (module.moduleId !== undefined && module.moduleId !== module.name)
    out[ModuleAnnotations.moduleId] = module.moduleId;
  return out;
}

/**
 * Hashes by module object, with the pull secrets they were computed with. Informer objects are
 * never mutated (a new version brings new objects), so a hit is current; a deployment over a
 * thousand devices would otherwise hash the same module a thousand times per reconcile.
 */
const moduleHashes = new WeakMap<EdgeModule, { secrets: unknown; hash: string }>();

/**
 * A stable hash of everything that needs a new pod when it changes. `desiredProperties` is left
 * out: it travels in a pod annotation that is patched in place, and the device's hub turns the
 * change into a twin desired patch to the running module (docs/adr/0019). A module without
 * desired properties hashes as it always did.
 */
export function moduleHash(deployment: EdgeDeployment, module: EdgeModule): string {
  const secrets = deployment.spec.imagePullSecrets;
  const cached = moduleHashes.get(module);
  if (cached && cached.secrets === secrets) return cached.hash;
  const shaped: Partial<EdgeModule> = { ...module };
  delete shaped.desiredProperties;
  const input = JSON.stringify([shaped, secrets ?? []]);
  const hash = createHash('sha256').update(input).digest('hex').slice(0, HASH_LENGTH);
  moduleHashes.set(module, { secrets, hash });
  return hash;
}

/** A hash of what a new pod is needed for: the module without its in-place fields. */
export function podHash(deployment: EdgeDeployment, module: EdgeModule): string {
  const shaped: Partial<EdgeModule> = { ...module };
  for (const field of IN_PLACE_FIELDS) delete shaped[field];
  const input = JSON.stringify([shaped, deployment.spec.imagePullSecrets ?? []]);
  return createHash('sha256').update(input).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * The strategic merge patch that turns `pod` into `want` in place (image and module
 * annotations), or undefined when it needs a new pod: the pod predates the pod hash, or
 * something only a new pod can change differs.
 */
export function inPlacePatch(pod: KubeObject, want: KubeObject): object | undefined {
  const hash = pod.metadata.annotations?.[POD_HASH_ANNOTATION];
  if (!hash || hash !== want.metadata.annotations?.[POD_HASH_ANNOTATION]) return undefined;
  const keys = [...Object.values(ModuleAnnotations), POD_HASH_ANNOTATION];
  const annotations = Object.fromEntries(
    keys.map((k) => [k, want.metadata.annotations?.[k] ?? null]),
  );
  const container = (want.spec as { containers: { name: string; image: string }[] }).containers[0]!;
  return {
    metadata: { annotations },
    spec: { containers: [{ name: container.name, image: container.image }] },
  };
}

/**
 * The pod annotations a module changes in place, without a new pod: only its desired
 * properties. Absent means the module has none (a merge patch removes the annotation).
 */
export function liveAnnotations(pod: KubeObject): Record<string, string | null> {
  const key = ModuleAnnotations.desiredProperties;
  return { [key]: pod.metadata.annotations?.[key] ?? null };
}

/** `<deployment>-<module>-<device>`, shortened with a hash when too long for a name. */
export function podName(deployment: string, module: string, device: string): string {
  const name = `${deployment}-${module}-${device}`;
  if (name.length <= MAX_NAME_LENGTH) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, HASH_LENGTH);
  return `${name.slice(0, MAX_NAME_LENGTH - HASH_LENGTH - 1)}-${hash}`;
}
