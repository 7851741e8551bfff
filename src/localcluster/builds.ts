/**
 * The Go programs kedge builds once from the Go module proxy and caches outside the repository
 * (`~/.cache/kedge`, or `$KEDGE_CACHE_DIR`): the Kubernetes control plane with kubectl, helm, etcd
 * and nats-server. Each has a build script in this folder that keys its cache by version; this
 * module knows where each lands, so a missing prerequisite (Go) is named before any long step.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../common/errors.js';

/** The pinned Kubernetes release; `build-control-plane.sh` carries the same default. */
export const KUBERNETES_VERSION = 'v1.36.3';
/** The pinned helm release; `build-control-plane.sh` carries the same default. */
export const HELM_VERSION = 'v3.21.4';
/** The pinned etcd release (3.6 is the series Kubernetes 1.36 is tested with). */
export const ETCD_VERSION = 'v3.6.16';
/** The pinned nats-server release; the chart's bundled image carries the same version. */
export const NATS_SERVER_VERSION = 'v2.15.2';

/** One cached build: what it is called in messages and the file that proves it is cached. */
export interface CachedBuild {
  /** For people: "etcd v3.6.16". */
  what: string;
  /** The file the build script leaves; when it exists nothing needs building. */
  binary: string;
}

/** Where every build is cached: `$KEDGE_CACHE_DIR`, else `~/.cache/kedge`. */
export function cacheRoot(): string {
  return process.env.KEDGE_CACHE_DIR ?? path.join(homedir(), '.cache', 'kedge');
}

const version = (envName: string, pinned: string): string => process.env[envName] ?? pinned;

/** The control-plane build: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl. */
export function kubernetesBuild(): CachedBuild {
  const v = version('KEDGE_K8S_VERSION', KUBERNETES_VERSION);
  return {
    what: `Kubernetes ${v}`,
    binary: path.join(cacheRoot(), `k8s-${v}`, 'bin', 'kube-apiserver'),
  };
}

export function helmBuild(): CachedBuild {
  const v = version('KEDGE_HELM_VERSION', HELM_VERSION);
  return { what: `helm ${v}`, binary: path.join(cacheRoot(), `helm-${v}`, 'bin', 'helm') };
}

export function etcdBuild(): CachedBuild {
  const v = version('KEDGE_ETCD_VERSION', ETCD_VERSION);
  return { what: `etcd ${v}`, binary: path.join(cacheRoot(), `etcd-${v}`, 'bin', 'etcd') };
}

export function natsServerBuild(): CachedBuild {
  const v = version('KEDGE_NATS_VERSION', NATS_SERVER_VERSION);
  return {
    what: `nats-server ${v}`,
    binary: path.join(cacheRoot(), `nats-server-${v}`, 'bin', 'nats-server'),
  };
}

/** What a local cluster (`kedge up`, `kedge cluster up`, the tests) runs: every build above. */
export function localClusterBuilds(): CachedBuild[] {
  return [natsServerBuild(), etcdBuild(), kubernetesBuild(), helmBuild()];
}

/** True when an executable `command` is in one of `$PATH`'s directories. */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** "a", "a and b", "a, b and c". */
function listed(items: string[]): string {
  return items.length < 2
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/**
 * Fails at once, with one line naming Go and what it is needed for, when some of `builds` are not
 * cached and Go is not on PATH. Callers run it before any long step: a cold build takes minutes.
 */
export function requireGoFor(builds: CachedBuild[]): void {
  const missing = builds.filter((b) => !existsSync(b.binary)).map((b) => b.what);
  if (missing.length === 0 || onPath('go')) return;
  const them = missing.length === 1 ? 'it' : 'them';
  throw new KedgeError(
    ErrorCode.Unavailable,
    `Go is required to build ${listed(missing)} (kedge builds ${them} once from the Go module proxy into ${cacheRoot()}): install Go from https://go.dev/dl/`,
  );
}
