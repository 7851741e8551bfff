import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of the controller, on their own registry. */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({
    name: 'kedge_controller_reconciles_total',
    help: 'Reconciles by controller and outcome.',
    labelNames: ['controller', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'kedge_controller_reconcile_duration_seconds',
    help: 'Reconcile duration by controller.',
    labelNames: ['controller'] as const,
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'kedge_controller_queue_depth',
    help: 'Keys waiting in each work queue.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly connectedDevices = new Gauge({
    name: 'kedge_controller_connected_devices',
    help: 'Devices connected to any gateway, as the gateways announce them.',
    registers: [this.registry],
  });
  readonly reportsRejected = new Counter({
    name: 'kedge_controller_reports_rejected_total',
    help: 'Device reports dropped because they did not match the report schema.',
    registers: [this.registry],
  });
  readonly usageRejected = new Counter({
    name: 'kedge_controller_usage_rejected_total',
    help: 'Device usage samples dropped because they did not match the usage schema.',
    registers: [this.registry],
  });
  readonly eventsDropped = new Counter({
    name: 'kedge_controller_events_dropped_total',
    help: 'Events not recorded: over the per-object limit, or the write queue was full.',
    registers: [this.registry],
  });
  readonly apiRequests = new Counter({
    name: 'kedge_controller_api_requests_total',
    help: 'Kubernetes API requests by method and status code.',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kedge_controller_' });
  }
}
