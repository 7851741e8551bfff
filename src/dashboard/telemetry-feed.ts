import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredTelemetry } from '../controller/backend/device-backend.js';
import type { KubeClient } from '../controller/kube/client.js';
import { SERVICE_API_GROUP, SERVICE_API_VERSION } from '../controller/service-api/server.js';
import type { Failure, TelemetryBatch, TelemetryPoint } from './protocol.js';
import { telemetryPoints } from './views.js';
import { readFailure } from './watch.js';

/**
 * How often new telemetry is asked for. The chart moves once a second, as a person watching
 * expects; each ask returns only messages after the last one seen.
 */
export const TELEMETRY_POLL_MS = 1_000;
/** The chart's window: the first ask fetches this much history. */
export const TELEMETRY_WINDOW_SECS = 300;
/** Messages one ask returns at most (the service API's ceiling). */
const TELEMETRY_LIMIT = 1_000;
/** A failed ask is retried after this. */
const TELEMETRY_RETRY_MS = 5_000;

interface TelemetryList {
  lastSeq: number;
  items: StoredTelemetry[];
}

/** Where a telemetry feed goes, and how it learns the page has gone. */
export interface TelemetrySink {
  send(batch: TelemetryBatch): void;
  fail(failure: Failure): void;
  isClosed(): boolean;
}

/** The service API path of a device's telemetry. */
export function telemetryPath(namespace: string, device: string): string {
  return (
    `/apis/${SERVICE_API_GROUP}/${SERVICE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}` +
    `/edgedevices/${encodeURIComponent(device)}/telemetry`
  );
}

/**
 * Polls the service API (`edgedevices/{name}/telemetry`, as the user) for each device and sends
 * the numeric fields of every new message, until the page goes away.
 */
export async function followTelemetry(
  client: KubeClient,
  target: { namespace: string; devices: string[] },
  sink: TelemetrySink,
): Promise<void> {
  const lastSeq = new Map<string, number>();
  while (!sink.isClosed()) {
    try {
      const points = [];
      for (const device of target.devices)
        points.push(...(await readNew(client, { namespace: target.namespace, device }, lastSeq)));
      sink.send({ points, devices: target.devices });
      await sleep(TELEMETRY_POLL_MS);
    } catch (err) {
      sink.fail(readFailure(err));
      await sleep(TELEMETRY_RETRY_MS);
    }
  }
}

/** The device's messages after the last one read (the whole window on the first read). */
async function readNew(
  client: KubeClient,
  { namespace, device }: { namespace: string; device: string },
  lastSeq: Map<string, number>,
): Promise<TelemetryPoint[]> {
  const after = lastSeq.get(device);
  const list = await client.request<TelemetryList>({
    method: 'GET',
    path: telemetryPath(namespace, device),
    query: after
      ? { afterSeq: after, limit: TELEMETRY_LIMIT }
      : { windowSecs: TELEMETRY_WINDOW_SECS, limit: TELEMETRY_LIMIT },
  });
  if (list.lastSeq) lastSeq.set(device, list.lastSeq);
  return telemetryPoints(device, list.items);
}
