/**
 * What the controller remembers about an EdgeDeployment's rollouts. The last good module spec is
 * kept in a ControllerRevision the deployment owns (as a DaemonSet keeps its history): durable,
 * outside the user's spec, garbage-collected with the deployment, and visible with `kubectl get
 * controllerrevisions`. Which generation failed is kept in status.rollout, with an in-process copy
 * so a status the informer has not caught up with cannot restart a failed rollout
 * (docs/adr/0028-safe-rollouts.md).
 */
import { createHash } from 'node:crypto';
import type { EdgeDeployment, EdgeModule } from '../crds/index.js';
import { API_VERSION } from '../crds/index.js';
import { Labels } from '../provider/naming.js';
import type { ControllerContext } from './context.js';
import { moduleHash } from './deployment-pods.js';
import { isConflict, Resources, type KubeObject } from './kube/client.js';
import type { RolloutMemory } from './rollout.js';

/** Annotation on a ControllerRevision: the revision hash of the spec it holds. */
export const REVISION_HASH_ANNOTATION = 'kedge.io/revision-hash';
/** Good revisions kept per deployment; older ones are deleted (the newest is the rollback target). */
const KEPT_REVISIONS = 3;
const REVISION_HASH_LENGTH = 10;
const MAX_NAME_LENGTH = 253;

/** The part of a spec a rollout rolls: what shapes the module pods. */
export interface RevisionSpec {
  modules: EdgeModule[];
  imagePullSecrets?: { name: string }[];
}

interface ControllerRevision extends KubeObject {
  data?: RevisionSpec;
  revision: number;
}

interface Remembered {
  memory: RolloutMemory;
  stableSpec?: RevisionSpec;
}

/** The revision of a deployment's module spec: a hash over each module's spec hash. */
export function revisionOf(deployment: EdgeDeployment): string {
  const modules = (deployment.spec.modules ?? []).map((m) => [m.name, moduleHash(deployment, m)]);
  return createHash('sha256')
    .update(JSON.stringify(modules))
    .digest('hex')
    .slice(0, REVISION_HASH_LENGTH);
}

/** The deployment as it was at its stable revision, with today's live desired properties. */
export function stableVariant(deployment: EdgeDeployment, spec: RevisionSpec): EdgeDeployment {
  const live = new Map((deployment.spec.modules ?? []).map((m) => [m.name, m]));
  const modules = spec.modules.map((m) => {
    const properties = live.get(m.name)?.desiredProperties;
    const shaped: EdgeModule = { ...m };
    delete shaped.desiredProperties;
    return properties ? { ...shaped, desiredProperties: properties } : shaped;
  });
  const { imagePullSecrets } = spec;
  const rest: EdgeDeployment['spec'] = { ...deployment.spec, modules };
  delete rest.imagePullSecrets;
  return { ...deployment, spec: imagePullSecrets ? { ...rest, imagePullSecrets } : rest };
}

/** Per deployment (by uid): its rollout memory, loaded once and then written through. */
export class RolloutStore {
  readonly #known = new Map<string, Remembered>();
  /** `uid/device/revision` → when this process first saw the device updating to it. */
  readonly #started = new Map<string, number>();

  /** The memory of `deployment`: its newest ControllerRevision, and status.rollout's failure. */
  async load(ctx: ControllerContext, deployment: EdgeDeployment): Promise<Remembered> {
    const uid = deployment.metadata.uid!;
    const known = this.#known.get(uid);
    if (known) return known;
    const newest = (await this.#revisions(ctx, deployment))[0];
    const failed = deployment.status?.rollout;
    const memory: RolloutMemory = {};
    if (newest?.data)
      memory.stableRevision = newest.metadata.annotations?.[REVISION_HASH_ANNOTATION];
    if (failed?.failedRevision && failed.failedGeneration !== undefined) {
      memory.failedRevision = failed.failedRevision;
      memory.failedGeneration = failed.failedGeneration;
      memory.failedReason = failed.message;
    }
    const remembered: Remembered = { memory, ...(newest?.data ? { stableSpec: newest.data } : {}) };
    this.#known.set(uid, remembered);
    return remembered;
  }

  /** Remembers a decision; a new stable revision is written to a ControllerRevision first. */
  async save(
    ctx: ControllerContext,
    deployment: EdgeDeployment,
    memory: RolloutMemory,
  ): Promise<void> {
    const uid = deployment.metadata.uid!;
    const before = this.#known.get(uid);
    if (JSON.stringify(before?.memory) === JSON.stringify(memory)) return;
    let stableSpec = before?.stableSpec;
    if (memory.stableRevision && memory.stableRevision !== before?.memory.stableRevision) {
      this.#forgetStarts(uid);
      stableSpec = {
        modules: deployment.spec.modules ?? [],
        ...(deployment.spec.imagePullSecrets
          ? { imagePullSecrets: deployment.spec.imagePullSecrets }
          : {}),
      };
      await this.#record(ctx, deployment, memory.stableRevision, stableSpec);
    }
    this.#known.set(uid, { memory, ...(stableSpec ? { stableSpec } : {}) });
  }

  /** When this process first saw `device` updating to `revision` (now, the first time). */
  startedAt(deployment: EdgeDeployment, device: string, revision: string, nowMs: number): number {
    const key = `${deployment.metadata.uid}/${device}/${revision}`;
    const at = this.#started.get(key) ?? nowMs;
    this.#started.set(key, at);
    return at;
  }

  /** Forgets a deleted deployment. */
  forget(uid: string): void {
    this.#known.delete(uid);
    this.#forgetStarts(uid);
  }

  /** Drops the start times of a finished rollout (a new rollout starts its own). */
  #forgetStarts(uid: string): void {
    for (const key of this.#started.keys())
      if (key.startsWith(`${uid}/`)) this.#started.delete(key);
  }

  async #revisions(
    ctx: ControllerContext,
    deployment: EdgeDeployment,
  ): Promise<ControllerRevision[]> {
    const list = await ctx.client.list<ControllerRevision>(
      Resources.controllerRevisions(deployment.metadata.namespace!),
      { labelSelector: `${Labels.deployment}=${deployment.metadata.name}` },
    );
    return list.items
      .filter((r) => r.metadata.ownerReferences?.some((o) => o.uid === deployment.metadata.uid))
      .sort((a, b) => b.revision - a.revision);
  }

  /** Writes the good spec as a ControllerRevision (or renumbers an existing one) and prunes old ones. */
  async #record(
    ctx: ControllerContext,
    deployment: EdgeDeployment,
    hash: string,
    data: RevisionSpec,
  ): Promise<void> {
    const ns = deployment.metadata.namespace!;
    const name = `${deployment.metadata.name}-${hash}`.slice(0, MAX_NAME_LENGTH);
    const existing = await this.#revisions(ctx, deployment);
    const revision = Math.max(
      deployment.metadata.generation ?? 0,
      (existing[0]?.revision ?? 0) + 1,
    );
    const body: ControllerRevision = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name,
        namespace: ns,
        labels: { [Labels.deployment]: deployment.metadata.name!, [Labels.managedBy]: 'kedge' },
        annotations: { [REVISION_HASH_ANNOTATION]: hash },
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
      data,
      revision,
    };
    await ctx.client.create(Resources.controllerRevisions(ns), body).catch(async (err: unknown) => {
      if (!isConflict(err)) throw err;
      // The same spec was good before: its data cannot change, only its place in the history.
      await ctx.client.patch(Resources.controllerRevisions(ns), name, { revision });
    });
    const stale = existing.filter((r) => r.metadata.name !== name).slice(KEPT_REVISIONS - 1);
    for (const r of stale)
      await ctx.client.delete(Resources.controllerRevisions(ns), r.metadata.name!);
  }
}

const stores = new WeakMap<ControllerContext, RolloutStore>();

/** The rollout store of a controller (one per context). */
export function rolloutStore(ctx: ControllerContext): RolloutStore {
  let store = stores.get(ctx);
  if (!store) stores.set(ctx, (store = new RolloutStore()));
  return store;
}
