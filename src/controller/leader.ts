import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/logger.js';
import {
  isConflict,
  isNotFound,
  Resources,
  type KubeClient,
  type KubeObject,
} from './kube/client.js';
import { microTime } from './kube/time.js';

/** How long a leader's claim lasts without renewal (client-go's default). */
export const LEADER_LEASE_DURATION_SECS = 15;
/** How often the leader renews (client-go: renew deadline 10 s, retry period 2 s). */
export const LEADER_RENEW_INTERVAL_MS = 2_000;

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec?: LeaseSpec };

/** Options for {@link LeaderElector}. */
export interface LeaderElectionOptions {
  namespace: string;
  /** Lease name. Defaults to `kedge-controller`. */
  name?: string;
  /** This replica's identity. Defaults to hostname plus pid. */
  identity?: string;
}

/**
 * Lease-based leader election, as client-go's leaderelection: one replica holds the Lease and
 * renews it; the others take over when it expires.
 */
export class LeaderElector {
  readonly identity: string;
  #leading = false;
  #stopped = false;

  constructor(
    private readonly client: KubeClient,
    private readonly options: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.identity = options.identity ?? `${hostname()}_${process.pid}`;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Resolves once this replica leads; keeps renewing in the background. */
  async acquire(onLost: () => void): Promise<void> {
    while (!this.#stopped && !(await this.#tryAcquireOrRenew()))
      await sleep(LEADER_RENEW_INTERVAL_MS);
    this.log.info({ identity: this.identity }, 'became leader');
    void this.#renewLoop(onLost);
  }

  stop(): void {
    this.#stopped = true;
  }

  async #renewLoop(onLost: () => void): Promise<void> {
    while (!this.#stopped) {
      await sleep(LEADER_RENEW_INTERVAL_MS);
      if (this.#stopped) return;
      const ok = await this.#tryAcquireOrRenew().catch(() => false);
      if (!ok) {
        this.#leading = false;
        this.log.error({ identity: this.identity }, 'lost leadership');
        onLost();
        return;
      }
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const ref = Resources.leases(this.options.namespace);
    const name = this.options.name ?? 'kedge-controller';
    const now = microTime();
    const lease = await this.client.find<Lease>(ref, name);
    const spec: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: LEADER_LEASE_DURATION_SECS,
      renewTime: now,
    };
    try {
      if (!lease) {
        await this.client.create<Lease>(ref, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace: this.options.namespace },
          spec: { ...spec, acquireTime: now, leaseTransitions: 0 },
        });
      } else {
        const current = lease.spec ?? {};
        const mine = current.holderIdentity === this.identity;
        if (!mine && !expired(current)) return false;
        const transitions = (current.leaseTransitions ?? 0) + (mine ? 0 : 1);
        await this.client.replace<Lease>(ref, {
          ...lease,
          spec: {
            ...spec,
            acquireTime: mine ? current.acquireTime : now,
            leaseTransitions: transitions,
          },
        });
      }
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
    this.#leading = true;
    return true;
  }
}

function expired(spec: LeaseSpec): boolean {
  if (!spec.holderIdentity || !spec.renewTime) return true;
  const durationMs = (spec.leaseDurationSeconds ?? LEADER_LEASE_DURATION_SECS) * 1000;
  return Date.parse(spec.renewTime) + durationMs < Date.now();
}
