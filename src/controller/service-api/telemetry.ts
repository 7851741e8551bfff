import type { StoredTelemetry, TelemetryQuery } from '../backend/device-backend.js';
import { failure, SERVICE_API_GROUP, SERVICE_API_VERSION, type Subresource } from './server.js';

/** Reads a device's stored telemetry (today `backend.recentTelemetry`). */
export type ReadTelemetry = (
  namespace: string,
  device: string,
  query: TelemetryQuery,
) => Promise<StoredTelemetry[]>;

/** Messages returned when the request names no `limit`. */
export const DEFAULT_TELEMETRY_LIMIT = 200;
/** The most messages one request returns, so an answer stays well under a megabyte or two. */
export const MAX_TELEMETRY_LIMIT = 1_000;
/** How far back a request without `afterSeq` looks by default: the dashboard's chart window. */
export const DEFAULT_TELEMETRY_WINDOW_SECS = 300;
/** The furthest back a request may look: an hour, as this is a recent view, not an export. */
export const MAX_TELEMETRY_WINDOW_SECS = 3_600;

/**
 * `GET edgedevices/{name}/telemetry?afterSeq=…&limit=…&windowSecs=…`: the device's recent
 * telemetry from the cloud plane, oldest first, RBAC verb `get` on `edgedevices/telemetry`. A
 * reader polls with `afterSeq` set to the last `seq` it saw to get only newer messages.
 */
export function telemetrySubresource(read: ReadTelemetry): Subresource {
  return {
    name: 'telemetry',
    kind: 'TelemetryList',
    verbs: { GET: 'get' },
    maxBodyBytes: 0,
    handle: async ({ namespace, device, query }) => {
      const parsed = parseQuery(query);
      if (typeof parsed === 'string') return failure(400, 'BadRequest', `kedge: ${parsed}`);
      const items = await read(namespace, device, parsed);
      return {
        status: 200,
        body: {
          apiVersion: `${SERVICE_API_GROUP}/${SERVICE_API_VERSION}`,
          kind: 'TelemetryList',
          deviceId: device,
          lastSeq: items.at(-1)?.seq ?? parsed.afterSeq ?? 0,
          items,
        },
      };
    },
  };
}

/** The query's numbers, defaulted and bounded, or what is wrong with them. */
export function parseQuery(query: URLSearchParams): TelemetryQuery | string {
  const afterSeq = whole(query, 'afterSeq', 0, Number.MAX_SAFE_INTEGER);
  const limit = whole(query, 'limit', 1, MAX_TELEMETRY_LIMIT);
  const windowSecs = whole(query, 'windowSecs', 1, MAX_TELEMETRY_WINDOW_SECS);
  for (const value of [afterSeq, limit, windowSecs]) if (typeof value === 'string') return value;
  return {
    ...(afterSeq ? { afterSeq: afterSeq as number } : {}),
    limit: (limit as number | undefined) ?? DEFAULT_TELEMETRY_LIMIT,
    windowSecs: (windowSecs as number | undefined) ?? DEFAULT_TELEMETRY_WINDOW_SECS,
  };
}

function whole(
  query: URLSearchParams,
  name: string,
  min: number,
  max: number,
): number | string | undefined {
  const text = query.get(name);
  if (text === null) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    return `${name} must be a whole number from ${min} to ${max}, got "${text}"`;
  return value;
}
