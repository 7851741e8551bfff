import { setTimeout as sleep } from 'node:timers/promises';
import { TerminalError, WorkQueue } from './workqueue.js';

describe('WorkQueue', () => {
  it('de-duplicates keys that are queued but not yet processed', async () => {
    const seen: string[] = [];
    const queue = new WorkQueue(async (key) => void seen.push(key), { concurrency: 1 });
    queue.add('a');
    queue.add('a');
    queue.add('b');
    const running = queue.run();
    await queue.idle();
    queue.stop();
    await running;
    expect(seen).toEqual(['a', 'b']);
  });

  it('never processes one key concurrently, and re-runs a key added while it ran', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    const queue = new WorkQueue(
      async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        runs++;
        if (runs === 1) queue.add('k');
        await sleep(10);
        active--;
      },
      { concurrency: 4 },
    );
    queue.add('k');
    const running = queue.run();
    await sleep(80);
    await queue.idle();
    queue.stop();
    await running;
    expect(maxActive).toBe(1);
    expect(runs).toBe(2);
  });

  it('retries failures with growing delays and does not retry terminal errors', async () => {
    const times: number[] = [];
    let terminalRuns = 0;
    const queue = new WorkQueue(
      async (key) => {
        if (key === 'terminal') {
          terminalRuns++;
          throw new TerminalError('bad input');
        }
        times.push(performance.now());
        if (times.length < 4) throw new Error('transient');
      },
      { baseRetryDelayMs: 30 },
    );
    queue.add('flaky');
    queue.add('terminal');
    const running = queue.run();
    await sleep(600);
    queue.stop();
    await running;
    expect(times).toHaveLength(4);
    // Timers never fire early (1 ms of rounding aside), so each gap is at least its delay.
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]!).toBeGreaterThanOrEqual(29);
    expect(gaps[1]!).toBeGreaterThanOrEqual(59);
    expect(gaps[2]!).toBeGreaterThanOrEqual(119);
    expect(terminalRuns).toBe(1);
  });

  it('honours requeueAfterMs', async () => {
    let runs = 0;
    const queue = new WorkQueue(async () => {
      runs++;
      return runs < 3 ? { requeueAfterMs: 10 } : {};
    });
    queue.add('x');
    const running = queue.run();
    await sleep(120);
    queue.stop();
    await running;
    expect(runs).toBe(3);
  });
});
