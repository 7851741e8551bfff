import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  parseLoadavgTasks,
  parseMeminfo,
  parseProcStat,
  parseProcStatCpuSecs,
  parseVmRssBytes,
  readNodeUsage,
  readProcessGroups,
} from './usage.js';

/** A /proc/<pid>/stat line: parent 1, the given group and utime, stime, cutime, cstime. */
const stat = (pid: number, comm: string, pgrp: number, ticks: number[]): string =>
  `${pid} (${comm}) S 1 ${pgrp} ${pgrp} 0 -1 4194560 100 0 0 0 ${ticks.join(' ')} 20 0 1 0 5000 1000 200\n`;

describe('/proc parsers', () => {
  it('counts busy CPU time of /proc/stat in seconds, without idle and iowait', () => {
    const text = 'cpu  1000 20 300 99999 888 5 7 3 0 0\ncpu0 500 10 150 50000 400 2 3 1 0 0\n';
    expect(parseProcStatCpuSecs(text)).toBeCloseTo((1000 + 20 + 300 + 5 + 7 + 3) / 100);
    expect(parseProcStatCpuSecs('intr 1 2 3\n')).toBeUndefined();
  });

  it('takes the working set as total minus free minus inactive file pages', () => {
    const text =
      'MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    700 kB\nInactive(file):  300 kB\n';
    expect(parseMeminfo(text)).toEqual({
      memoryBytes: 1000 * 1024,
      memoryWorkingSetBytes: 500 * 1024,
    });
    expect(parseMeminfo('nothing here')).toBeUndefined();
  });

  it('reads the task count of /proc/loadavg', () => {
    expect(parseLoadavgTasks('0.10 0.20 0.30 2/345 6789\n')).toBe(345);
    expect(parseLoadavgTasks('garbage')).toBeUndefined();
  });

  it('reads a process stat line whose command holds spaces and parentheses', () => {
    const text = stat(42, 'my (odd) cmd', 42, [10, 5, 3, 2]);
    expect(parseProcStat(text)).toEqual({ ppid: 1, pgrp: 42, cpuTicks: 20 });
    expect(parseProcStat('42 (x) S')).toBeUndefined();
  });

  it('reads VmRSS, and 0 for a kernel thread without one', () => {
    expect(parseVmRssBytes('Name:\tsh\nVmRSS:\t    1234 kB\n')).toBe(1234 * 1024);
    expect(parseVmRssBytes('Name:\tkthreadd\n')).toBe(0);
  });
});

describe('readProcessGroups', () => {
  it('sums CPU and resident memory over every member of each wanted group', async () => {
    const proc = await mkdtemp(path.join(tmpdir(), 'kedge-proc-'));
    const add = async (
      pid: number,
      pgrp: number,
      ticks: number[],
      rssKb: number,
    ): Promise<void> => {
      await mkdir(path.join(proc, String(pid)));
      await writeFile(path.join(proc, String(pid), 'stat'), stat(pid, 'p', pgrp, ticks));
      await writeFile(path.join(proc, String(pid), 'status'), `VmRSS:\t${rssKb} kB\n`);
    };
    await add(100, 100, [100, 50, 0, 0], 1000);
    await add(101, 100, [200, 0, 40, 10], 3000);
    await add(200, 200, [1, 1, 0, 0], 10);
    await add(300, 300, [999, 0, 0, 0], 99);
    await mkdir(path.join(proc, 'self'));
    const groups = await readProcessGroups(new Set([100, 200, 400]), proc);
    expect(groups.get(100)).toEqual({ cpuSecs: 4, memoryWorkingSetBytes: 4000 * 1024 });
    expect(groups.get(200)).toEqual({ cpuSecs: 0.02, memoryWorkingSetBytes: 10 * 1024 });
    expect(groups.has(300)).toBe(false);
    expect(groups.has(400)).toBe(false);
  });
});

describe('readNodeUsage on this machine', () => {
  it('reads CPU, memory, the data directory and pids', async () => {
    const usage = await readNodeUsage(tmpdir());
    expect(usage.cpuSecs).toBeGreaterThan(0);
    expect(usage.memoryBytes).toBeGreaterThan(usage.memoryWorkingSetBytes);
    expect(usage.memoryWorkingSetBytes).toBeGreaterThan(0);
    expect(usage.diskBytes).toBeGreaterThanOrEqual(usage.diskAvailableBytes);
    expect(usage.pids).toBeGreaterThan(0);
    expect(usage.pidsMax).toBeGreaterThan(usage.pids!);
  });
});
