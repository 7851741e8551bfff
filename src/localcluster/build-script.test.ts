import { buildingStep, formatElapsed } from './build-script.js';

describe('build progress', () => {
  it('names the step a building line starts, without its estimate', () => {
    expect(buildingStep('[etcd] building etcd v3.6.16 (about a minute)')).toBe('etcd v3.6.16');
    expect(buildingStep('[control-plane] building Kubernetes v1.36.3')).toBe('Kubernetes v1.36.3');
    expect(buildingStep('[etcd] etcd v3.6.16 cached in /x')).toBeUndefined();
    expect(buildingStep('[etcd] built etcd v3.6.16 in 40 s')).toBeUndefined();
  });

  it('formats elapsed time in seconds, then minutes and seconds', () => {
    expect(formatElapsed(45_200)).toBe('45 s');
    expect(formatElapsed(185_000)).toBe('3 min 05 s');
  });
});
