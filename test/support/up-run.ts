/**
 * Helpers for tests that run `kedge up` the way a user does from a terminal: start it, read its
 * output, press Ctrl-C, and check that nothing it started is left (processes, listening ports).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eventually } from './cluster.js';

const run = promisify(execFile);

/** How long `kedge up` may take to stop everything after Ctrl-C on a loaded 2-core machine. */
const STOP_TIMEOUT_MS = 150_000;
/** How long the first telemetry may take: a warm start is well under a minute, CI is loaded. */
const TELEMETRY_TIMEOUT_MS = 300_000;

/** A `kedge up` run as a user starts it from a terminal. */
export interface UpRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Ctrl-C: SIGINT to the whole foreground process group, as a terminal sends it. */
  interrupt(): void;
}

/**
 * Starts `command args` in a process group of its own (a terminal's foreground job), with stdout
 * and stderr collected together.
 */
export function startCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): UpRun {
  const child = spawn(command, args, {
    env,
    cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const interrupt = (): void => {
    try {
      process.kill(-child.pid!, 'SIGINT');
    } catch {
      // The group is gone already.
    }
  };
  return { child, output: () => output, exited, interrupt };
}

export function telemetryLines(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('telemetry '));
}

export async function waitForTelemetry(up: UpRun): Promise<string[]> {
  return eventually(
    'kedge up to print the next steps and filtered telemetry',
    async () => {
      if (up.child.exitCode !== null) throw new Error(`kedge up exited:\n${up.output()}`);
      const lines = telemetryLines(up.output());
      return up.output().includes('Press Ctrl-C') && lines.length >= 2 ? lines : undefined;
    },
    TELEMETRY_TIMEOUT_MS,
    500,
  );
}

/** The filter forwards only temperature > 25, and the route sends its output upstream. */
export function expectFiltered(lines: string[]): void {
  for (const line of lines) {
    expect(line).toContain('default/demo/filter ');
    const body = JSON.parse(line.slice(line.indexOf('{'))) as { temperature: number };
    expect(body.temperature).toBeGreaterThan(25);
  }
}

/** Every process below `pid`, recursively. */
export async function descendants(pid: number): Promise<number[]> {
  const { stdout } = await run('ps', ['-e', '-o', 'pid=,ppid=']);
  const children = new Map<number, number[]>();
  for (const line of stdout.trim().split('\n')) {
    const [child, parent] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(parent, [...(children.get(parent) ?? []), child]);
  }
  const all: number[] = [];
  const visit = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      all.push(c);
      visit(c);
    }
  };
  visit(pid);
  return all;
}

/** Running, not merely a zombie waiting for init to reap it. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export function commandOf(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return String(pid);
  }
}

/** TCP state LISTEN in /proc/net/tcp{,6}. */
const TCP_LISTEN = '0A';

/** A file's text, or '' when it cannot be read (a process or table that is gone). */
function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A directory's entries, or none when it cannot be read. */
function entriesOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A symlink's target, or '' when it is gone. */
function linkOrEmpty(file: string): string {
  try {
    return readlinkSync(file);
  } catch {
    return '';
  }
}

/** Listening TCP sockets on this machine: socket inode → port. */
function listeningSockets(): Map<string, number> {
  const sockets = new Map<string, number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = readOrEmpty(table);
    for (const line of text.trim().split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== TCP_LISTEN) continue;
      sockets.set(fields[9]!, parseInt(fields[1]!.split(':')[1]!, 16));
    }
  }
  return sockets;
}

/** The TCP ports that the processes `pids` listen on. */
export function listeningPorts(pids: number[]): number[] {
  const sockets = listeningSockets();
  const ports = new Set<number>();
  for (const pid of pids) {
    for (const fd of entriesOrNone(`/proc/${pid}/fd`)) {
      const target = linkOrEmpty(`/proc/${pid}/fd/${fd}`);
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      const port = inode ? sockets.get(inode) : undefined;
      if (port !== undefined) ports.add(port);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Which of `ports` something on this machine still listens on. */
export function stillListening(ports: number[]): number[] {
  const open = new Set(listeningSockets().values());
  return ports.filter((p) => open.has(p));
}

/**
 * Presses Ctrl-C and checks that `kedge up` exits 0 saying it removed everything, and that every
 * process in `before` has exited.
 */
export async function interruptAndCheckClean(up: UpRun, before: number[]): Promise<void> {
  up.interrupt();
  const code = await Promise.race([
    up.exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS)),
  ]);
  // kedge up itself exits 0. Under npx, the shell npm runs it with also got the Ctrl-C, so once
  // kedge up has finished, npm passes that on and ends by SIGINT, as after any Ctrl-C.
  const ended = code === 0 || up.child.signalCode === 'SIGINT';
  if (!ended) throw new Error(`kedge up ended with ${code} after Ctrl-C:\n${up.output()}`);
  expect(up.output()).toContain('everything it started is gone');
  // Signalled processes may take a moment to exit.
  await eventually('every process kedge up started to exit', async () =>
    before.some(alive) ? undefined : true,
  ).catch(() => undefined);
  expect(before.filter(alive).map(commandOf)).toEqual([]);
}

/** After a failed check, still let kedge up remove what it started. */
export async function stopAfterFailure(up: UpRun): Promise<void> {
  if (up.child.exitCode !== null || up.child.signalCode !== null) return;
  up.interrupt();
  const timer = setTimeout(() => up.child.kill('SIGKILL'), 120_000);
  await up.exited;
  clearTimeout(timer);
}

/** The directories {@link pathWithout} made; {@link removePathShadows} deletes them. */
const shadows: string[] = [];

/** Deletes the directories {@link pathWithout} made. */
export async function removePathShadows(): Promise<void> {
  for (const dir of shadows.splice(0)) await rm(dir, { recursive: true, force: true });
}

/**
 * `$PATH` without the commands `hidden`, as on a machine that lacks them. A directory that holds
 * one of them is replaced by a directory of links to everything else in it, so the other commands
 * there (node, npm, sh, git) stay reachable.
 */
export async function pathWithout(hidden: string[], pathValue: string): Promise<string> {
  const dirs: string[] = [];
  for (const dir of pathValue.split(path.delimiter).filter(Boolean)) {
    const entries = await readdir(dir).catch(() => [] as string[]);
    if (!entries.some((e) => hidden.includes(e))) {
      dirs.push(dir);
      continue;
    }
    const shadow = await mkdtemp(path.join(tmpdir(), 'kedge-path-'));
    shadows.push(shadow);
    for (const entry of entries.filter((e) => !hidden.includes(e)))
      await symlink(path.join(dir, entry), path.join(shadow, entry));
    dirs.push(shadow);
  }
  return dirs.join(path.delimiter);
}
