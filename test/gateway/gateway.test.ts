// The gateway against a real nats-server, over real TLS, with real MQTT clients and the device's
// real cloud link and hub: trust (ACLs, revocation, expiry), abuse (slow handshakes, floods,
// oversized and retained publishes) and delivery (ack after JetStream, backlog, dead letters).
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { deviceTopic, Leaf } from '../../src/common/cloudlink/protocol.js';
import { MAX_USAGE_BYTES } from '../../src/common/cloudlink/usage.js';
import { Buckets, deviceKey, Streams, Subjects } from '../../src/common/cloudplane/layout.js';
import { silentLogger } from '../../src/common/logger.js';
import { createCa, issueCertificate } from '../../src/common/pki.js';
import { NatsDeviceBackend } from '../../src/controller/backend/nats-backend.js';
import { CloudLink } from '../../src/edgenode/cloudlink/link.js';
import { HubMetrics } from '../../src/edgenode/hub/metrics.js';
import { MemoryQueue } from '../../src/edgenode/hub/queue/memory-queue.js';
import { Forwarder, type QueueHeader } from '../../src/edgenode/hub/upstream/forwarder.js';
import { eventually, jsonMessage, Message, sdkLeaf, startHub } from '../hub/helpers.js';
import { liveMb, rssMb } from '../support/memory.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import {
  closedWithin,
  connectDevice,
  deviceToken,
  NS,
  startGatewayRig,
  type GatewayRig,
} from './helpers.js';

const HANDSHAKE_MS = 2_000;
const PRE_AUTH_PER_SOURCE = 8;

let nats: TestNats;
let rig: GatewayRig;

beforeAll(async () => {
  nats = await startTestNats('gateway');
  rig = await startGatewayRig(nats.url, {
    limits: { handshakeTimeoutMs: HANDSHAKE_MS, maxPreAuthPerSource: PRE_AUTH_PER_SOURCE },
  });
});

afterAll(async () => {
  await rig?.close();
  await nats?.stop();
});

describe('gateway trust', () => {
  it("confines a device to its own subjects: B's credentials cannot act as A or touch A's topics", async () => {
    const keyA = await rig.register('a');
    const keyB = await rig.register('b');
    await expect(connectDevice(rig, 'a', deviceToken('b', keyB))).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    await expect(connectDevice(rig, 'a', deviceToken('a', keyB))).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
    const b = await connectDevice(rig, 'b', deviceToken('b', keyB));
    // SUBACK 0x80: refused.
    for (const leaf of [Leaf.desired, Leaf.c2d])
      await expect(b.subscribeAsync(deviceTopic(NS, 'a', leaf), { qos: 1 })).rejects.toThrow(
        /Subscribe error/,
      );
    // A forged publish into A's subtree ends B's session and stores nothing for A.
    const closed = closedWithin(b);
    b.publish(
      deviceTopic(NS, 'a', Leaf.twinReported),
      JSON.stringify({ module: 'm', patch: { x: 1 }, version: 1 }),
      { qos: 1 },
    );
    await closed;
    b.end(true);
    const twins = await new Kvm(rig.nc).open(Buckets.twins);
    expect(await twins.get(`${deviceKey(NS, 'a')}.m`)).toBeNull();
    const a = await connectDevice(rig, 'a', deviceToken('a', keyA));
    a.end(true);
  });

  it('authenticates an X.509 device by thumbprint or CA, the cloud link included, and drops it when they change', async () => {
    const root = createCa('fleet');
    const own = issueCertificate(createCa('own'), { commonName: 'x-tp', usage: ['client'] });
    const signed = issueCertificate(root, { commonName: 'x-ca', usage: ['client'] });
    const thumbprint = new X509Certificate(own.certPem).fingerprint256.replaceAll(':', '');
    await rig.setCredentials('x-tp', { keys: [], thumbprints: [thumbprint.toLowerCase()] });
    await rig.setCredentials('x-ca', { keys: [], caCertificates: [root.certPem] });
    const withCert = (pair: { certPem: string; keyPem: string }) => ({
      cert: pair.certPem,
      key: pair.keyPem,
    });
    const refused = /Bad username or password|Not authorized/i;
    (await connectDevice(rig, 'x-ca', '', withCert(signed))).end(true);
    await expect(connectDevice(rig, 'x-ca', '', withCert(own))).rejects.toThrow(refused);
    await expect(connectDevice(rig, 'x-tp', '', withCert(signed))).rejects.toThrow(refused);
    // No certificate and no password: refused.
    await expect(connectDevice(rig, 'x-tp', '')).rejects.toThrow(refused);

    const link = new CloudLink({
      url: rig.url,
      namespace: NS,
      device: 'x-tp',
      credentials: own,
      caPem: rig.ca.certPem,
      heartbeatSecs: 1,
      log: silentLogger(),
    });
    await link.start(() => undefined);
    try {
      await eventually(() => link.connected, 10_000);
      // A certificate valid for a year must not end the session at once.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(link.connected).toBe(true);
      const started = Date.now();
      await rig.setCredentials('x-tp', { keys: [], thumbprints: ['ab'.repeat(32)] });
      await eventually(() => !link.connected, 5_000);
      console.log(`X.509 session dropped ${Date.now() - started} ms after its thumbprint changed`);
    } finally {
      await link.stop();
    }
  });

  it('drops a live session within 5 s when its key is revoked or rotated away', async () => {
    const key = await rig.register('rev');
    const client = await connectDevice(rig, 'rev', deviceToken('rev', key));
    const closed = closedWithin(client);
    await rig.register('rev'); // a new key: the session's token no longer verifies
    const ms = await closed;
    console.log(`revoked session closed after ${ms} ms`);
    expect(ms).toBeLessThan(5_000);
    client.end(true);
    await expect(connectDevice(rig, 'rev', deviceToken('rev', key))).rejects.toThrow(
      /Bad username or password|Not authorized/i,
    );
  });

  it('ends a session when its SAS token expires', async () => {
    const key = await rig.register('short');
    const client = await connectDevice(rig, 'short', deviceToken('short', key, 3));
    const ms = await closedWithin(client);
    client.end(true);
    expect(ms).toBeLessThan(5_000);
  });
});

describe('gateway abuse', () => {
  it('closes a silent TCP connection and a trickled ClientHello at the handshake deadline', async () => {
    const silent = net.connect({
      port: rig.gateway.port,
      host: '127.0.0.1',
      localAddress: '127.0.0.3',
    });
    const silentStart = Date.now();
    const silentClosed = new Promise<number>((r) =>
      silent.once('close', () => r(Date.now() - silentStart)),
    );
    // A real ClientHello, sent one byte every 1.5 s.
    const hello = await captureClientHello();
    const trickle = net.connect({
      port: rig.gateway.port,
      host: '127.0.0.1',
      localAddress: '127.0.0.3',
    });
    const trickleStart = Date.now();
    let i = 0;
    const timer = setInterval(() => {
      if (!trickle.destroyed && i < hello.length) trickle.write(hello.subarray(i, ++i));
    }, 1_500);
    trickle.on('error', () => undefined);
    const trickleClosed = new Promise<number>((r) =>
      trickle.once('close', () => r(Date.now() - trickleStart)),
    );
    const [silentMs, trickleMs] = await Promise.all([silentClosed, trickleClosed]);
    clearInterval(timer);
    console.log(
      `handshake deadline ${HANDSHAKE_MS} ms: silent closed after ${silentMs} ms, trickle after ${trickleMs} ms`,
    );
    // Held open until the deadline (not refused at once), then closed by the gateway.
    for (const ms of [silentMs, trickleMs]) {
      expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 100);
      expect(ms).toBeLessThan(HANDSHAKE_MS + 1_000);
    }
  });

  it('caps unauthenticated connections per source while other sources still connect; memory stays bounded', async () => {
    const before = rssMb();
    const flood: net.Socket[] = [];
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const s = net.connect({
        port: rig.gateway.port,
        host: '127.0.0.1',
        localAddress: '127.0.0.4',
      });
      s.on('error', () => undefined);
      s.on('close', () => refused++);
      flood.push(s);
    }
    await eventually(() => refused >= 200 - PRE_AUTH_PER_SOURCE, 5_000);
    const key = await rig.register('other');
    const other = await connectDevice(rig, 'other', deviceToken('other', key));
    other.end(true);
    const after = rssMb();
    console.log(
      `pre-auth flood of 200 from one source: ${refused} closed at once; RSS ${before} → ${after} MB`,
    );
    expect(refused).toBe(200 - PRE_AUTH_PER_SOURCE);
    flood.forEach((s) => s.destroy());
    expect(after - before).toBeLessThan(64);
  });

  it('refuses an oversized CONNECT before parsing it, and oversized or retained publishes', async () => {
    await expect(
      connectDevice(rig, 'big', 'x'.repeat(64 * 1024), { connectTimeout: 3_000 }),
    ).rejects.toThrow();
    const key = await rig.register('pub');
    const retained = await connectDevice(rig, 'pub', deviceToken('pub', key));
    const closedRetained = closedWithin(retained);
    retained.publish(deviceTopic(NS, 'pub', Leaf.heartbeat), '{}', { qos: 1, retain: true });
    await closedRetained;
    retained.end(true);
    const before = rssMb();
    const big = await connectDevice(rig, 'pub', deviceToken('pub', key));
    const closedBig = closedWithin(big);
    big.publish(deviceTopic(NS, 'pub', Leaf.telemetry), Buffer.alloc(8 * 1024 * 1024, 1), {
      qos: 1,
    });
    await closedBig;
    big.end(true);
    console.log(`8 MiB publish refused; RSS ${before} → ${rssMb()} MB`);
  });
});

describe('gateway delivery', () => {
  it('stores telemetry (once per seq) and merged reported twins in JetStream before the PUBACK', async () => {
    const key = await rig.register('tel');
    const client = await connectDevice(rig, 'tel', deviceToken('tel', key));
    const message = {
      seq: 1,
      body: Buffer.from('{"t":1}').toString('base64'),
      properties: {},
      systemProperties: {},
      enqueuedAt: new Date().toISOString(),
    };
    await client.publishAsync(
      deviceTopic(NS, 'tel', Leaf.telemetry),
      JSON.stringify({ messages: [message, message] }),
      { qos: 1 },
    );
    const jsm = await jetstreamManager(rig.nc);
    const info = await jsm.streams.info(Streams.telemetry, {
      subjects_filter: Subjects.telemetry(NS, 'tel'),
    });
    // The same seq and enqueue time twice: stored once.
    expect(info.state.subjects?.[Subjects.telemetry(NS, 'tel')]).toBe(1);
    await client.publishAsync(
      deviceTopic(NS, 'tel', Leaf.twinReported),
      JSON.stringify({ module: 'Mod.1', patch: { a: { b: 1, c: 2 } }, version: 1 }),
      { qos: 1 },
    );
    await client.publishAsync(
      deviceTopic(NS, 'tel', Leaf.twinReported),
      JSON.stringify({ module: 'Mod.1', patch: { a: { c: null }, d: 'x' }, version: 2 }),
      { qos: 1 },
    );
    const backend = await NatsDeviceBackend.start(rig.nc, silentLogger());
    expect(await backend.reportedTwin(NS, 'tel', 'Mod.1')).toEqual({
      module: 'Mod.1',
      version: 2,
      properties: { a: { b: 1 }, d: 'x' },
    });
    await backend.close();
    client.end(true);
  });

  it('passes usage samples to the controller unstored, and drops an oversized one, counted', async () => {
    const key = await rig.register('use');
    const client = await connectDevice(rig, 'use', deviceToken('use', key));
    const backend = await NatsDeviceBackend.start(rig.nc, silentLogger());
    const seen: unknown[] = [];
    backend.on('usage', (ns, device, usage) => seen.push({ ns, device, usage }));
    const sample = { node: { atMs: 1 }, modules: [] };
    client.publish(deviceTopic(NS, 'use', Leaf.usage), JSON.stringify(sample), { qos: 0 });
    await eventually(() => seen.length === 1);
    expect(seen[0]).toEqual({ ns: NS, device: 'use', usage: sample });
    const oversized = JSON.stringify({ pad: 'x'.repeat(MAX_USAGE_BYTES) });
    client.publish(deviceTopic(NS, 'use', Leaf.usage), oversized, { qos: 0 });
    await eventually(
      async () => (await rig.gateway.metrics.usageDropped.get()).values[0]?.value === 1,
    );
    client.publish(deviceTopic(NS, 'use', Leaf.usage), 'not json', { qos: 0 });
    // An unreadable one still reaches the controller, whose schema check refuses it.
    await eventually(() => seen.length === 2);
    expect(seen[1]).toMatchObject({ usage: 'not json' });
    expect(client.connected).toBe(true);
    await backend.close();
    client.end(true);
  });

  it('keeps memory bounded while a consumer is offline: the stream holds the backlog, not the gateway', async () => {
    const jsm = await jetstreamManager(rig.nc);
    // An application's durable consumer that never reads while 96 MiB of telemetry arrives.
    await jsm.consumers.add(Streams.telemetry, {
      durable_name: 'offline-app',
      filter_subject: Subjects.telemetry(NS, 'bulk'),
      ack_policy: AckPolicy.Explicit,
    });
    const key = await rig.register('bulk');
    const client = await connectDevice(rig, 'bulk', deviceToken('bulk', key));
    const body = Buffer.alloc(192 * 1024, 7).toString('base64');
    const batches = 256;
    const perBatch = 2;
    const before = { rss: rssMb(), live: liveMb() };
    let peak = before.rss;
    for (let b = 0; b < batches; b++) {
      const messages = Array.from({ length: perBatch }, (_, i) => ({
        seq: b * perBatch + i + 1,
        body,
        properties: {},
        systemProperties: {},
        enqueuedAt: new Date().toISOString(),
      }));
      await client.publishAsync(
        deviceTopic(NS, 'bulk', Leaf.telemetry),
        JSON.stringify({ messages }),
        { qos: 1 },
      );
      peak = Math.max(peak, rssMb());
    }
    const after = { rss: rssMb(), live: liveMb() };
    const stored = (await jsm.consumers.info(Streams.telemetry, 'offline-app')).num_pending;
    const sentMb = Math.round((batches * perBatch * body.length) / 1024 / 1024);
    console.log(
      `offline consumer: ${stored} messages (${sentMb} MiB) waiting in JetStream; gateway process after GC: heap + external ${before.live} → ${after.live} MB, RSS ${before.rss} → ${after.rss} MB (peak ${peak} MB)`,
    );
    expect(stored).toBe(batches * perBatch);
    // What a consumer has not read lives in the stream: the gateway keeps none of it.
    expect(after.live - before.live).toBeLessThan(sentMb / 2);
    client.end(true);
    await jsm.consumers.delete(Streams.telemetry, 'offline-app');
  });

  it('drains a 20 × 256 KiB offline backlog through the device hub and cloud link; a refused message is dead-lettered and the rest flow', async () => {
    const key = await rig.register('edge');
    const link = new CloudLink({
      url: rig.url,
      namespace: NS,
      device: 'edge',
      credentials: { keyBase64: key },
      caPem: rig.ca.certPem,
      heartbeatSecs: 1,
      log: silentLogger(),
    });
    const hub = await startHub(
      { routes: { up: 'FROM /messages/* INTO $upstream' } },
      link.upstream,
    );
    const leaf = await sdkLeaf(hub);
    try {
      const big = Buffer.alloc(256 * 1024, 'k');
      for (let i = 0; i < 20; i++) await leaf.sendEvent(new Message(big));
      await link.start(() => undefined);
      const js = jetstream(rig.nc);
      const jsm = await jetstreamManager(rig.nc);
      const subject = Subjects.telemetry(NS, 'edge');
      const count = async (): Promise<number> =>
        (await jsm.streams.info(Streams.telemetry, { subjects_filter: subject })).state.subjects?.[
          subject
        ] ?? 0;
      await eventually(async () => (await count()) >= 20, 60_000);
      expect(await count()).toBe(20);
      // The operator lowers the stream's message limit: the next large message can never be stored.
      const config = (await jsm.streams.info(Streams.telemetry)).config;
      await jsm.streams.update(Streams.telemetry, { ...config, max_msg_size: 128 * 1024 });
      try {
        await leaf.sendEvent(new Message(Buffer.alloc(200 * 1024, 'p')));
        await leaf.sendEvent(jsonMessage({ after: 'poison' }));
        await eventually(async () => (await count()) >= 21, 30_000);
        const dead = await jsm.streams.info(Streams.deadLetter, {
          subjects_filter: Subjects.deadLetter(NS, 'edge'),
        });
        expect(dead.state.subjects?.[Subjects.deadLetter(NS, 'edge')]).toBe(1);
        const last = await js.streams
          .get(Streams.telemetry)
          .then((s) => s.getMessage({ last_by_subj: subject }));
        expect(
          JSON.parse(Buffer.from(last!.json<{ body: string }>().body, 'base64').toString()),
        ).toEqual({ after: 'poison' });
      } finally {
        await jsm.streams.update(Streams.telemetry, { ...config });
      }
    } finally {
      await leaf.close();
      await link.stop();
      await hub.stop();
    }
  });

  it('sends a batch again when the gateway drops the link before its PUBACK (JetStream down), instead of waiting for the PUBACK forever', async () => {
    const key = await rig.register('inflight');
    const log = silentLogger();
    const link = new CloudLink({
      url: rig.url,
      namespace: NS,
      device: 'inflight',
      credentials: { keyBase64: key },
      caPem: rig.ca.certPem,
      log,
    });
    const queue = new MemoryQueue({
      maxBytes: 1024 * 1024,
      maxMessages: 1_000,
      dropPolicy: 'reject-new',
    });
    const forwarder = new Forwarder(queue, link.upstream, new HubMetrics(), log);
    const drops: number[] = [];
    link.upstream.onLinkChange((up) => (up ? undefined : drops.push(Date.now())));
    const jsm = await jetstreamManager(rig.nc);
    const subject = Subjects.telemetry(NS, 'inflight');
    const count = async (): Promise<number> =>
      (await jsm.streams.info(Streams.telemetry, { subjects_filter: subject })).state.subjects?.[
        subject
      ] ?? 0;
    try {
      await link.start(() => undefined);
      await eventually(() => link.upstream.connected, 10_000);
      forwarder.start();
      await nats.server.stop();
      const header: QueueHeader = { kind: 'telemetry', deviceId: 'inflight', properties: [] };
      await queue.enqueue([
        {
          priority: 0,
          expiresAtMs: Date.now() + 600_000,
          header: JSON.stringify(header),
          body: Buffer.from('{"inflight":1}'),
        },
      ]);
      // JetStream cannot answer: the gateway's publish times out and it drops the session while
      // the device still waits for the PUBACK.
      await eventually(() => drops.length > 0, 30_000);
      await nats.server.restart();
      await eventually(() => !rig.nc.isClosed() && rig.nc.info !== undefined, 30_000);
      await eventually(() => queue.stats().depth === 0, 30_000);
      expect(await count()).toBe(1);
    } finally {
      await forwarder.stop();
      await link.stop();
    }
  });
});

/** The first bytes a TLS client sends: a complete ClientHello. */
async function captureClientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        resolve(d);
        s.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const c = tls.connect({
        port: (server.address() as net.AddressInfo).port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
      });
      c.on('error', () => undefined);
    });
  });
}
