import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { UpstreamMessage } from '../common/cloudlink/protocol.js';
import { Streams, Subjects } from '../common/cloudplane/layout.js';
import { SAMPLE } from './sample.js';

/** Where the telemetry is read, and who is told. */
export interface TelemetryWatch {
  natsUrl: string;
  onTelemetry: (line: string) => void;
}

/**
 * Reads the sample device's telemetry from the telemetry stream as any JetStream consumer would
 * (an ordered consumer from now on), and hands each message to `onTelemetry` as one line.
 */
export async function watchTelemetry(watch: TelemetryWatch): Promise<() => Promise<void>> {
  const nc = await connect({ servers: watch.natsUrl });
  const consumer = await jetstream(nc).consumers.get(Streams.telemetry, {
    filter_subjects: [Subjects.telemetry(SAMPLE.namespace, SAMPLE.device)],
    deliver_policy: DeliverPolicy.New,
  });
  const messages = await consumer.consume();
  void (async () => {
    for await (const m of messages) watch.onTelemetry(describe(m.data));
  })();
  return async () => {
    await messages.close();
    await nc.close();
  };
}

function describe(payload: Uint8Array): string {
  try {
    const m = JSON.parse(Buffer.from(payload).toString('utf8')) as UpstreamMessage;
    const source = m.systemProperties['$.cmid'] ?? m.systemProperties['$.cdid'] ?? '';
    return `${SAMPLE.namespace}/${SAMPLE.device}/${source} ${Buffer.from(m.body, 'base64').toString('utf8')}`;
  } catch {
    return `${SAMPLE.namespace}/${SAMPLE.device} (unreadable telemetry, ${payload.length} bytes)`;
  }
}
