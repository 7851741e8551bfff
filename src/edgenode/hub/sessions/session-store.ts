/**
 * aedes persistence for the hub. The Azure IoT SDKs connect with clean:false, so a module's
 * subscriptions and the QoS 1 messages routed to it while it is stopped are session state: here
 * they are bounded per client, expire with the store-and-forward TTL and, with a journal, survive
 * a hub restart. Retained messages, wills and inbound QoS 2 state stay in aedes' memory store.
 */
import type { AedesPublishPacket, Client, Subscription } from 'aedes';
import MemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { Readable } from 'node:stream';
import type { JournalTicket, SessionJournal, StoredMessage } from './session-journal.js';

/** Why queued messages were discarded. */
export type SessionDropReason = 'queue_full' | 'ttl_expiry';

export interface SessionStoreOptions {
  /** Where sessions are kept across restarts; without one they live in memory only. */
  journal: SessionJournal | undefined;
  /** Messages kept for one client; the oldest beyond it is dropped. */
  maxMessages: number;
  /** Payload and topic bytes kept for one client; the oldest beyond it is dropped. */
  maxBytes: number;
  /** Lifetime of a queued message (the store-and-forward TTL), read per message. */
  ttlSecs: () => number;
  onDropped: (reason: SessionDropReason, count: number) => void;
}

interface Entry {
  packet: AedesPublishPacket;
  bytes: number;
  expiresAtMs: number;
  ticket: JournalTicket | undefined;
}

interface ClientQueue {
  entries: Entry[];
  bytes: number;
}

type ClientRef = Pick<Client, 'id'>;

function packetBytes(p: AedesPublishPacket): number {
  return p.topic.length + (p.payload as Buffer).length;
}

function toPacket(m: StoredMessage): AedesPublishPacket {
  return {
    cmd: 'publish',
    topic: m.topic,
    payload: m.payload,
    qos: m.qos as 0 | 1 | 2,
    retain: false,
    dup: false,
    brokerId: m.brokerId,
    brokerCounter: m.brokerCounter,
  };
}

export class SessionStore extends MemoryPersistence {
  readonly #o: SessionStoreOptions;
  readonly #queues = new Map<string, ClientQueue>();
  #clients: Record<string, unknown> = {};

  constructor(options: SessionStoreOptions) {
    super();
    this.#o = options;
  }

  /** Messages and bytes queued for all clients. */
  get stats(): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const q of this.#queues.values()) {
      messages += q.entries.length;
      bytes += q.bytes;
    }
    return { messages, bytes };
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    this.#clients = (broker as { clients?: Record<string, unknown> }).clients ?? {};
    const journal = this.#o.journal;
    if (!journal) return;
    const contents = journal.load(Date.now());
    if (contents.expired > 0) this.#o.onDropped('ttl_expiry', contents.expired);
    for (const [clientId, subs] of contents.subscriptions) {
      await super.addSubscriptions({ id: clientId } as Client, subs as Subscription[]);
    }
    for (const { message, ticket } of contents.messages) {
      const packet = toPacket(message);
      this.#push(message.clientId, {
        packet,
        bytes: packetBytes(packet),
        expiresAtMs: message.expiresAtMs,
        ticket,
      });
    }
  }

  override async addSubscriptions(client: Client, subs: Subscription[]): Promise<void> {
    await super.addSubscriptions(client, subs);
    this.#o.journal?.putSubscriptions(
      client.id,
      subs.map((s) => ({ topic: s.topic, qos: s.qos })),
    );
  }

  override async removeSubscriptions(client: Client, topics: string[]): Promise<void> {
    await super.removeSubscriptions(client, topics);
    this.#o.journal?.removeSubscriptions(client.id, topics);
  }

  override async cleanSubscriptions(client: Client): Promise<void> {
    await super.cleanSubscriptions(client);
    this.#o.journal?.clearSubscriptions(client.id);
  }

  override outgoingEnqueue(sub: { clientId: string }, packet: AedesPublishPacket): Promise<void> {
    return this.#enqueue(sub.clientId, packet);
  }

  override async outgoingEnqueueCombi(
    subs: { clientId: string }[],
    packet: AedesPublishPacket,
  ): Promise<void> {
    await Promise.all(subs.map((s) => this.#enqueue(s.clientId, packet)));
  }

  override outgoingUpdate(client: ClientRef, packet: AedesPublishPacket): Promise<void> {
    const entries = this.#queues.get(client.id)?.entries ?? [];
    for (const e of entries) {
      const p = e.packet;
      if (p.brokerId === packet.brokerId && p.brokerCounter === packet.brokerCounter) {
        p.messageId = packet.messageId;
        return Promise.resolve();
      }
    }
    // Dropped (bound or TTL) while on its way out: it is delivered, just no longer kept.
    return Promise.resolve();
  }

  override outgoingClearMessageId(
    client: ClientRef,
    packet: AedesPublishPacket,
  ): Promise<AedesPublishPacket> {
    const q = this.#queues.get(client.id);
    const i = q?.entries.findIndex((e) => e.packet.messageId === packet.messageId) ?? -1;
    if (!q || i < 0) return Promise.resolve(undefined as unknown as AedesPublishPacket);
    const [entry] = q.entries.splice(i, 1);
    this.#forget(q, entry!);
    return Promise.resolve(entry!.packet);
  }

  override outgoingStream(client: ClientRef): Readable {
    const q = this.#queues.get(client.id);
    if (!q) return Readable.from([]);
    this.#expire(q, Date.now());
    return Readable.from(q.entries.map((e) => e.packet));
  }

  /**
   * Journals what is queued, unjournaled, for a client that has just disconnected: from here on
   * it waits for a stopped module.
   */
  keep(clientId: string): void {
    const journal = this.#o.journal;
    const q = this.#queues.get(clientId);
    if (!journal || !q) return;
    for (const e of q.entries) {
      e.ticket ??= journal.append(this.#stored(clientId, e.packet, e.expiresAtMs));
    }
  }

  /**
   * A message for a connected client is delivered within milliseconds and kept in memory only; one
   * for a client that is not connected is journaled, and a routed publish waits for that commit
   * before its PUBACK (Protocol).
   */
  #enqueue(clientId: string, original: AedesPublishPacket): Promise<void> {
    const now = Date.now();
    const stored = this.#stored(clientId, original, now + this.#o.ttlSecs() * 1000);
    const packet = toPacket(stored);
    const ticket = this.#connected(clientId) ? undefined : this.#o.journal?.append(stored);
    const q = this.#push(clientId, {
      packet,
      bytes: packetBytes(packet),
      expiresAtMs: stored.expiresAtMs,
      ticket,
    });
    this.#expire(q, now);
    this.#bound(q);
    return ticket?.committed ?? Promise.resolve();
  }

  #connected(clientId: string): boolean {
    return this.#clients[clientId] !== undefined;
  }

  #stored(clientId: string, p: AedesPublishPacket, expiresAtMs: number): StoredMessage {
    return {
      clientId,
      topic: p.topic,
      payload: p.payload as Buffer,
      qos: p.qos,
      brokerId: p.brokerId,
      brokerCounter: p.brokerCounter,
      expiresAtMs,
    };
  }

  #push(clientId: string, entry: Entry): ClientQueue {
    let q = this.#queues.get(clientId);
    if (!q) {
      q = { entries: [], bytes: 0 };
      this.#queues.set(clientId, q);
    }
    q.entries.push(entry);
    q.bytes += entry.bytes;
    return q;
  }

  #forget(q: ClientQueue, entry: Entry): void {
    q.bytes -= entry.bytes;
    if (entry.ticket) this.#o.journal?.remove(entry.ticket);
  }

  /** Drops expired messages from the head (queues are in expiry order unless the TTL changed). */
  #expire(q: ClientQueue, now: number): void {
    let n = 0;
    while (n < q.entries.length && q.entries[n]!.expiresAtMs <= now) n += 1;
    if (n === 0) return;
    for (const e of q.entries.splice(0, n)) this.#forget(q, e);
    this.#o.onDropped('ttl_expiry', n);
  }

  #bound(q: ClientQueue): void {
    let n = 0;
    while (
      q.entries.length - n > 1 &&
      (q.entries.length - n > this.#o.maxMessages || q.bytes > this.#o.maxBytes)
    ) {
      this.#forget(q, q.entries[n]!);
      n += 1;
    }
    if (n === 0) return;
    q.entries.splice(0, n);
    this.#o.onDropped('queue_full', n);
  }
}
