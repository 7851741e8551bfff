/**
 * Running `kedge up` from tests as a user runs it from a terminal: start it, read what it
 * printed, wait for its telemetry, and stop it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { eventually } from './cluster.js';

const run = promisify(execFile);
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

/** A `kedge up` run as a user starts it from a terminal. */
export interface UpRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

export function startUp(env: NodeJS.ProcessEnv, args: string[] = []): UpRun {
  const child = spawn(process.execPath, [CLI, 'up', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, output: () => output, exited };
}

export function telemetryLines(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('telemetry '));
}

/** The "Try next" commands `kedge up` printed, with the environment its export lines set. */
export function printedSteps(
  output: string,
  base: NodeJS.ProcessEnv,
): { env: NodeJS.ProcessEnv; commands: string[] } {
  const env = { ...base };
  const commands: string[] = [];
  const block = output.slice(output.indexOf('Try next'), output.indexOf('Press Ctrl-C'));
  for (const line of block.split('\n').map((l) => l.trim())) {
    const exported = /^export (\w+)=(.*)$/.exec(line);
    if (exported) env[exported[1]!] = exported[2]!.replace('$PATH', base.PATH ?? '');
    else if (/^(kubectl|kedge|node) /.test(line)) commands.push(line);
  }
  return { env, commands };
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

export async function waitForTelemetry(up: UpRun): Promise<string[]> {
  return eventually(
    'kedge up to print the next steps and filtered telemetry',
    async () => {
      if (up.child.exitCode !== null) throw new Error(`kedge up exited:\n${up.output()}`);
      const lines = telemetryLines(up.output());
      return up.output().includes('Press Ctrl-C') && lines.length >= 2 ? lines : undefined;
    },
    300_000,
    500,
  );
}

/** After a failed check, still let kedge up remove what it started. */
export async function stopAfterFailure(up: UpRun): Promise<void> {
  if (up.child.exitCode !== null || up.child.signalCode !== null) return;
  up.child.kill('SIGINT');
  const timer = setTimeout(() => up.child.kill('SIGKILL'), 120_000);
  await up.exited;
  clearTimeout(timer);
}
