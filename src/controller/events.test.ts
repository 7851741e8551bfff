import { jest } from '@jest/globals';
import type { Logger } from '../common/logger.js';
import { EventRecorder } from './events.js';
import type { KubeClient, KubeObject } from './kube/client.js';

function fakeClient() {
  const created: KubeObject[] = [];
  const patched: { name: string; body: any }[] = [];
  const client = {
    create: (_ref: unknown, body: KubeObject) => {
      created.push(body);
      return Promise.resolve(body);
    },
    patch: (_ref: unknown, name: string, body: unknown) => {
      patched.push({ name, body });
      return Promise.resolve({ metadata: {} });
    },
  } as unknown as KubeClient;
  return { client, created, patched };
}

const log = { debug: () => undefined } as unknown as Logger;
const pod = (uid: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `pod-${uid}`, namespace: 'ns', uid },
});

describe('EventRecorder', () => {
  beforeEach(() => jest.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => jest.useRealTimers());

  it('folds a repeated event into one with a count, as the kubelet does', async () => {
    const { client, created, patched } = fakeClient();
    const recorder = new EventRecorder(client, log);
    recorder.record(pod('a'), 'Warning', 'BackOff', 'Back-off restarting');
    await jest.advanceTimersByTimeAsync(10);
    recorder.record(pod('a'), 'Warning', 'BackOff', 'Back-off restarting');
    recorder.record(pod('a'), 'Warning', 'BackOff', 'Back-off restarting');
    await jest.advanceTimersByTimeAsync(10);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ reason: 'BackOff', count: 1, involvedObject: { uid: 'a' } });
    expect(patched).toEqual([
      { name: created[0]!.metadata.name, body: expect.objectContaining({ count: 3 }) },
    ]);
    // Past the 10-minute window the same event starts again as a new one.
    jest.advanceTimersByTime(11 * 60_000);
    recorder.record(pod('a'), 'Warning', 'BackOff', 'Back-off restarting');
    await jest.advanceTimersByTimeAsync(10);
    expect(created).toHaveLength(2);
    recorder.close();
  });

  it('gives one object a burst of 25 distinct events, then drops and counts', async () => {
    const { client, created } = fakeClient();
    let dropped = 0;
    const recorder = new EventRecorder(client, log, { inc: () => void dropped++ });
    for (let i = 0; i < 30; i++) recorder.record(pod('b'), 'Normal', 'Started', `start ${i}`);
    recorder.record(pod('c'), 'Normal', 'Started', 'other object');
    await jest.advanceTimersByTimeAsync(10_000);
    expect(created).toHaveLength(26);
    expect(dropped).toBe(5);
    recorder.close();
  });

  it('keeps all writes within 20 per second after a burst of 100', async () => {
    const { client, created } = fakeClient();
    const recorder = new EventRecorder(client, log);
    for (let i = 0; i < 200; i++) recorder.record(pod(`p${i}`), 'Normal', 'Created', 'created');
    await jest.advanceTimersByTimeAsync(0);
    expect(created).toHaveLength(100);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(created.length).toBeGreaterThanOrEqual(119);
    expect(created.length).toBeLessThanOrEqual(121);
    await jest.advanceTimersByTimeAsync(5_000);
    expect(created).toHaveLength(200);
    recorder.close();
  });
});
