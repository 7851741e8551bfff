import { slowStartBatch } from './slow-start.js';

describe('slowStartBatch', () => {
  it('doubles the number of calls in flight up to the cap', async () => {
    let active = 0;
    const peaks: number[] = [];
    const items = Array.from({ length: 40 }, (_, i) => i);
    const done = await slowStartBatch(
      items,
      async () => {
        active++;
        peaks.push(active);
        await new Promise((r) => setImmediate(r));
        active--;
      },
      8,
    );
    expect(done).toBe(40);
    expect(Math.max(...peaks)).toBe(8);
    expect(peaks.slice(0, 3)).toEqual([1, 1, 2]);
  });

  it('stops after the first batch with a failure and rethrows it', async () => {
    const called: number[] = [];
    const items = Array.from({ length: 100 }, (_, i) => i);
    await expect(
      slowStartBatch(items, async (i) => {
        called.push(i);
        if (i >= 3) throw new Error(`quota exceeded at ${i}`);
      }),
    ).rejects.toThrow('quota exceeded at 3');
    // Batches 1, 2, 4: the third batch (items 3–6) fails and nothing after it runs.
    expect(called).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});
