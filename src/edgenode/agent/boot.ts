/**
 * Telling a boot (or an engine restart) apart from a module that chose to exit. After a power
 * cycle the engine has stopped every module, and a module that exited 0 on SIGTERM looks like one
 * that finished on its own; the agent compares an epoch string with the one it saved last time.
 */
import { readFile } from 'node:fs/promises';

/** Changes at every boot (Linux). */
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
/** Field 22 of /proc/<pid>/stat (index 19 after the command name) is the start time. */
const STAT_STARTTIME_FIELD = 19;

/** The /proc start time of `pid` (clock ticks since boot); undefined when gone or a zombie. */
export async function procStartOf(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined;
    return fields[STAT_STARTTIME_FIELD];
  } catch {
    return undefined;
  }
}

/** The kernel's boot id, or `unknown` where there is none. */
export async function kernelBootId(): Promise<string> {
  return (await readFile(BOOT_ID_FILE, 'utf8').catch(() => 'unknown')).trim();
}

/** The start time of the process whose pid `pidFile` holds; undefined when unreadable. */
export async function pidFileStart(pidFile: string): Promise<string | undefined> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? procStartOf(pid) : undefined;
}
