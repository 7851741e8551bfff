import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The gateway's Prometheus series. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly info = new Gauge({
    name: 'kedge_gateway_info',
    help: 'This gateway instance; its id is the one in presence events',
    labelNames: ['id'],
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: 'kedge_gateway_sessions',
    help: 'Authenticated device sessions this gateway holds',
    registers: [this.registry],
  });
  readonly refused = new Counter({
    name: 'kedge_gateway_connections_refused_total',
    help: 'Connections closed before MQTT, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly denied = new Counter({
    name: 'kedge_gateway_denied_total',
    help: 'Refused connects, publishes and subscribes, by what was refused',
    labelNames: ['what'],
    registers: [this.registry],
  });
  readonly telemetryStored = new Counter({
    name: 'kedge_gateway_telemetry_stored_total',
    help: 'Telemetry messages stored in JetStream (a re-sent duplicate counts again)',
    registers: [this.registry],
  });
  readonly deadLetters = new Counter({
    name: 'kedge_gateway_dead_letters_total',
    help: 'Telemetry messages the cloud refused, kept in the dead-letter stream',
    registers: [this.registry],
  });

  readonly c2d = new Counter({
    name: 'kedge_gateway_c2d_messages_total',
    help: 'Cloud-to-device messages handed to devices, by outcome (delivered, rejected by the device)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly usageDropped = new Counter({
    name: 'kedge_gateway_usage_dropped_total',
    help: 'Device usage samples dropped for being over the size limit',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
