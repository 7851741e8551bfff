// Starts a reference server script (bare aedes, bare TLS) as its own process and waits for the
// `<MARKER> <port>` line it prints once listening.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface ReferenceProcess {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** `script` is a file name next to this one (compiled by the bench build). */
export async function startReference(
  script: string,
  marker: string,
  args: string[] = [],
): Promise<ReferenceProcess> {
  const file = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of readline.createInterface({ input: child.stdout })) {
    if (!line.startsWith(`${marker} `)) continue;
    const port = Number(line.slice(marker.length + 1));
    return {
      child,
      port,
      stop: async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      },
    };
  }
  throw new Error(`${script} exited before it was ready`);
}
