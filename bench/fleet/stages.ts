/**
 * Named benchmark stages with their own time limits, so a run that stalls says where: each stage
 * prints when it starts and ends, polls print progress, and a stage that runs out of time fails
 * with its name and the last progress it saw.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** How often a polling stage prints its progress while waiting. */
const PROGRESS_EVERY_MS = 5_000;

/** Prints a timestamped line, prefixed with the run it belongs to. */
export function say(run: string, line: string): void {
  const at = new Date().toISOString().slice(11, 23);
  console.log(`[${at}] ${run}: ${line}`);
}

/** Set when a stage has run out of time, so its polling loop stops. */
export interface StageSignal {
  stopped: boolean;
}

/** Runs `work` as stage `name`; rejects naming the stage when it takes longer than `limitMs`. */
export async function stage<T>(
  run: string,
  name: string,
  limitMs: number,
  work: (signal: StageSignal) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  const signal: StageSignal = { stopped: false };
  say(run, `stage "${name}" started (limit ${Math.round(limitMs / 1000)} s)`);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      signal.stopped = true;
      reject(new Error(`stage "${name}" did not finish within ${limitMs / 1000} s`));
    }, limitMs);
  });
  try {
    const value = await Promise.race([work(signal), expired]);
    say(run, `stage "${name}" done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return value;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * What one poll of a waiting stage saw: done, and a progress line for people (a function when
 * it costs requests, so it only runs when printed).
 */
export interface Poll {
  done: boolean;
  progress: string | (() => Promise<string>);
}

/**
 * Polls `check` until it reports done, printing its progress every few seconds; meant to run
 * inside {@link stage}, which bounds it. A failing check counts as not done and is shown.
 */
export async function pollUntil(
  run: string,
  check: () => Promise<Poll>,
  intervalMs: number,
  signal: StageSignal,
): Promise<void> {
  let lastPrint = Date.now();
  while (!signal.stopped) {
    const poll = await check().catch((err: unknown): Poll => ({
      done: false,
      progress: `check failed: ${String(err)}`,
    }));
    if (poll.done) return;
    if (Date.now() - lastPrint >= PROGRESS_EVERY_MS) {
      const progress = typeof poll.progress === 'string' ? poll.progress : await poll.progress();
      say(run, `  … ${progress}`);
      lastPrint = Date.now();
    }
    await sleep(intervalMs);
  }
}
