/**
 * The durable {@link DurableQueue}: better-sqlite3 in WAL mode with `synchronous=FULL` (every
 * commit is fsynced; better-sqlite3 would otherwise default WAL to NORMAL). Enqueues made in the
 * same event-loop turn share one transaction (group commit), which is what makes "PUBACK after
 * durable" affordable: see docs/adr/0004-puback-after-durable-commit.md.
 */
import Database from 'better-sqlite3';
import { ErrorCode, KedgeError } from '../../../common/errors.js';
import {
  itemBytes,
  type DurableQueue,
  type NewQueueItem,
  type QueueItem,
  type QueueLimits,
  type QueueStats,
} from './durable-queue.js';
import { Waiters } from './waiters.js';

interface Row {
  seq: number;
  priority: number;
  enqueued_ms: number;
  expires_ms: number;
  header: string;
  body: Buffer;
}

interface Pending {
  item: NewQueueItem;
  resolve: () => void;
  reject: (err: Error) => void;
}

type Statements = Record<
  'insert' | 'after' | 'lowestPriority' | 'oldestOf' | 'remove' | 'meta' | 'setMeta' | 'oldest',
  Database.Statement
>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS queue (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  priority INTEGER NOT NULL,
  enqueued_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  size INTEGER NOT NULL,
  header TEXT NOT NULL,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_order ON queue (priority, seq);
CREATE TABLE IF NOT EXISTS queue_meta (id INTEGER PRIMARY KEY CHECK (id = 1), depth INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO queue_meta (id, depth, bytes) VALUES (1, 0, 0);
`;

export class SqliteQueue implements DurableQueue {
  #db: Database.Database;
  #limits: QueueLimits;
  #pending: Pending[] = [];
  #flushScheduled = false;
  #depth: number;
  #bytes: number;
  #expired = 0;
  #dropped = 0;
  #waiters = new Waiters();
  #stmt: Statements;

  /** Opens (or creates) the queue database at `path`. */
  constructor(path: string, limits: QueueLimits) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(SCHEMA);
    this.#limits = limits;
    this.#stmt = this.prepare();
    const meta = this.#stmt.meta.get() as { depth: number; bytes: number };
    this.#depth = meta.depth;
    this.#bytes = meta.bytes;
  }

  private prepare(): Statements {
    const db = this.#db;
    return {
      insert: db.prepare(
        'INSERT INTO queue (priority, enqueued_ms, expires_ms, size, header, body) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      after: db.prepare(
        'SELECT seq, priority, enqueued_ms, expires_ms, header, body FROM queue WHERE (priority, seq) > (?, ?) ORDER BY priority, seq LIMIT ?',
      ),
      lowestPriority: db.prepare('SELECT MAX(priority) AS p FROM queue'),
      oldestOf: db.prepare('SELECT seq, size FROM queue WHERE priority = ? ORDER BY seq LIMIT 1'),
      remove: db.prepare('DELETE FROM queue WHERE seq = ? RETURNING size'),
      meta: db.prepare('SELECT depth, bytes FROM queue_meta WHERE id = 1'),
      setMeta: db.prepare('UPDATE queue_meta SET depth = ?, bytes = ? WHERE id = 1'),
      // Rowid order is enqueue order, so the first row is the oldest without a scan.
      oldest: db.prepare('SELECT enqueued_ms AS t FROM queue ORDER BY seq LIMIT 1'),
    };
  }

  enqueue(items: NewQueueItem[]): Promise<void> {
    const promises = items.map(
      (item) =>
        new Promise<void>((resolve, reject) => this.#pending.push({ item, resolve, reject })),
    );
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
    return Promise.all(promises).then(() => undefined);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length === 0) return;
    const accepted: Pending[] = [];
    const rejected: Pending[] = [];
    try {
      this.#db.transaction(() => {
        const now = Date.now();
        for (const p of batch) {
          const size = itemBytes(p.item);
          if (!this.#makeRoom(size)) {
            rejected.push(p);
            continue;
          }
          const { priority, expiresAtMs, header, body } = p.item;
          this.#stmt.insert.run(priority, now, expiresAtMs, size, header, body);
          this.#depth += 1;
          this.#bytes += size;
          accepted.push(p);
        }
        this.#stmt.setMeta.run(this.#depth, this.#bytes);
      })();
    } catch (cause) {
      this.#reloadMeta();
      const err = new KedgeError(ErrorCode.Internal, 'queue commit failed', { cause });
      for (const p of batch) p.reject(err);
      return;
    }
    for (const p of accepted) p.resolve();
    const full = new KedgeError(ErrorCode.LimitExceeded, 'upstream queue is full');
    for (const p of rejected) p.reject(full);
    if (accepted.length > 0) this.#waiters.wake();
  }

  #reloadMeta(): void {
    const meta = this.#stmt.meta.get() as { depth: number; bytes: number };
    this.#depth = meta.depth;
    this.#bytes = meta.bytes;
  }

  /** Applies the drop policy inside the current transaction; false when the item must be refused. */
  #makeRoom(size: number): boolean {
    while (
      this.#depth + 1 > this.#limits.maxMessages ||
      this.#bytes + size > this.#limits.maxBytes
    ) {
      if (this.#limits.dropPolicy === 'reject-new' || this.#depth === 0) return false;
      const { p } = this.#stmt.lowestPriority.get() as { p: number };
      const victim = this.#stmt.oldestOf.get(p) as { seq: number; size: number };
      this.#stmt.remove.run(victim.seq);
      this.#depth -= 1;
      this.#bytes -= victim.size;
      this.#dropped += 1;
    }
    return true;
  }

  peek(limit: number, nowMs = Date.now()): QueueItem[] {
    const out: QueueItem[] = [];
    const expired: number[] = [];
    let cursor: [number, number] = [-1, -1];
    while (out.length < limit) {
      const rows = this.#stmt.after.all(cursor[0], cursor[1], limit - out.length) as Row[];
      if (rows.length === 0) break;
      for (const r of rows) {
        if (r.expires_ms <= nowMs) expired.push(r.seq);
        else out.push(toItem(r));
      }
      const last = rows[rows.length - 1]!;
      cursor = [last.priority, last.seq];
    }
    if (expired.length > 0) {
      this.#delete(expired);
      this.#expired += expired.length;
    }
    return out;
  }

  ack(seqs: number[]): void {
    this.#delete(seqs);
  }

  #delete(seqs: number[]): void {
    this.#db.transaction(() => {
      for (const seq of seqs) {
        const row = this.#stmt.remove.get(seq) as { size: number } | undefined;
        if (!row) continue;
        this.#depth -= 1;
        this.#bytes -= row.size;
      }
      this.#stmt.setMeta.run(this.#depth, this.#bytes);
    })();
  }

  stats(): QueueStats {
    const row = this.#stmt.oldest.get() as { t: number } | undefined;
    return {
      depth: this.#depth,
      bytes: this.#bytes,
      oldestEnqueuedAtMs: row?.t,
      expiredTotal: this.#expired,
      droppedTotal: this.#dropped,
    };
  }

  waitForItems(signal?: AbortSignal): Promise<void> {
    if (this.#depth > 0) return Promise.resolve();
    return this.#waiters.wait(signal);
  }

  close(): Promise<void> {
    this.#flush();
    this.#waiters.wake();
    this.#db.close();
    return Promise.resolve();
  }
}

function toItem(r: Row): QueueItem {
  return {
    seq: r.seq,
    priority: r.priority,
    enqueuedAtMs: r.enqueued_ms,
    expiresAtMs: r.expires_ms,
    header: r.header,
    body: r.body,
  };
}
