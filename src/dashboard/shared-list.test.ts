import { PassThrough } from 'node:stream';
import { KubeApiError, Resources, type KubeClient } from '../controller/kube/client.js';
import { SharedList } from './shared-list.js';

const device = { metadata: { name: 'gw', namespace: 'factory', resourceVersion: '1' } };

/** A client whose list answers `list` and whose watch stays open without events. */
function fakeClient(list: () => Promise<unknown>): { client: KubeClient; lists: () => number } {
  let lists = 0;
  const client = {
    list: () => {
      lists++;
      return list();
    },
    stream: () => Promise.resolve(new PassThrough()),
  } as unknown as KubeClient;
  return { client, lists: () => lists };
}

describe('SharedList', () => {
  it('gives the current items at once to a caller that comes after the first list', async () => {
    const { client, lists } = fakeClient(() =>
      Promise.resolve({ metadata: { resourceVersion: '1' }, items: [device] }),
    );
    const shared = new SharedList(client, Resources.edgeDevices());
    try {
      const first = await shared.current();
      expect([...first.items.keys()]).toEqual(['factory/gw']);
      // Told inside listen(), before its removal existed: this used to throw.
      const second = await shared.current();
      expect(second.items.size).toBe(1);
      expect(lists()).toBe(1);
    } finally {
      shared.stop();
    }
  });

  it('tells listeners why the list cannot be read', async () => {
    const denied = new KubeApiError(403, 'Forbidden', 'edgedevices.kedge.io is forbidden');
    const { client } = fakeClient(() => Promise.reject(denied));
    const shared = new SharedList(client, Resources.edgeDevices());
    try {
      const { failure } = await shared.current();
      expect(failure).toEqual({ status: 403, message: 'edgedevices.kedge.io is forbidden' });
    } finally {
      shared.stop();
    }
  });
});
