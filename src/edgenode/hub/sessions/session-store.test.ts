import type { AedesPublishPacket, Client } from 'aedes';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SessionJournal } from './session-journal.js';
import { SessionStore, type SessionDropReason } from './session-store.js';

const CLIENT = { id: 'edge1/collector' } as Client;
const SUB = { clientId: CLIENT.id };
let counter = 0;

function packet(body: string): AedesPublishPacket {
  counter += 1;
  return {
    cmd: 'publish',
    topic: 't',
    payload: Buffer.from(body),
    qos: 1,
    retain: false,
    dup: false,
    brokerId: 'b',
    brokerCounter: counter,
  };
}

async function bodies(store: SessionStore): Promise<string[]> {
  const out: string[] = [];
  for await (const p of store.outgoingStream(CLIENT)) {
    out.push(((p as AedesPublishPacket).payload as Buffer).toString());
  }
  return out;
}

function open(
  file: string | undefined,
  limits: { maxMessages?: number; maxBytes?: number; ttlSecs?: number } = {},
): { store: SessionStore; journal: SessionJournal | undefined; drops: SessionDropReason[] } {
  const journal = file === undefined ? undefined : new SessionJournal(file);
  const drops: SessionDropReason[] = [];
  const store = new SessionStore({
    journal,
    maxMessages: limits.maxMessages ?? 100,
    maxBytes: limits.maxBytes ?? 1 << 20,
    ttlSecs: () => limits.ttlSecs ?? 3600,
    onDropped: (reason, n) => drops.push(...Array<SessionDropReason>(n).fill(reason)),
  });
  return { store, journal, drops };
}

describe('SessionStore', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kedge-sessions-'));

  it('drops the oldest beyond the message and byte bounds', async () => {
    const { store, drops } = open(undefined, { maxMessages: 3, maxBytes: 9 });
    for (const b of ['a1', 'a2', 'a3', 'a4']) await store.outgoingEnqueue(SUB, packet(b));
    expect(await bodies(store)).toEqual(['a2', 'a3', 'a4']);
    await store.outgoingEnqueue(SUB, packet('bbbbbb')); // 7 bytes with the topic
    expect(await bodies(store)).toEqual(['bbbbbb']);
    expect(drops).toEqual(Array(4).fill('queue_full'));
    expect(store.stats).toEqual({ messages: 1, bytes: 7 });
  });

  it('expires messages after the TTL', async () => {
    const { store, drops } = open(undefined, { ttlSecs: 0 });
    await store.outgoingEnqueue(SUB, packet('old'));
    expect(await bodies(store)).toEqual([]);
    expect(drops).toEqual(['ttl_expiry']);
  });

  it('keeps subscriptions and unacknowledged messages across a reopen, in order', async () => {
    const file = path.join(dir, 'reopen.db');
    const first = open(file);
    await first.store.setup({});
    await first.store.addSubscriptions(CLIENT, [{ topic: 'in/#', qos: 1 }]);
    const sent = ['m1', 'm2', 'm3'].map(packet);
    for (const p of sent) await first.store.outgoingEnqueue(SUB, p);
    // m1 is delivered and acknowledged; m2 is in flight, not acknowledged.
    await first.store.outgoingUpdate(CLIENT, { ...sent[0]!, messageId: 7 });
    await first.store.outgoingClearMessageId(CLIENT, { ...sent[0]!, messageId: 7 });
    await first.store.outgoingUpdate(CLIENT, { ...sent[1]!, messageId: 8 });
    first.journal!.close();

    const second = open(file);
    await second.store.setup({});
    expect(await bodies(second.store)).toEqual(['m2', 'm3']);
    expect(await second.store.subscriptionsByClient(CLIENT)).toEqual([
      expect.objectContaining({ topic: 'in/#', qos: 1 }),
    ]);
    expect((await second.store.subscriptionsByTopic('in/x')).map((s) => s.clientId)).toEqual([
      CLIENT.id,
    ]);
    second.journal!.close();
  });

  it('never writes a message acknowledged before its commit', async () => {
    const file = path.join(dir, 'fast-ack.db');
    const { store, journal } = open(file);
    await store.setup({});
    const p = packet('quick');
    const committed = store.outgoingEnqueue(SUB, p);
    await store.outgoingUpdate(CLIENT, { ...p, messageId: 1 });
    await store.outgoingClearMessageId(CLIENT, { ...p, messageId: 1 });
    await committed;
    journal!.close();
    const reopened = open(file);
    await reopened.store.setup({});
    expect(await bodies(reopened.store)).toEqual([]);
    reopened.journal!.close();
  });

  it('journals for a connected client only once it disconnects', async () => {
    const file = path.join(dir, 'connected.db');
    const clients: Record<string, unknown> = { [CLIENT.id]: {} };
    const first = open(file);
    await first.store.setup({ clients });
    await first.store.outgoingEnqueue(SUB, packet('live'));
    first.journal!.close();
    const notKept = open(file);
    await notKept.store.setup({});
    expect(await bodies(notKept.store)).toEqual([]);
    notKept.journal!.close();

    const second = open(file);
    await second.store.setup({ clients });
    await second.store.outgoingEnqueue(SUB, packet('left behind'));
    delete clients[CLIENT.id];
    second.store.keep(CLIENT.id);
    second.journal!.close();
    const kept = open(file);
    await kept.store.setup({});
    expect(await bodies(kept.store)).toEqual(['left behind']);
    kept.journal!.close();
  });
});
