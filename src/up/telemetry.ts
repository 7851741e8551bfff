import { connectAsync } from 'mqtt';
import { telemetryConsumerTopic, type UpstreamMessage } from '../common/cloudlink/protocol.js';
import { SAMPLE } from './sample.js';

/** Where and as whom the telemetry consumer connects. */
export interface TelemetryWatch {
  url: string;
  caPem: string;
  consumer: { username: string; password: string };
  onTelemetry: (line: string) => void;
}

/**
 * Subscribes to the sample device's telemetry on the cloud hub's consumer topic, as any
 * authorized consumer would, and hands each message to `onTelemetry` as one line.
 */
export async function watchTelemetry(watch: TelemetryWatch): Promise<() => Promise<void>> {
  const client = await connectAsync(watch.url, {
    username: `consumer:${watch.consumer.username}`,
    password: watch.consumer.password,
    ca: watch.caPem,
    reconnectPeriod: 1000,
  });
  client.on('message', (_topic, payload) => {
    watch.onTelemetry(describe(payload));
  });
  await client.subscribeAsync(telemetryConsumerTopic(SAMPLE.namespace, SAMPLE.device), { qos: 1 });
  return async () => {
    await client.endAsync();
  };
}

function describe(payload: Buffer): string {
  try {
    const m = JSON.parse(payload.toString('utf8')) as UpstreamMessage;
    const source = m.systemProperties['$.cmid'] ?? m.systemProperties['$.cdid'] ?? '';
    return `${SAMPLE.namespace}/${SAMPLE.device}/${source} ${Buffer.from(m.body, 'base64').toString('utf8')}`;
  } catch {
    return `${SAMPLE.namespace}/${SAMPLE.device} (unreadable telemetry, ${payload.length} bytes)`;
  }
}
