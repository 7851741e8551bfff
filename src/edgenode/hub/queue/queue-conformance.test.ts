// One conformance suite for every DurableQueue backend (as aedes-persistence and MQTT.js stores do).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isKedgeError, ErrorCode } from '../../../common/errors.js';
import type { DurableQueue, NewQueueItem, QueueLimits } from './durable-queue.js';
import { MemoryQueue } from './memory-queue.js';
import { SqliteQueue } from './sqlite-queue.js';

interface Backend {
  name: string;
  durable: boolean;
  open(dir: string, limits: QueueLimits): DurableQueue;
}

const backends: Backend[] = [
  { name: 'memory', durable: false, open: (_dir, limits) => new MemoryQueue(limits) },
  {
    name: 'sqlite',
    durable: true,
    open: (dir, limits) => new SqliteQueue(path.join(dir, 'queue.db'), limits),
  },
];

const UNBOUNDED: QueueLimits = { maxBytes: 1e12, maxMessages: 1e9, dropPolicy: 'drop-oldest' };
const FAR = Date.now() + 3_600_000;

function item(n: number, priority = 0, expiresAtMs = FAR): NewQueueItem {
  return { priority, expiresAtMs, header: `{"n":${n}}`, body: Buffer.from(`body-${n}`) };
}
const ns = (items: { header: string }[]) =>
  items.map((i) => (JSON.parse(i.header) as { n: number }).n);

describe.each(backends)('DurableQueue conformance: $name', (backend) => {
  let dir: string;
  let queue: DurableQueue;
  const open = (limits = UNBOUNDED) => (queue = backend.open(dir, limits));

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kedge-queue-'));
  });
  afterEach(async () => {
    await queue.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers the highest priority first and enqueue order within a priority', async () => {
    open();
    await queue.enqueue([item(1, 2), item(2, 0), item(3, 2), item(4, 0), item(5, 1)]);
    expect(ns(queue.peek(10))).toEqual([2, 4, 5, 1, 3]);
    expect(ns(queue.peek(2))).toEqual([2, 4]);
  });

  it('keeps items until acked (at-least-once) and removes acked ones', async () => {
    open();
    await queue.enqueue([item(1), item(2), item(3)]);
    const first = queue.peek(2);
    expect(ns(queue.peek(2))).toEqual([1, 2]);
    queue.ack(first.map((i) => i.seq));
    expect(ns(queue.peek(10))).toEqual([3]);
    expect(queue.stats().depth).toBe(1);
    expect(queue.stats().bytes).toBe(item(3).header.length + item(3).body.length);
  });

  it('group-commits enqueues made in the same turn', async () => {
    open();
    await Promise.all(Array.from({ length: 500 }, (_, n) => queue.enqueue([item(n)])));
    expect(ns(queue.peek(1000))).toEqual(Array.from({ length: 500 }, (_, n) => n));
  });

  it('skips and counts expired items', async () => {
    open();
    const now = Date.now();
    await queue.enqueue([item(1, 0, now + 10), item(2, 0, now + 10_000), item(3, 1, now + 10)]);
    expect(ns(queue.peek(10, now + 20))).toEqual([2]);
    expect(queue.stats()).toMatchObject({ depth: 1, expiredTotal: 2 });
  });

  it('drops the oldest item of the lowest priority when full (drop-oldest)', async () => {
    open({ maxBytes: 1e9, maxMessages: 3, dropPolicy: 'drop-oldest' });
    await queue.enqueue([item(1, 0), item(2, 5), item(3, 5)]);
    await queue.enqueue([item(4, 0)]);
    expect(ns(queue.peek(10))).toEqual([1, 4, 3]);
    expect(queue.stats().droppedTotal).toBe(1);
  });

  it('refuses new items when full (reject-new)', async () => {
    open({ maxBytes: 1e9, maxMessages: 2, dropPolicy: 'reject-new' });
    await queue.enqueue([item(1), item(2)]);
    const err: unknown = await queue.enqueue([item(3)]).catch((e: unknown) => e);
    expect(isKedgeError(err, ErrorCode.LimitExceeded)).toBe(true);
    expect(ns(queue.peek(10))).toEqual([1, 2]);
  });

  it('bounds by bytes too', async () => {
    const size = item(1).header.length + item(1).body.length;
    open({ maxBytes: size * 2, maxMessages: 100, dropPolicy: 'drop-oldest' });
    await queue.enqueue([item(1), item(2), item(3)]);
    expect(ns(queue.peek(10))).toEqual([2, 3]);
    expect(queue.stats().bytes).toBe(size * 2);
  });

  it('wakes waiters when items arrive', async () => {
    open();
    let woke = false;
    const waiting = queue.waitForItems().then(() => (woke = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(woke).toBe(false);
    await queue.enqueue([item(1)]);
    await waiting;
    expect(woke).toBe(true);
  });

  it('keeps unacked items across a reopen when durable', async () => {
    open();
    await queue.enqueue([item(1), item(2, 3), item(3)]);
    queue.ack([queue.peek(1)[0]!.seq]);
    await queue.close();
    open();
    expect(ns(queue.peek(10))).toEqual(backend.durable ? [3, 2] : []);
    expect(queue.stats().depth).toBe(backend.durable ? 2 : 0);
  });
});
