/**
 * `kubectl exec` on the process runtime: the command runs in the module's environment (its
 * env, working directory and user), in a process group of its own so that ending the session
 * ends whatever it started. A TTY comes from util-linux `script`, which runs the command on a
 * pseudo-terminal; a resize sets that terminal's size with `stty`, and the kernel sends the
 * command SIGWINCH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode } from '../../common/errors.js';
import type { ProcessUser } from './process-user.js';
import { RuntimeError, type ExecRequest, type ModuleSession } from './runtime.js';

/** Where a module's command runs: what the process runtime recorded when it created it. */
export interface ProcessContext {
  env: string[];
  cwd: string;
  user: ProcessUser | undefined;
}

/** `script` from util-linux gives a command a pseudo-terminal without native code in kedge. */
const SCRIPT = 'script';
/** How long a resize looks for the terminal of a command that is only starting. */
const TERMINAL_WAIT_MS = 2_000;
const TERMINAL_POLL_MS = 50;
/** What a TTY session's terminal says it is, as Docker sets for `exec -t`. */
const TTY_TERM = 'xterm';

/** Quotes an argument for `sh -c`. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

function environment(context: ProcessContext, tty: boolean): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    context.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  return tty ? { ...env, TERM: env.TERM ?? TTY_TERM, SHELL: '/bin/sh' } : env;
}

/** Runs `request.command` in the module's environment. */
export async function processExec(
  context: ProcessContext,
  request: ExecRequest,
): Promise<ModuleSession> {
  const [file, args] = request.tty
    ? [SCRIPT, ['-q', '-e', '-f', '-c', request.command.map(shellQuote).join(' '), '/dev/null']]
    : [request.command[0]!, request.command.slice(1)];
  const child = spawn(file, args, {
    cwd: context.cwd,
    env: environment(context, request.tty),
    detached: true,
    stdio: [
      request.stdin || request.tty ? 'pipe' : 'ignore',
      'pipe',
      request.tty ? 'ignore' : 'pipe',
    ],
    ...(context.user ?? {}),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new RuntimeError(
          'StartError',
          (err.code === 'ENOENT' || err.code === 'EACCES') && !file.includes('/')
            ? `exec: ${JSON.stringify(file)}: executable file not found in $PATH`
            : `exec: ${err.message}`,
          { terminal: true, cause: err, code: ErrorCode.NotFound },
        ),
      ),
    );
  });
  const done = new Promise<number | undefined>((resolve) =>
    child.once('close', (code, signal) =>
      resolve(code ?? (signal ? 128 + signalNumber(signal) : undefined)),
    ),
  );
  // Without -i a TTY session still needs an open input for `script`; it stays empty.
  const stdin = request.stdin ? child.stdin! : undefined;
  return {
    ...(stdin ? { stdin } : {}),
    stdout: child.stdout!,
    ...(child.stderr ? { stderr: child.stderr } : {}),
    ...(request.tty ? { resize: (w: number, h: number) => resizeTerminal(child, w, h) } : {}),
    done,
    kill: () => killGroup(child),
  };
}

function killGroup(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
};

function signalNumber(signal: NodeJS.Signals): number {
  return SIGNALS[signal] ?? 0;
}

/**
 * Sets the size of the terminal `script` made: the terminal of its child, found through /proc.
 * The first size comes as the session opens, often before `script` started its child, so the
 * terminal is looked for a little while. Best effort: a command that exited has none left.
 */
async function resizeTerminal(child: ChildProcess, width: number, height: number): Promise<void> {
  const deadline = Date.now() + TERMINAL_WAIT_MS;
  let terminal = await terminalOf(child);
  while (!terminal && Date.now() < deadline && child.exitCode === null) {
    await sleep(TERMINAL_POLL_MS);
    terminal = await terminalOf(child);
  }
  if (!terminal) return;
  await new Promise<void>((resolve) => {
    const stty = spawn('stty', ['-F', terminal, 'rows', String(height), 'cols', String(width)], {
      stdio: 'ignore',
    });
    stty.once('error', () => resolve());
    stty.once('close', () => resolve());
  });
}

/** The pseudo-terminal of `script`'s child, once it has one. */
async function terminalOf(child: ChildProcess): Promise<string | undefined> {
  if (!child.pid) return undefined;
  const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(
    () => '',
  );
  const command = children.trim().split(/\s+/)[0];
  if (!command) return undefined;
  const terminal = await readlink(`/proc/${command}/fd/0`).catch(() => '');
  return terminal.startsWith('/dev/pts/') ? terminal : undefined;
}
