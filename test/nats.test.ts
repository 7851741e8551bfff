import { jetstream, jetstreamManager, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NATS_SERVER_VERSION } from '../src/localcluster/nats.js';
import { pidAlive } from '../src/localcluster/processes.js';
import { eventually } from './support/cluster.js';
import { startTestNats, startTestNatsCluster } from './support/nats.js';

/** How long a publish may keep retrying while a new stream leader is elected. */
const FAILOVER_BUDGET_MS = 30_000;
const PUBLISH_TIMEOUT_MS = 2_000;
const RETRY_PAUSE_MS = 100;

/** Publishes until JetStream acknowledges; the message ID makes retries idempotent. */
async function publishUntilAcked(
  js: JetStreamClient,
  subject: string,
  msgID: string,
): Promise<{ seq: number; elapsedMs: number; attempts: number }> {
  const started = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const ack = await js.publish(subject, msgID, { msgID, timeout: PUBLISH_TIMEOUT_MS });
      return { seq: ack.seq, elapsedMs: Date.now() - started, attempts };
    } catch (err) {
      if (Date.now() - started > FAILOVER_BUDGET_MS) throw err;
      await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
    }
  }
}

async function publishAll(js: JetStreamClient, prefix: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++)
    await js.publish(`${prefix}.${i % 5}`, `m${i}`, { msgID: `${prefix}-${i}` });
}

describe('local NATS', () => {
  it('runs one nats-server with JetStream on disk that keeps messages across a crash', async () => {
    const nats = await startTestNats('nats-single');
    let nc: NatsConnection | undefined;
    try {
      expect(nats.server.running()).toBe(true);
      const varz = (await (await fetch(`${nats.server.monitorUrl}/varz`)).json()) as {
        version: string;
      };
      expect(`v${varz.version}`).toBe(NATS_SERVER_VERSION);
      nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'SINGLE', subjects: ['single.>'], storage: StorageType.File });
      await publishAll(jetstream(nc), 'single', 20);
      await nc.close();

      const pid = nats.server.pid;
      await nats.server.kill();
      expect(pidAlive(pid)).toBe(false);
      await nats.server.restart();
      expect(nats.server.pid).not.toBe(pid);

      nc = await connect({ servers: nats.url });
      const info = await (await jetstreamManager(nc)).streams.info('SINGLE');
      expect(info.state.messages).toBe(20);
      expect(info.config.storage).toBe(StorageType.File);
    } finally {
      await nc?.close();
      await nats.stop();
    }
  });

  it('keeps acknowledging R3 publishes when the stream leader is killed, and the node rejoins', async () => {
    const cluster = await startTestNatsCluster('nats-cluster', 3);
    let nc: NatsConnection | undefined;
    try {
      expect(cluster.url.split(',')).toHaveLength(3);
      nc = await connect({ servers: cluster.url.split(','), maxReconnectAttempts: -1 });
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      await jsm.streams.add({
        name: 'FAULT',
        subjects: ['fault.>'],
        storage: StorageType.File,
        num_replicas: 3,
      });
      await publishAll(js, 'fault', 100);
      const before = await jsm.streams.info('FAULT');
      expect(before.cluster?.replicas).toHaveLength(2);
      const leaderName = before.cluster?.leader;
      const leader = cluster.servers.find((s) => s.name === leaderName)!;
      expect(leader).toBeDefined();

      const killedPid = leader.pid;
      await leader.kill();
      expect(pidAlive(killedPid)).toBe(false);
      const failover = await publishUntilAcked(js, 'fault.after-kill', 'after-kill');
      expect(failover.seq).toBe(101);
      const after = await jsm.streams.info('FAULT');
      expect(after.state.messages).toBe(101);
      expect(after.cluster?.leader).not.toBe(leaderName);
      const lost = after.cluster?.replicas?.find((r) => r.name === leaderName);
      expect(lost?.current).not.toBe(true);

      await leader.restart();
      const rejoined = await eventually('the restarted node to be a current replica', async () => {
        const info = await jsm.streams.info('FAULT');
        const peers = info.cluster?.replicas ?? [];
        const current = peers.length === 2 && peers.every((r) => r.current && !r.offline);
        return current ? info : undefined;
      });
      const members = [rejoined.cluster?.leader, ...rejoined.cluster!.replicas!.map((r) => r.name)];
      expect(members).toContain(leaderName);
      expect(rejoined.state.messages).toBe(101);
      process.stdout.write(
        `nats cluster: stream leader ${leaderName} killed; next PubAck after ${failover.elapsedMs} ms (${failover.attempts} attempts); node rejoined current\n`,
      );
    } finally {
      await nc?.close();
      await cluster.stop();
    }
  });
});
