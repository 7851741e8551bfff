/**
 * The Node's MemoryPressure, DiskPressure and PIDPressure conditions, from a device's readings.
 * The thresholds are the kubelet's hard-eviction defaults, so a kedge node is under pressure
 * when a kubelet on the same machine would say so.
 */
import type { NodeUsage } from '../common/cloudlink/usage.js';

/** `memory.available<100Mi`, the kubelet default. */
export const MEMORY_AVAILABLE_MIN_BYTES = 100 * 1024 * 1024;
/** `nodefs.available<10%`, the kubelet default. */
export const DISK_AVAILABLE_MIN_RATIO = 0.1;
/** `nodefs.inodesFree<5%`, the kubelet default. */
export const INODES_FREE_MIN_RATIO = 0.05;
/**
 * Fewer than 10% of the kernel's pid limit left. The kubelet has no default PID threshold; this
 * is kedge's choice, well before fork() starts failing.
 */
export const PIDS_AVAILABLE_MIN_RATIO = 0.1;
/**
 * A condition leaves True only after this long without a reading over its threshold: the
 * kubelet's `evictionPressureTransitionPeriod` (5 min), so a reading that hovers at a threshold
 * does not flip the condition (and rewrite the Node) on every sample.
 */
export const PRESSURE_TRANSITION_MS = 5 * 60_000;

export type PressureType = 'MemoryPressure' | 'DiskPressure' | 'PIDPressure';
const TYPES: readonly PressureType[] = ['MemoryPressure', 'DiskPressure', 'PIDPressure'];

/** One pressure condition as the device's readings decide it. */
export interface PressureCondition {
  status: 'True' | 'False';
  reason: string;
  message: string;
  /** When a reading last crossed the threshold, epoch ms. */
  lastOverMs?: number;
  /** When the status last changed, epoch ms. */
  sinceMs: number;
}

export type PressureConditions = Record<PressureType, PressureCondition>;

/** What one reading says about one condition: over the threshold or not, and why. */
interface Reading {
  over: boolean;
  message: string;
}

const MIB = 1024 * 1024;

function memory(u: NodeUsage): Reading {
  if (u.memoryBytes === 0) return { over: false, message: 'the device reports no memory reading' };
  const available = Math.max(0, u.memoryBytes - u.memoryWorkingSetBytes);
  return {
    over: available < MEMORY_AVAILABLE_MIN_BYTES,
    message: `${Math.round(available / MIB)}Mi of memory available (threshold ${MEMORY_AVAILABLE_MIN_BYTES / MIB}Mi)`,
  };
}

function disk(u: NodeUsage): Reading {
  const free = u.diskBytes > 0 ? u.diskAvailableBytes / u.diskBytes : 1;
  const inodes = u.inodes && u.inodesFree !== undefined ? u.inodesFree / u.inodes : 1;
  const over = free < DISK_AVAILABLE_MIN_RATIO || inodes < INODES_FREE_MIN_RATIO;
  return {
    over,
    message: `data directory: ${percent(free)} space and ${percent(inodes)} inodes free (thresholds ${percent(DISK_AVAILABLE_MIN_RATIO)}, ${percent(INODES_FREE_MIN_RATIO)})`,
  };
}

function pids(u: NodeUsage): Reading {
  if (u.pids === undefined || !u.pidsMax)
    return { over: false, message: 'the device reports no process count' };
  const left = 1 - u.pids / u.pidsMax;
  return {
    over: left < PIDS_AVAILABLE_MIN_RATIO,
    message: `${u.pids} of ${u.pidsMax} pids in use (threshold ${percent(PIDS_AVAILABLE_MIN_RATIO)} left)`,
  };
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10}%`;
}

const READ: Record<PressureType, (u: NodeUsage) => Reading> = {
  MemoryPressure: memory,
  DiskPressure: disk,
  PIDPressure: pids,
};

const REASONS: Record<PressureType, { over: string; ok: string }> = {
  MemoryPressure: { over: 'DeviceHasInsufficientMemory', ok: 'DeviceHasSufficientMemory' },
  DiskPressure: { over: 'DeviceHasDiskPressure', ok: 'DeviceHasNoDiskPressure' },
  PIDPressure: { over: 'DeviceHasInsufficientPID', ok: 'DeviceHasSufficientPID' },
};

/** The conditions after a new reading, given the previous ones (for the transition period). */
export function nextPressure(
  previous: PressureConditions | undefined,
  usage: NodeUsage,
  nowMs: number,
): PressureConditions {
  const next = {} as PressureConditions;
  for (const type of TYPES) next[type] = nextCondition(type, previous?.[type], usage, nowMs);
  return next;
}

function nextCondition(
  type: PressureType,
  prior: PressureCondition | undefined,
  usage: NodeUsage,
  nowMs: number,
): PressureCondition {
  const reading = READ[type](usage);
  const lastOverMs = reading.over ? nowMs : prior?.lastOverMs;
  const holding =
    !reading.over && lastOverMs !== undefined && nowMs - lastOverMs < PRESSURE_TRANSITION_MS;
  const over = reading.over || holding;
  const status = over ? 'True' : 'False';
  return {
    status,
    sinceMs: prior?.status === status ? prior.sinceMs : nowMs,
    reason: over ? REASONS[type].over : REASONS[type].ok,
    message: holding ? `${reading.message}; recovering since a reading over it` : reading.message,
    ...(lastOverMs !== undefined ? { lastOverMs } : {}),
  };
}

/** Whether any condition's status differs between the two (a Node status write is due). */
export function pressureChanged(
  a: PressureConditions | undefined,
  b: PressureConditions | undefined,
): boolean {
  return TYPES.some((t) => a?.[t].status !== b?.[t].status);
}

/** Each pressure condition's status, reason and message, or Unknown without fresh readings. */
export function pressureConditions(
  pressure: PressureConditions | undefined,
  connected: boolean,
): { type: PressureType; status: string; reason: string; message: string; sinceMs?: number }[] {
  return TYPES.map((type) => {
    if (!connected)
      return {
        type,
        status: 'Unknown',
        reason: 'DeviceDisconnected',
        message: 'no readings while the device is disconnected',
      };
    const c = pressure?.[type];
    if (!c)
      return {
        type,
        status: 'Unknown',
        reason: 'DeviceUsageNotReported',
        message: 'the device has not reported resource usage yet',
      };
    return { type, status: c.status, reason: c.reason, message: c.message, sinceMs: c.sinceMs };
  });
}
