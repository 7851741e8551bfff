import type { EdgeDevice } from '../crds/index.js';
import { readDeviceKeys, type SecretObject } from './device-keys.js';
import type { KubeObject } from './kube/client.js';

const device = {
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name: 'edge-1', namespace: 'tenant-a', uid: 'device-uid' },
  spec: {},
} as EdgeDevice & KubeObject;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const GOOD = Buffer.alloc(32, 9).toString('base64');
const secret = (
  data: Record<string, string>,
  metadata: Partial<KubeObject['metadata']> = {},
): SecretObject => ({
  metadata: {
    name: 'k',
    ownerReferences: [
      { apiVersion: 'kedge.io/v1alpha1', kind: 'EdgeDevice', name: 'edge-1', uid: 'device-uid' },
    ],
    ...metadata,
  },
  data,
});

describe('readDeviceKeys', () => {
  it('reads primary and secondary keys of an owned Secret', () => {
    expect(
      readDeviceKeys(device, secret({ primaryKey: b64(GOOD), secondaryKey: b64(GOOD) })),
    ).toEqual({
      keys: [GOOD, GOOD],
    });
  });

  it('refuses a Secret the device does not own unless it is labelled for the device', () => {
    const foreign = secret({ primaryKey: b64(GOOD) }, { ownerReferences: [] });
    expect(readDeviceKeys(device, foreign)).toEqual({
      refusal: expect.objectContaining({ reason: 'KeySecretNotOwned' }),
    });
    const labelled = secret(
      { primaryKey: b64(GOOD) },
      { ownerReferences: [], labels: { 'kedge.io/device-key-for': 'edge-1' } },
    );
    expect(readDeviceKeys(device, labelled)).toEqual({ keys: [GOOD] });
    const forOther = secret(
      { primaryKey: b64(GOOD) },
      { ownerReferences: [], labels: { 'kedge.io/device-key-for': 'edge-2' } },
    );
    expect('refusal' in readDeviceKeys(device, forOther)).toBe(true);
  });

  it('refuses keys that are not base64 or too short, and a Secret without a key', () => {
    expect(readDeviceKeys(device, secret({ primaryKey: b64('!!!!') }))).toEqual({
      refusal: { reason: 'InvalidKey', message: 'Secret k primaryKey: the key is not base64' },
    });
    expect(
      readDeviceKeys(device, secret({ primaryKey: b64(GOOD), secondaryKey: b64('AAAA') })),
    ).toEqual({ refusal: expect.objectContaining({ reason: 'InvalidKey' }) });
    expect(readDeviceKeys(device, secret({}))).toEqual({
      refusal: expect.objectContaining({ reason: 'NoKey' }),
    });
  });
});
