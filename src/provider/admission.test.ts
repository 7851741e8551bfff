import type { EdgeDevice } from '../crds/index.js';
import { admitPod, type AdmissionPod } from './admission.js';

const device = (spec: EdgeDevice['spec'] = {}): EdgeDevice => ({
  apiVersion: 'kedge.io/v1alpha1',
  kind: 'EdgeDevice',
  metadata: { name: 'edge-1', namespace: 'tenant-a' },
  spec,
});
const pod = (
  namespace: string,
  extra: Partial<AdmissionPod['metadata']> = {},
  spec: Partial<AdmissionPod['spec']> = {},
): AdmissionPod => ({
  metadata: { namespace, ...extra },
  spec: { containers: [{ name: 'app', image: 'busybox' }], ...spec },
});

describe('admitPod', () => {
  it("admits pods of the device's own namespace", () => {
    expect(admitPod(pod('tenant-a'), device(), 'baseline')).toBeUndefined();
  });

  it('refuses pods of another namespace unless the device lists it', () => {
    const refusal = admitPod(pod('tenant-b'), device(), 'baseline');
    expect(refusal).toEqual({
      reason: 'NamespaceNotAllowed',
      message: expect.stringContaining(
        'EdgeDevice tenant-a/edge-1 does not run pods from namespace tenant-b',
      ),
    });
    const allowing = device({ tenancy: { allowPodsFromNamespaces: ['tenant-b'] } });
    expect(admitPod(pod('tenant-b'), allowing, 'baseline')).toBeUndefined();
  });

  it('refuses DaemonSet pods unless their template opts in', () => {
    const owned = { ownerReferences: [{ kind: 'DaemonSet', name: 'kube-proxy' }] };
    expect(admitPod(pod('tenant-a', owned), device(), 'baseline')?.reason).toBe(
      'DaemonSetNotAllowed',
    );
    const optedIn = { ...owned, annotations: { 'kedge.io/allow-daemonset': 'true' } };
    expect(admitPod(pod('tenant-a', optedIn), device(), 'baseline')).toBeUndefined();
  });

  it('refuses host access from the create-options annotation and from the pod spec', () => {
    const annotated = pod('tenant-a', {
      annotations: { 'kedge.io/create-options': '{"HostConfig":{"Binds":["/:/host"]}}' },
    });
    const refusal = admitPod(annotated, device(), 'baseline');
    expect(refusal?.reason).toBe('HostAccessDenied');
    expect(refusal?.message).toContain('container app: HostConfig.Binds /');
    const hostNetwork = pod('tenant-a', {}, { hostNetwork: true });
    expect(admitPod(hostNetwork, device(), 'baseline')?.message).toContain(
      'HostConfig.NetworkMode',
    );
    expect(
      admitPod(hostNetwork, device({ hostAccess: { hostNetwork: true } }), 'privileged'),
    ).toBeUndefined();
  });
});
