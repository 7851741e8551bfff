/** Child processes for benches: node with a raised open-files limit, and its stdout awaited by line. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

/** V8 flags for the gateway process under test (`KEDGE_BENCH_GATEWAY_NODE_ARGS`). */
export function gatewayNodeArgs(): string[] {
  return process.env.KEDGE_BENCH_GATEWAY_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}

/** Resolves with the next line starting with `prefix`, or rejects after `limitMs`. */
export type Lines = (prefix: string, limitMs: number) => Promise<string>;

/**
 * Spawns node with the open-files limit raised to the hard limit: every device is a socket on both
 * sides, and thousands of them pass the usual soft limit of 1,024.
 */
export function spawnNode(
  script: string,
  nodeArgs: string[],
  env: Record<string, string>,
  scriptArgs: string[] = [],
): ChildProcess {
  const command = `ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"`;
  return spawn('sh', ['-c', command, process.execPath, ...nodeArgs, script, ...scriptArgs], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
}

/** Lines a child prints, awaited one prefix at a time; lines nobody awaits yet are kept. */
export function lineReader(child: ChildProcess): Lines {
  const waiting: { prefix: string; resolve: (line: string) => void }[] = [];
  const seen: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const i = waiting.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(line);
    else seen.push(line);
  });
  return (prefix, limitMs) => {
    const early = seen.findIndex((l) => l.startsWith(prefix));
    if (early >= 0) return Promise.resolve(seen.splice(early, 1)[0]!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "${prefix}" within ${limitMs} ms`)),
        limitMs,
      );
      waiting.push({
        prefix,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  };
}

/**
 * Ends a child: closes its stdin (and sends `signal` when given), waits up to `graceMs` for it to
 * exit, then kills it.
 */
export async function stopChild(
  child: ChildProcess,
  options: { graceMs: number; signal?: NodeJS.Signals },
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin?.end();
  if (options.signal) child.kill(options.signal);
  await Promise.race([exited, sleep(options.graceMs)]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
