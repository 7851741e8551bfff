/**
 * Running `kedge up` from tests as a user runs it from a terminal: start it, read what it
 * printed, wait for its telemetry, and stop it.
 */
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { startCommand, type UpRun } from './up-run.js';

export type { UpRun } from './up-run.js';
export { descendants, stopAfterFailure, telemetryLines, waitForTelemetry } from './up-run.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

/** `kedge up` from the built CLI, in a process group of its own as a terminal's job. */
export function startUp(env: NodeJS.ProcessEnv, args: string[] = []): UpRun {
  return startCommand(process.execPath, [CLI, 'up', ...args], env);
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
