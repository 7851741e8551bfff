import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** Grace given to a component on SIGTERM before SIGKILL; etcd and the apiserver stop in ~1 s. */
const STOP_GRACE_MS = 10_000;

/** A child process whose output goes to a log file. */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `command` with its stdout and stderr appended to `logFile`. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  logFile: string,
): ManagedProcess {
  const fd = openSync(logFile, 'a');
  // A process group of its own: a terminal Ctrl-C reaches the owner, which stops components in order.
  const child = spawn(command, args, {
    stdio: ['ignore', fd, fd],
    env: { ...process.env },
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  return { name, child, logFile, exited };
}

/** True while the process has not exited. */
export function isRunning(proc: ManagedProcess): boolean {
  return (
    proc.child.exitCode === null && proc.child.signalCode === null && proc.child.pid !== undefined
  );
}

/** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. */
export async function stopProcess(proc: ManagedProcess): Promise<void> {
  if (!isRunning(proc)) return;
  proc.child.kill('SIGTERM');
  // Unreferenced: a pending grace timer must not keep the owner alive after the process is gone.
  const timeout = sleep(STOP_GRACE_MS, undefined, { ref: false }).then(() => 'timeout' as const);
  if ((await Promise.race([proc.exited, timeout])) === 'timeout') {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

/** True while a process with this pid exists (signal 0 probes without signalling). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
