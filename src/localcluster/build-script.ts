import { spawn } from 'node:child_process';
import { ErrorCode, KedgeError } from '../common/errors.js';

/** How often a long cold build says it is still going: often enough that it never looks stuck. */
const BUILD_HEARTBEAT_MS = 30_000;
const SECS_PER_MIN = 60;

/** "45 s", "3 min 05 s". */
export function formatElapsed(ms: number): string {
  const secs = Math.round(ms / 1000);
  if (secs < SECS_PER_MIN) return `${secs} s`;
  const rest = String(secs % SECS_PER_MIN).padStart(2, '0');
  return `${Math.floor(secs / SECS_PER_MIN)} min ${rest} s`;
}

/** The step a " building <what> (<estimate>)" line starts: "<what>". */
export function buildingStep(line: string): string | undefined {
  return / building (.+?)(?: \(.*\))?$/.exec(line)?.[1];
}

/**
 * Runs one of the cached-build scripts (bash, shipped in src/localcluster). Lines on its stderr that
 * start with `[tag]` are progress for people; a line containing " building <what>" starts a long
 * step, during which a heartbeat line naming the step and its elapsed time is added every 30 s.
 * Resolves to the last line of stdout.
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
    let step: { what: string; startedMs: number } | undefined;
    const heartbeat = setInterval(() => {
      if (step)
        onProgress?.(
          `[${tag}] still building ${step.what}: ${formatElapsed(Date.now() - step.startedMs)} so far`,
        );
    }, BUILD_HEARTBEAT_MS);
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString();
      stderrTail = (stderrTail + text).slice(-2000);
      for (const line of text.split('\n')) {
        if (!line.startsWith(`[${tag}]`)) continue;
        const what = buildingStep(line);
        step = what ? { what, startedMs: Date.now() } : undefined;
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
