import { checkHostAccess, podSecurityLevel, type HostAccessPolicy } from './host-access.js';

const baseline: HostAccessPolicy = {
  level: 'baseline',
  allowance: undefined,
  namespace: 'tenant-a',
  device: 'tenant-a/edge-1',
};
const privilegedNs = (allowance: HostAccessPolicy['allowance']): HostAccessPolicy => ({
  ...baseline,
  level: 'privileged',
  allowance,
});
const options = (host: Record<string, unknown>): Record<string, unknown> => ({ HostConfig: host });
const refused = (opts: Record<string, unknown>, policy: HostAccessPolicy): string[] =>
  checkHostAccess(opts, policy).map((v) => v.option);

describe('podSecurityLevel', () => {
  it('reads the enforce label, assumes baseline without it and restricted for nonsense', () => {
    expect(podSecurityLevel({ 'pod-security.kubernetes.io/enforce': 'privileged' })).toBe(
      'privileged',
    );
    expect(podSecurityLevel(undefined)).toBe('baseline');
    expect(podSecurityLevel({ 'pod-security.kubernetes.io/enforce': 'lax' })).toBe('restricted');
  });
});

describe('checkHostAccess', () => {
  const escapes: [string, Record<string, unknown>][] = [
    ['HostConfig.Privileged', options({ Privileged: true })],
    ['HostConfig.Binds /', options({ Binds: ['/:/host'] })],
    ['HostConfig.Binds /var/run/docker.sock', options({ Binds: ['/var/run/docker.sock:/s'] })],
    ['HostConfig.Mounts /etc', options({ Mounts: [{ Type: 'bind', Source: '/etc' }] })],
    ['HostConfig.NetworkMode', options({ NetworkMode: 'host' })],
    ['HostConfig.PidMode', options({ PidMode: 'host' })],
    ['HostConfig.IpcMode', options({ IpcMode: 'host' })],
    ['HostConfig.CapAdd SYS_ADMIN', options({ CapAdd: ['CAP_SYS_ADMIN'] })],
    ['HostConfig.Devices', options({ Devices: [{ PathOnHost: '/dev/mem' }] })],
    ['HostConfig.SecurityOpt seccomp=unconfined', options({ SecurityOpt: ['seccomp=unconfined'] })],
    [
      'HostConfig.Sysctls kernel.core_pattern',
      options({ Sysctls: { 'kernel.core_pattern': 'x' } }),
    ],
  ];

  it.each(escapes)('refuses %s in a baseline namespace, naming the option', (option, opts) => {
    const violations = checkHostAccess(opts, baseline);
    expect(violations.map((v) => v.option)).toEqual([option]);
    expect(violations[0]!.message).toContain('namespace tenant-a enforces Pod Security "baseline"');
    expect(violations[0]!.message).toContain('EdgeDevice tenant-a/edge-1 does not allow it');
  });

  it.each(escapes)(
    'refuses %s in a privileged namespace when the device does not allow it',
    (option, opts) => {
      const violations = checkHostAccess(opts, privilegedNs({}));
      expect(violations.map((v) => v.option)).toEqual([option]);
      expect(violations[0]!.message).not.toContain('Pod Security');
    },
  );

  it('reads option names regardless of case, as Docker does', () => {
    const opts = { hostconfig: { privileged: true, networkmode: 'host', binds: ['/:/h'] } };
    expect(refused(opts, baseline)).toEqual([
      'HostConfig.Privileged',
      'HostConfig.NetworkMode',
      'HostConfig.Binds /',
    ]);
  });

  it('sees a volume whose local driver binds a host path', () => {
    const volume = {
      Type: 'volume',
      Source: 'innocent',
      VolumeOptions: {
        DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind', device: '/' } },
      },
    };
    expect(refused(options({ Mounts: [volume] }), baseline)).toEqual([
      'HostConfig.Mounts volume device /',
    ]);
    expect(refused(options({ Mounts: [volume] }), privilegedNs({ hostPaths: ['/'] }))).toEqual([]);
  });

  it('allows host access when both the namespace and the device allow it', () => {
    const allowance = {
      privileged: true,
      hostNetwork: true,
      hostPID: true,
      hostIPC: true,
      hostPaths: ['/'],
      devices: true,
      capabilities: ['SYS_ADMIN'],
    };
    for (const [, opts] of escapes) expect(refused(opts, privilegedNs(allowance))).toEqual([]);
  });

  it('refuses a device allowance alone: the namespace must be privileged too', () => {
    expect(
      refused(options({ Privileged: true }), { ...baseline, allowance: { privileged: true } }),
    ).toEqual(['HostConfig.Privileged']);
  });

  it('matches host paths by whole path components, after normalizing', () => {
    const policy = privilegedNs({ hostPaths: ['/var/lib/modbus/'] });
    expect(refused(options({ Binds: ['/var/lib/modbus:/data'] }), policy)).toEqual([]);
    expect(refused(options({ Binds: ['/var/lib/modbus/x:/data:ro'] }), policy)).toEqual([]);
    expect(refused(options({ Binds: ['/var/lib/modbus2:/data'] }), policy)).toHaveLength(1);
    expect(refused(options({ Binds: ['/var/lib/modbus/../../..:/data'] }), policy)).toHaveLength(1);
  });

  it('leaves named volumes, published ports and memory limits alone', () => {
    const opts = options({
      Binds: ['blobvolume:/blobroot'],
      PortBindings: { '443/tcp': [{ HostPort: '443' }] },
      Memory: 1 << 27,
      CapAdd: ['NET_BIND_SERVICE', 'CHOWN'],
    });
    expect(refused(opts, baseline)).toEqual([]);
  });

  it('applies restricted: only NET_BIND_SERVICE may be added, and the user must not be root', () => {
    const restricted: HostAccessPolicy = { ...baseline, level: 'restricted' };
    expect(refused({ ...options({ CapAdd: ['CHOWN'] }), User: '1000' }, restricted)).toEqual([
      'HostConfig.CapAdd CHOWN',
    ]);
    expect(refused({ User: '0:0' }, restricted)).toEqual(['User']);
    expect(refused({}, restricted)).toEqual(['User']);
    expect(
      refused({ User: '1000:1000', ...options({ CapAdd: ['NET_BIND_SERVICE'] }) }, restricted),
    ).toEqual([]);
  });

  it('never allows CapAdd ALL short of privileged', () => {
    expect(refused(options({ CapAdd: ['ALL'] }), privilegedNs({ capabilities: ['ALL'] }))).toEqual([
      'HostConfig.CapAdd ALL',
    ]);
  });
});
