/**
 * The on-disk half of MQTT session state: subscriptions and queued QoS 1 messages of clients that
 * connect with clean:false. better-sqlite3 in WAL mode with `synchronous=FULL`; appends made in the
 * same event-loop turn share one commit, as in the upstream queue (ADR 0004).
 */
import Database from 'better-sqlite3';

/** A queued message as stored. */
export interface StoredMessage {
  clientId: string;
  topic: string;
  payload: Buffer;
  qos: number;
  brokerId: string;
  brokerCounter: number;
  expiresAtMs: number;
}

/** A stored subscription. */
export interface StoredSubscription {
  topic: string;
  qos: number;
}

/** What the journal holds when it is opened. */
export interface JournalContents {
  subscriptions: Map<string, StoredSubscription[]>;
  /** In enqueue order, each with the ticket that removes it. */
  messages: { message: StoredMessage; ticket: JournalTicket }[];
  /** Messages found expired and deleted on open. */
  expired: number;
}

/** One appended message: removable before or after its commit. */
export interface JournalTicket {
  /** Resolves once the message is committed (or was removed before it was). */
  readonly committed: Promise<void>;
}

interface Ticket extends JournalTicket {
  row: number | undefined;
  removed: boolean;
}

interface PendingAppend {
  message: StoredMessage;
  ticket: Ticket;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Row {
  row: number;
  client: string;
  topic: string;
  payload: Buffer;
  qos: number;
  broker_id: string;
  broker_counter: number;
  expires_ms: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS session_messages (
  row INTEGER PRIMARY KEY AUTOINCREMENT,
  client TEXT NOT NULL,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  broker_id TEXT NOT NULL,
  broker_counter INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session_subscriptions (
  client TEXT NOT NULL,
  topic TEXT NOT NULL,
  qos INTEGER NOT NULL,
  PRIMARY KEY (client, topic)
);
`;

export class SessionJournal {
  readonly #db: Database.Database;
  readonly #insert: Database.Statement;
  readonly #delete: Database.Statement;
  readonly #putSub: Database.Statement;
  readonly #removeSub: Database.Statement;
  readonly #clearSubs: Database.Statement;
  #appends: PendingAppend[] = [];
  #removals: number[] = [];
  #flushScheduled = false;
  #closed = false;

  constructor(path: string) {
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = FULL');
    this.#db.exec(SCHEMA);
    const db = this.#db;
    this.#insert = db.prepare(
      'INSERT INTO session_messages (client, topic, payload, qos, broker_id, broker_counter, expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.#delete = db.prepare('DELETE FROM session_messages WHERE row = ?');
    this.#putSub = db.prepare(
      'INSERT OR REPLACE INTO session_subscriptions (client, topic, qos) VALUES (?, ?, ?)',
    );
    this.#removeSub = db.prepare(
      'DELETE FROM session_subscriptions WHERE client = ? AND topic = ?',
    );
    this.#clearSubs = db.prepare('DELETE FROM session_subscriptions WHERE client = ?');
  }

  /** Reads everything back, deleting messages that expired while the hub was down. */
  load(nowMs: number): JournalContents {
    const expired = this.#db
      .prepare('DELETE FROM session_messages WHERE expires_ms <= ?')
      .run(nowMs).changes;
    const subscriptions = new Map<string, StoredSubscription[]>();
    const subRows = this.#db
      .prepare('SELECT client, topic, qos FROM session_subscriptions')
      .all() as { client: string; topic: string; qos: number }[];
    for (const s of subRows) {
      const list = subscriptions.get(s.client) ?? [];
      list.push({ topic: s.topic, qos: s.qos });
      subscriptions.set(s.client, list);
    }
    const rows = this.#db.prepare('SELECT * FROM session_messages ORDER BY row').all() as Row[];
    const messages = rows.map((r) => {
      const ticket: Ticket = { row: r.row, removed: false, committed: Promise.resolve() };
      const message: StoredMessage = {
        clientId: r.client,
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        brokerId: r.broker_id,
        brokerCounter: r.broker_counter,
        expiresAtMs: r.expires_ms,
      };
      return { message, ticket };
    });
    return { subscriptions, messages, expired };
  }

  /** Queues `message` for the next group commit. */
  append(message: StoredMessage): JournalTicket {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const committed = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    const ticket: Ticket = { row: undefined, removed: false, committed };
    this.#appends.push({ message, ticket, resolve, reject });
    this.#schedule();
    return ticket;
  }

  /** Removes an appended message; one not yet committed is never written. */
  remove(handle: JournalTicket): void {
    const ticket = handle as Ticket;
    if (ticket.removed) return;
    ticket.removed = true;
    if (ticket.row === undefined) return;
    this.#removals.push(ticket.row);
    this.#schedule();
  }

  putSubscriptions(clientId: string, subs: StoredSubscription[]): void {
    this.#db.transaction(() => {
      for (const s of subs) this.#putSub.run(clientId, s.topic, s.qos);
    })();
  }

  removeSubscriptions(clientId: string, topics: string[]): void {
    this.#db.transaction(() => {
      for (const t of topics) this.#removeSub.run(clientId, t);
    })();
  }

  clearSubscriptions(clientId: string): void {
    this.#clearSubs.run(clientId);
  }

  /** Commits what is pending and closes the database. */
  close(): void {
    this.#flush();
    this.#closed = true;
    this.#db.close();
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const appends = this.#appends;
    const removals = this.#removals;
    this.#appends = [];
    this.#removals = [];
    if (appends.length === 0 && removals.length === 0) return;
    try {
      this.#db.transaction(() => {
        for (const row of removals) this.#delete.run(row);
        for (const { message: m, ticket } of appends) {
          if (ticket.removed) continue;
          const info = this.#insert.run(
            m.clientId,
            m.topic,
            m.payload,
            m.qos,
            m.brokerId,
            m.brokerCounter,
            m.expiresAtMs,
          );
          ticket.row = Number(info.lastInsertRowid);
        }
      })();
    } catch (err) {
      for (const a of appends) {
        a.ticket.row = undefined;
        a.reject(err as Error);
      }
      return;
    }
    for (const a of appends) a.resolve();
  }
}
