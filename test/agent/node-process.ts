// Runs the real `kedge node` CLI (from dist/) as a child process for the agent's tests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import type { AgentSnapshot } from '../../src/edgenode/agent/index.js';
import { waitFor } from './helpers.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

export interface NodeProcess {
  child: ChildProcess;
  /** Every pino line written so far. */
  lines: Record<string, unknown>[];
  /** Resolves with the /metrics base URL once the node logged that it started. */
  started: () => Promise<string>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** GET /status as JSON. */
  status: () => Promise<AgentSnapshot>;
}

/** Starts `kedge node <args>`; `wrap` prefixes the command (e.g. `unshare -n`). */
export function startNode(args: string[], wrap: string[] = []): NodeProcess {
  const command = [...wrap, process.execPath, CLI, 'node', ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let buffered = '';
  child.stderr.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        lines.push({ msg: part });
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let url = '';
  const started = async (): Promise<string> => {
    const line = await waitFor('kedge node started', () =>
      lines.find((l) => l.msg === 'kedge node started'),
    );
    url = typeof line.metrics === 'string' ? line.metrics : '';
    return url;
  };
  const status = async (): Promise<AgentSnapshot> =>
    (await (await fetch(`${url}/status`)).json()) as AgentSnapshot;
  return { child, lines, started, exited, status };
}
