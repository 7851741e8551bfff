import { spawn } from 'node:child_process';
import { ErrorCode, KedgeError } from '../common/errors.js';

/** How often a long cold build says it is still going. */
const BUILD_HEARTBEAT_MS = 60_000;

/**
 * Runs one of the cached-build scripts (bash, shipped in src/localcluster). Lines on its stderr that
 * start with `[tag]` are progress for people; a line containing " building " starts a long step,
 * during which a heartbeat line is added every minute. Resolves to the last line of stdout.
 */
export function runBuildScript(
  script: string,
  tag: string,
  onProgress?: (line: string) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const started = Date.now();
    let building = false;
    const heartbeat = setInterval(() => {
      const minutes = Math.round((Date.now() - started) / 60_000);
      if (building) onProgress?.(`[${tag}] still building (${minutes} min so far)`);
    }, BUILD_HEARTBEAT_MS);
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString();
      stderrTail = (stderrTail + text).slice(-2000);
      for (const line of text.split('\n')) {
        if (!line.startsWith(`[${tag}]`)) continue;
        building = line.includes(' building ');
        onProgress?.(line);
      }
    });
    child.once('exit', () => clearInterval(heartbeat));
    child.on('error', (cause) =>
      reject(new KedgeError(ErrorCode.Unavailable, `cannot run the ${tag} build`, { cause })),
    );
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout.trim().split('\n').pop()!);
      else
        reject(
          new KedgeError(
            ErrorCode.Unavailable,
            `${tag} build failed: ${stderrTail.trim().split('\n').pop()}`,
          ),
        );
    });
  });
}
