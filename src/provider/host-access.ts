/**
 * Host access in a module's Docker create options, checked against the namespace's Pod Security
 * level and the EdgeDevice's `spec.hostAccess`. Pod Security Admission never sees create options
 * (they travel in an annotation or an EdgeDeployment), so kedge applies the same levels to the
 * translated module. Anything that reaches the host needs both: the namespace at `privileged`
 * and the device allowing that kind of access.
 */
import path from 'node:path';
import type { DeviceHostAccess } from '../crds/index.js';

/** Pod Security Standards levels, from most to least permissive. */
export const POD_SECURITY_LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type PodSecurityLevel = (typeof POD_SECURITY_LEVELS)[number];

/** The namespace label Pod Security Admission enforces. */
export const POD_SECURITY_ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce';
/**
 * The level of a namespace without the label. Kubernetes' own default is privileged, which
 * would let every tenant reach the host; kedge assumes baseline, as most clusters configure.
 */
export const DEFAULT_POD_SECURITY_LEVEL: PodSecurityLevel = 'baseline';

/** The level a namespace enforces; an unknown value counts as restricted (fail closed). */
export function podSecurityLevel(labels: Record<string, string> | undefined): PodSecurityLevel {
  const value = labels?.[POD_SECURITY_ENFORCE_LABEL];
  if (value === undefined) return DEFAULT_POD_SECURITY_LEVEL;
  return (POD_SECURITY_LEVELS as readonly string[]).includes(value)
    ? (value as PodSecurityLevel)
    : 'restricted';
}

/** The kinds of host access, each named after its `spec.hostAccess` field. */
export type HostAccessKind = Exclude<keyof DeviceHostAccess, 'hostPaths' | 'capabilities'>;

/** One create option that asks for more than is allowed, and why. */
export interface HostAccessViolation {
  /** The create option, e.g. `HostConfig.Privileged`. */
  option: string;
  message: string;
}

/** Capabilities Pod Security baseline allows to add (the container runtime's default set). */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
/** The one capability Pod Security restricted allows to add. */
const RESTRICTED_CAPABILITIES = new Set(['NET_BIND_SERVICE']);
/** Sysctls Pod Security baseline allows; they are namespaced and cannot reach the host. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
/** Security options that switch confinement off. */
const UNCONFINED_SECURITY_OPT = /^(seccomp|apparmor)[=:]unconfined$|^label[=:]disable$/i;

/** Who is asking, for messages: `namespace tenant-a` and `EdgeDevice tenant-a/edge-1`. */
export interface HostAccessPolicy {
  level: PodSecurityLevel;
  allowance: DeviceHostAccess | undefined;
  namespace: string;
  device: string;
}

/** A host-access request found in create options, before the policy is applied. */
interface Finding {
  option: string;
  what: string;
  /** The `spec.hostAccess` permission it needs; undefined for a plain Pod Security limit. */
  allowedBy?: (a: DeviceHostAccess) => boolean;
  field?: string;
  /** The least permissive level that allows it without host access (capabilities, user). */
  level?: PodSecurityLevel;
}

/** Every option of `createOptions` the policy does not allow; empty when all is allowed. */
export function checkHostAccess(
  createOptions: Record<string, unknown>,
  policy: HostAccessPolicy,
): HostAccessViolation[] {
  return findings(createOptions).flatMap((f) => judge(f, policy));
}

function judge(f: Finding, policy: HostAccessPolicy): HostAccessViolation[] {
  if (f.level !== undefined) {
    const allowed = levelRank(policy.level) <= levelRank(f.level);
    if (allowed) return [];
    return [
      {
        option: f.option,
        message: `${f.option} (${f.what}) is refused: namespace ${policy.namespace} enforces Pod Security "${policy.level}"`,
      },
    ];
  }
  const reasons: string[] = [];
  if (policy.level !== 'privileged')
    reasons.push(
      `namespace ${policy.namespace} enforces Pod Security "${policy.level}" (host access needs "privileged")`,
    );
  if (!policy.allowance || !f.allowedBy!(policy.allowance))
    reasons.push(`EdgeDevice ${policy.device} does not allow it in spec.hostAccess.${f.field}`);
  if (reasons.length === 0) return [];
  return [
    { option: f.option, message: `${f.option} (${f.what}) is refused: ${reasons.join('; ')}` },
  ];
}

function levelRank(level: PodSecurityLevel): number {
  return POD_SECURITY_LEVELS.indexOf(level);
}

/**
 * Docker decodes create options with Go's encoding/json, which matches field names regardless of
 * case: `privileged` is `Privileged`. Every lookup here is therefore case-insensitive and sees
 * every spelling present.
 */
function field(obj: unknown, name: string): unknown[] {
  const lower = name.toLowerCase();
  return Object.entries(asRecord(obj))
    .filter(([k]) => k.toLowerCase() === lower)
    .map(([, v]) => v);
}

/** The array items of every spelling of `name`. */
function items(obj: unknown, name: string): unknown[] {
  return field(obj, name).flatMap(asArray);
}

function findings(options: Record<string, unknown>): Finding[] {
  return [
    ...field(options, 'HostConfig').flatMap((host) => [
      ...namespaceFindings(host),
      ...pathFindings(host),
      ...deviceFindings(host),
      ...capabilityFindings(host),
      ...confinementFindings(host),
    ]),
    ...userFindings(options),
  ];
}

const flag = (name: HostAccessKind) => (a: DeviceHostAccess) => a[name] === true;

function namespaceFindings(host: unknown): Finding[] {
  const out: Finding[] = [];
  const modes: [string, HostAccessKind, string][] = [
    ['NetworkMode', 'hostNetwork', 'host network'],
    ['UTSMode', 'hostNetwork', 'host UTS namespace'],
    ['PidMode', 'hostPID', 'host PID namespace'],
    ['IpcMode', 'hostIPC', 'host IPC namespace'],
    ['UsernsMode', 'privileged', 'host user namespace'],
    ['CgroupnsMode', 'privileged', 'host cgroup namespace'],
  ];
  if (field(host, 'Privileged').some((v) => v === true))
    out.push(privileged('HostConfig.Privileged', 'a privileged container'));
  for (const [key, kind, what] of modes) {
    if (field(host, key).some((v) => String(v).toLowerCase() === 'host'))
      out.push({ option: `HostConfig.${key}`, what, allowedBy: flag(kind), field: kind });
  }
  return out;
}

function privileged(option: string, what: string): Finding {
  return { option, what, allowedBy: flag('privileged'), field: 'privileged' };
}

function pathFindings(host: unknown): Finding[] {
  const out: Finding[] = [];
  for (const bind of items(host, 'Binds')) {
    const source = typeof bind === 'string' ? bind.split(':')[0]! : '';
    if (source.startsWith('/')) out.push(hostPath('HostConfig.Binds', source));
  }
  for (const mount of items(host, 'Mounts')) out.push(...mountFindings(mount));
  if (items(host, 'VolumesFrom').length > 0)
    out.push(privileged('HostConfig.VolumesFrom', "another container's volumes"));
  return out;
}

/** A bind mount, or a volume whose local driver binds a host device or directory. */
function mountFindings(mount: unknown): Finding[] {
  const type = field(mount, 'Type').map((t) => String(t).toLowerCase());
  const sources = field(mount, 'Source').filter((v): v is string => typeof v === 'string');
  const out = type.includes('bind') ? sources.map((src) => hostPath('HostConfig.Mounts', src)) : [];
  const devices = field(mount, 'VolumeOptions')
    .flatMap((o) => field(o, 'DriverConfig'))
    .flatMap((d) => field(d, 'Options'))
    .flatMap((o) => field(o, 'device'));
  for (const device of devices) {
    const text = String(device);
    out.push(
      text.startsWith('/')
        ? hostPath('HostConfig.Mounts volume device', text)
        : privileged(`HostConfig.Mounts volume device ${text}`, 'a volume backed by a host device'),
    );
  }
  return out;
}

function hostPath(option: string, source: string): Finding {
  const wanted = path.posix.normalize(source);
  return {
    option: `${option} ${source}`,
    what: 'a host path',
    field: 'hostPaths',
    allowedBy: (a) => (a.hostPaths ?? []).some((allowed) => within(wanted, allowed)),
  };
}

function within(wanted: string, allowed: string): boolean {
  const root = path.posix.normalize(allowed).replace(/\/+$/, '');
  return root === '' || wanted === root || wanted.startsWith(`${root}/`);
}

function deviceFindings(host: unknown): Finding[] {
  const keys = ['Devices', 'DeviceRequests', 'DeviceCgroupRules'];
  return keys
    .filter((k) => items(host, k).length > 0)
    .map((k) => ({
      option: `HostConfig.${k}`,
      what: 'host devices',
      allowedBy: flag('devices'),
      field: 'devices',
    }));
}

function capabilityFindings(host: unknown): Finding[] {
  return items(host, 'CapAdd').map((raw) => {
    const cap = String(raw).toUpperCase().replace(/^CAP_/, '');
    const option = `HostConfig.CapAdd ${cap}`;
    if (RESTRICTED_CAPABILITIES.has(cap))
      return { option, what: 'a capability', level: 'restricted' };
    if (BASELINE_CAPABILITIES.has(cap)) return { option, what: 'a capability', level: 'baseline' };
    return {
      option,
      what: 'a capability beyond the baseline set',
      field: 'capabilities',
      allowedBy: (a: DeviceHostAccess) => cap !== 'ALL' && (a.capabilities ?? []).includes(cap),
    };
  });
}

function confinementFindings(host: unknown): Finding[] {
  const out: Finding[] = [];
  for (const opt of items(host, 'SecurityOpt')) {
    if (UNCONFINED_SECURITY_OPT.test(String(opt)))
      out.push(privileged(`HostConfig.SecurityOpt ${String(opt)}`, 'confinement switched off'));
  }
  const sysctls = field(host, 'Sysctls').flatMap((m) => Object.keys(asRecord(m)));
  for (const name of sysctls) {
    if (!SAFE_SYSCTLS.has(name))
      out.push(privileged(`HostConfig.Sysctls ${name}`, 'an unsafe sysctl'));
  }
  return out;
}

/** Pod Security restricted requires a non-root user; an unset User runs as the image's, often root. */
function userFindings(options: Record<string, unknown>): Finding[] {
  const users = field(options, 'User').map((u) => String(u).split(':')[0]!);
  if (users.length > 0 && users.every((u) => u !== '' && u !== '0' && u !== 'root')) return [];
  return [{ option: 'User', what: 'root or the image default user', level: 'baseline' }];
}

function asRecord(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : {};
}

function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
