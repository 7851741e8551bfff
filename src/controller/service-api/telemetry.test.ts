import { FakeDeviceBackend } from '../backend/fake.js';
import type { SubresourceRequest } from './server.js';
import {
  DEFAULT_TELEMETRY_LIMIT,
  DEFAULT_TELEMETRY_WINDOW_SECS,
  parseQuery,
  telemetrySubresource,
} from './telemetry.js';

function request(query: string): SubresourceRequest {
  return {
    namespace: 'factory',
    device: 'gw-1',
    method: 'GET',
    body: '',
    query: new URLSearchParams(query),
    user: { user: 'alice', groups: [], extra: {} },
  };
}

describe('edgedevices/telemetry', () => {
  it('defaults to the newest messages of the last five minutes', () => {
    expect(parseQuery(new URLSearchParams())).toEqual({
      limit: DEFAULT_TELEMETRY_LIMIT,
      windowSecs: DEFAULT_TELEMETRY_WINDOW_SECS,
    });
    expect(parseQuery(new URLSearchParams('afterSeq=7&limit=5'))).toEqual({
      afterSeq: 7,
      limit: 5,
      windowSecs: DEFAULT_TELEMETRY_WINDOW_SECS,
    });
  });

  it('names a bad number', () => {
    expect(parseQuery(new URLSearchParams('limit=0'))).toMatch(/limit must be a whole number/);
    expect(parseQuery(new URLSearchParams('afterSeq=x'))).toMatch(/afterSeq must be/);
    expect(parseQuery(new URLSearchParams('windowSecs=99999'))).toMatch(/windowSecs must be/);
  });

  it('returns only messages after afterSeq, with the last sequence to ask from next', async () => {
    const backend = new FakeDeviceBackend();
    backend.telemetry.set(
      'factory/gw-1',
      [1, 2, 3].map((seq) => ({ seq, storedAt: new Date(seq * 1000).toISOString(), message: {} })),
    );
    const sub = telemetrySubresource((ns, device, q) => backend.recentTelemetry(ns, device, q));
    const first = await sub.handle(request('afterSeq=1'));
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ kind: 'TelemetryList', lastSeq: 3 });
    expect((first.body as { items: { seq: number }[] }).items.map((i) => i.seq)).toEqual([2, 3]);
    const none = await sub.handle(request('afterSeq=3'));
    expect(none.body).toMatchObject({ lastSeq: 3, items: [] });
    expect((await sub.handle(request('limit=-1'))).status).toBe(400);
  });
});
