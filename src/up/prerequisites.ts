import { localClusterBuilds, natsServerBuild, requireGoFor } from '../localcluster/builds.js';

/**
 * Fails at once, with one line naming what to install, when something `kedge up` needs is neither
 * cached nor buildable: nats-server always, and the local control plane (etcd, Kubernetes, helm)
 * unless `KUBECONFIG` names a cluster. It runs before any long step: a cold build takes minutes.
 * It loads nothing heavy, so `kedge up` can run it before the rest of kedge is loaded.
 */
export function checkUpPrerequisites(): void {
  requireGoFor(process.env.KUBECONFIG ? [natsServerBuild()] : localClusterBuilds());
}
