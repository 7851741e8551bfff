import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModuleReport } from './reported.js';
import type { RuntimeStatus } from './types.js';

const STATES: RuntimeStatus[] = [
  'unknown',
  'backoff',
  'running',
  'unhealthy',
  'stopped',
  'failed',
  'dead',
];
/** Reconcile passes take milliseconds when idle and seconds when pulling; buckets span both. */
const RECONCILE_BUCKETS_SECS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * ArrayBuffer memory (Buffers included), the one `process.memoryUsage()` figure prom-client's
 * process metrics leave out; together they split RSS into heap, external and native.
 */
function arrayBuffersGauge(registers: Registry[]): void {
  new Gauge({
    name: 'nodejs_array_buffers_bytes',
    help: 'Memory of ArrayBuffers and Buffers in bytes (part of nodejs_external_memory_bytes).',
    registers,
    collect() {
      this.set(process.memoryUsage().arrayBuffers);
    },
  });
}

/** The agent's Prometheus metrics, in a registry of their own (never the global one). */
export class AgentMetrics {
  readonly registry: Registry;
  readonly #modules: Gauge;
  readonly #restarts: Counter;
  readonly #reconcile: Histogram;
  readonly #pullFailures: Counter;
  readonly #reconcileErrors: Counter;

  /** @param registry where to register; defaults to a new one with Node's process metrics. */
  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    const registers = [this.registry];
    if (!registry) {
      collectDefaultMetrics({ register: this.registry });
      arrayBuffersGauge(registers);
    }
    this.#modules = new Gauge({
      name: 'kedge_agent_modules',
      help: 'Modules by reported runtime status',
      labelNames: ['state'],
      registers,
    });
    this.#restarts = new Counter({
      name: 'kedge_agent_module_restarts_total',
      help: 'Module restarts done by the agent under a restart policy',
      labelNames: ['module'],
      registers,
    });
    this.#reconcile = new Histogram({
      name: 'kedge_agent_reconcile_duration_seconds',
      help: 'Duration of reconcile passes',
      buckets: RECONCILE_BUCKETS_SECS,
      registers,
    });
    this.#pullFailures = new Counter({
      name: 'kedge_agent_image_pull_failures_total',
      help: 'Failed image pulls',
      labelNames: ['module'],
      registers,
    });
    this.#reconcileErrors = new Counter({
      name: 'kedge_agent_reconcile_errors_total',
      help: 'Reconcile passes that failed as a whole (runtime unreachable…)',
      registers,
    });
  }

  observeModules(reports: Iterable<ModuleReport>): void {
    const counts = new Map<RuntimeStatus, number>(STATES.map((s) => [s, 0]));
    for (const r of reports) counts.set(r.runtimeStatus, (counts.get(r.runtimeStatus) ?? 0) + 1);
    for (const [state, count] of counts) this.#modules.set({ state }, count);
  }

  restarted(module: string): void {
    this.#restarts.inc({ module });
  }

  pullFailed(module: string): void {
    this.#pullFailures.inc({ module });
  }

  reconciled(durationSecs: number): void {
    this.#reconcile.observe(durationSecs);
  }

  reconcileFailed(): void {
    this.#reconcileErrors.inc();
  }
}
