import { execFile, spawn } from 'node:child_process';
import { existsSync, openSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);
const DOCKERD_START_TIMEOUT_MS = 60_000;

/** Runs a docker CLI command and returns stdout; rejects with stderr on failure. */
export async function docker(args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run('docker', args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  }
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, (err, stdout, stderr) =>
      err
        ? reject(new Error(`docker ${args[0]}: ${stderr || err.message}`))
        : resolve(stdout.trim()),
    );
    child.stdin?.end(input);
  });
}

/** True when a Docker engine answers. */
export async function dockerResponds(): Promise<boolean> {
  return run('docker', ['version', '--format', '{{.Server.Version}}']).then(
    () => true,
    () => false,
  );
}

/**
 * Makes sure a Docker engine answers: starts dockerd when it is installed but not running.
 * On Debian the engine comes from the docker.io package.
 */
export async function ensureDocker(artifactsDir: string): Promise<void> {
  if (await dockerResponds()) return;
  if (!existsSync('/usr/sbin/dockerd') && !existsSync('/usr/bin/dockerd')) {
    throw new Error('dockerd is not installed (on Debian: apt-get install docker.io)');
  }
  mkdirSync(artifactsDir, { recursive: true });
  const fd = openSync(path.join(artifactsDir, 'dockerd.log'), 'a');
  const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + DOCKERD_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await dockerResponds()) return;
    await sleep(500);
  }
  throw new Error(`dockerd did not start; see ${artifactsDir}/dockerd.log`);
}

/**
 * The host's address on Docker's default bridge (`docker0`). Local clusters publish it as the
 * kubelet API address: the API server refuses to proxy `nodes/proxy` calls to loopback addresses.
 */
export async function dockerBridgeAddress(): Promise<string | undefined> {
  const out = await run('ip', ['-4', '-o', 'addr', 'show', 'docker0']).then(
    (r) => r.stdout,
    () => '',
  );
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)?.[1];
}
