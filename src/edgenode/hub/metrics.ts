/** The hub's Prometheus metrics, on a registry of its own so several hubs can share a process. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { QueueStats } from './queue/durable-queue.js';

/** Why a message or request was refused or dropped (the `reason` label). */
export type DropReason =
  | 'no_route'
  | 'ttl_expiry'
  | 'queue_full'
  | 'too_large'
  | 'topic_too_long'
  | 'too_many_properties'
  | 'malformed'
  | 'acl'
  | 'slow_client'
  | 'rejected';

export class HubMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'kedge_hub_connections',
    help: 'Connected MQTT clients',
    registers: [this.registry],
  });
  readonly connectionsTotal = new Counter({
    name: 'kedge_hub_connections_total',
    help: 'Accepted MQTT connections',
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'kedge_hub_auth_failures_total',
    help: 'Refused CONNECTs by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'kedge_hub_connections_refused_total',
    help: 'Connections closed before authenticating, by listener and reason (deadline, per_source_limit, tls_error, bad_upgrade)',
    labelNames: ['listener', 'reason'],
    registers: [this.registry],
  });
  readonly aclDenials = new Counter({
    name: 'kedge_hub_acl_denials_total',
    help: 'Publishes and subscriptions outside the identity topic space',
    labelNames: ['action'],
    registers: [this.registry],
  });
  readonly methodApiRequests = new Counter({
    name: 'kedge_hub_method_api_requests_total',
    help: 'Module-to-module direct-method requests on the HTTPS method API, by HTTP status',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly messagesIn = new Counter({
    name: 'kedge_hub_messages_received_total',
    help: 'Telemetry and output messages accepted from clients',
    labelNames: ['kind'],
    registers: [this.registry],
  });
  readonly messagesRouted = new Counter({
    name: 'kedge_hub_messages_routed_total',
    help: 'Messages sent to an endpoint, by route',
    labelNames: ['route', 'endpoint'],
    registers: [this.registry],
  });
  readonly messagesUpstream = new Counter({
    name: 'kedge_hub_messages_upstream_sent_total',
    help: 'Messages delivered to the upstream sink',
    registers: [this.registry],
  });
  readonly dropped = new Counter({
    name: 'kedge_hub_messages_dropped_total',
    help: 'Messages refused or dropped, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly serverCertRenewals = new Counter({
    name: 'kedge_hub_server_certificate_renewals_total',
    help: 'Server certificates re-issued while the hub runs',
    registers: [this.registry],
  });
  readonly upstreamConnected = new Gauge({
    name: 'kedge_hub_upstream_connected',
    help: '1 while the upstream link is up',
    registers: [this.registry],
  });

  /** Registers the queue gauges, read on scrape. */
  watchQueue(stats: () => QueueStats): void {
    const registers = [this.registry];
    new Gauge({
      name: 'kedge_hub_queue_depth',
      help: 'Messages waiting for $upstream',
      registers,
      collect() {
        this.set(stats().depth);
      },
    });
    new Gauge({
      name: 'kedge_hub_queue_bytes',
      help: 'Bytes waiting for $upstream',
      registers,
      collect() {
        this.set(stats().bytes);
      },
    });
    new Gauge({
      name: 'kedge_hub_queue_oldest_age_seconds',
      help: 'Age of the oldest queued $upstream message',
      registers,
      collect() {
        const oldest = stats().oldestEnqueuedAtMs;
        this.set(oldest === undefined ? 0 : (Date.now() - oldest) / 1000);
      },
    });
  }

  /** Registers the gauges of messages queued for stopped or slow modules, read on scrape. */
  watchSessions(stats: () => { messages: number; bytes: number }): void {
    const registers = [this.registry];
    new Gauge({
      name: 'kedge_hub_session_queue_depth',
      help: 'QoS 1 messages queued for clean-session-false clients (modules) not yet acknowledged',
      registers,
      collect() {
        this.set(stats().messages);
      },
    });
    new Gauge({
      name: 'kedge_hub_session_queue_bytes',
      help: 'Bytes queued for clean-session-false clients (modules)',
      registers,
      collect() {
        this.set(stats().bytes);
      },
    });
  }

  /** A counter value, for tests and the CLI. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = await this.registry.getSingleMetric(name)?.get();
    const hit = metric?.values.find((v) =>
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
    );
    return hit?.value ?? 0;
  }
}
