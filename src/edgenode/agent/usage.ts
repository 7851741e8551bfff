/**
 * Resource readings from Linux's /proc and the data directory's file system: the device's CPU
 * time, memory working set, disk and pid headroom, and the CPU and memory of process groups
 * (the process runtime's modules). Parsers are pure; readers return undefined for what a
 * kernel does not offer instead of failing the whole sample.
 */
import { readdir, readFile, statfs } from 'node:fs/promises';
import type { NodeUsage } from '../../common/cloudlink/usage.js';

/**
 * USER_HZ, the unit of the times in /proc/stat and /proc/<pid>/stat. The kernel fixes it at 100
 * on every architecture Linux exposes to user space that way (x86, arm, arm64, riscv…).
 */
export const CLOCK_TICKS_PER_SEC = 100;
const KIB = 1024;

/**
 * CPU seconds the whole machine spent busy, from the `cpu` line of /proc/stat: user, nice,
 * system, irq, softirq and steal (idle and iowait are not work; guest time is already in user).
 */
export function parseProcStatCpuSecs(text: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return undefined;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  if (f.length < 4 || f.some(Number.isNaN)) return undefined;
  const ticks = user! + nice! + system! + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return ticks / CLOCK_TICKS_PER_SEC;
}

/**
 * Memory size and working set from /proc/meminfo. The working set is what the kubelet reports
 * for a node: memory in use minus inactive file pages, which the kernel reclaims first.
 */
export function parseMeminfo(
  text: string,
): { memoryBytes: number; memoryWorkingSetBytes: number } | undefined {
  const kib = (key: string): number | undefined => {
    const m = new RegExp(`^${key.replace(/[()]/g, '\\$&')}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * KIB : undefined;
  };
  const total = kib('MemTotal');
  const free = kib('MemFree');
  if (total === undefined || free === undefined) return undefined;
  const inactiveFile = kib('Inactive(file)') ?? 0;
  return { memoryBytes: total, memoryWorkingSetBytes: Math.max(0, total - free - inactiveFile) };
}

/** Threads alive, the 4th field of /proc/loadavg (`running/total`): what pid_max limits. */
export function parseLoadavgTasks(text: string): number | undefined {
  const total = Number(/^\S+ \S+ \S+ \d+\/(\d+) /.exec(text)?.[1]);
  return Number.isInteger(total) ? total : undefined;
}

/** The parts of /proc/<pid>/stat a usage sample needs. */
export interface ProcStat {
  ppid: number;
  /** Process group id. */
  pgrp: number;
  /** utime + stime + cutime + cstime: its own CPU and that of the children it reaped, ticks. */
  cpuTicks: number;
}

/** Fields of /proc/<pid>/stat, counted after the command name's closing parenthesis. */
const STAT = { ppid: 1, pgrp: 2, utime: 11, stime: 12, cutime: 13, cstime: 14 } as const;

export function parseProcStat(text: string): ProcStat | undefined {
  const f = text
    .slice(text.lastIndexOf(')') + 2)
    .trim()
    .split(' ');
  const n = (i: number): number => Number(f[i]);
  const out = {
    ppid: n(STAT.ppid),
    pgrp: n(STAT.pgrp),
    cpuTicks: n(STAT.utime) + n(STAT.stime) + n(STAT.cutime) + n(STAT.cstime),
  };
  return Object.values(out).some(Number.isNaN) ? undefined : out;
}

/** Resident memory of a process from /proc/<pid>/status (`VmRSS`); 0 for a kernel thread. */
export function parseVmRssBytes(text: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * KIB : 0;
}

/** CPU and memory of one process group. */
export interface GroupUsage {
  cpuSecs: number;
  /** Sum of the members' resident memory, bytes (pages they share count once per member). */
  memoryWorkingSetBytes: number;
}

/**
 * CPU and memory of each process group in `pgids`, from one pass over /proc. A module runs as
 * its own group (the process runtime starts it detached), so its children count too. CPU of
 * members that exited unreaped is lost: the total can step back, as a restarted container's does.
 */
export async function readProcessGroups(
  pgids: ReadonlySet<number>,
  procDir = '/proc',
): Promise<Map<number, GroupUsage>> {
  const out = new Map<number, GroupUsage>();
  if (pgids.size === 0) return out;
  const pids = (await readdir(procDir).catch(() => [])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const stat = parseProcStat(await readFile(`${procDir}/${pid}/stat`, 'utf8').catch(() => ''));
    if (!stat || !pgids.has(stat.pgrp)) continue;
    const status = await readFile(`${procDir}/${pid}/status`, 'utf8').catch(() => '');
    const group = out.get(stat.pgrp) ?? { cpuSecs: 0, memoryWorkingSetBytes: 0 };
    group.cpuSecs += stat.cpuTicks / CLOCK_TICKS_PER_SEC;
    group.memoryWorkingSetBytes += parseVmRssBytes(status);
    out.set(stat.pgrp, group);
  }
  return out;
}

/** The device's own readings: CPU, memory, the data directory's disk, and pids. */
export async function readNodeUsage(dataDir: string, procDir = '/proc'): Promise<NodeUsage> {
  const read = (file: string): Promise<string> =>
    readFile(`${procDir}/${file}`, 'utf8').catch(() => '');
  const [stat, meminfo, loadavg, pidMax, fs] = await Promise.all([
    read('stat'),
    read('meminfo'),
    read('loadavg'),
    read('sys/kernel/pid_max'),
    statfs(dataDir),
  ]);
  const memory = parseMeminfo(meminfo);
  const tasks = parseLoadavgTasks(loadavg);
  const pidsMax = Number(pidMax.trim());
  return {
    atMs: Date.now(),
    cpuSecs: parseProcStatCpuSecs(stat) ?? 0,
    memoryWorkingSetBytes: memory?.memoryWorkingSetBytes ?? 0,
    memoryBytes: memory?.memoryBytes ?? 0,
    diskAvailableBytes: fs.bavail * fs.bsize,
    diskBytes: fs.blocks * fs.bsize,
    // Some file systems (btrfs, overlay on tmpfs) report no fixed inode count.
    ...(fs.files > 0 ? { inodes: fs.files, inodesFree: fs.ffree } : {}),
    ...(tasks !== undefined && pidsMax > 0 ? { pids: tasks, pidsMax } : {}),
  };
}
