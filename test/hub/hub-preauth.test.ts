// Connections that never finish TLS or never authenticate: raw sockets against the real hub.
import net from 'node:net';
import tls from 'node:tls';
import type { Hub } from '../../src/edgenode/hub/index.js';
import { jsonMessage, sdkLeaf, sleep, startHub } from './helpers.js';

/** Deadline the tests configure (ms); the default is 10 s. */
const DEADLINE_MS = 3_000;
/** Slack for timers and scheduling on a busy machine. */
const SLACK_MS = 1_500;
/** Gap between trickled ClientHello bytes: shorter than the deadline, so an idle timer never fires. */
const TRICKLE_GAP_MS = 1_500;
/** A second loopback source address (Linux routes all of 127/8 to lo). */
const OTHER_SOURCE = '127.0.0.2';

/** The ClientHello a real TLS client sends first, captured from Node's TLS client. */
async function clientHello(): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s) => s.once('data', (d: Buffer) => (resolve(d), s.destroy()))),
  );
  const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  client.on('error', () => undefined);
  const hello = await got;
  server.close();
  return hello;
}

interface RawConnection {
  socket: net.Socket;
  /** Resolves with the ms from connect to close. */
  closed: Promise<number>;
  connected: Promise<void>;
}

function rawConnect(port: number, localAddress?: string): RawConnection {
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    ...(localAddress ? { localAddress } : {}),
  });
  socket.on('error', () => undefined);
  const startedMs = Date.now();
  const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now() - startedMs)));
  const connected = new Promise<void>((r) => socket.once('connect', () => r()));
  return { socket, closed, connected };
}

/** Resolves with the close time, or `open` if the socket is still open after `waitMs`. */
async function closedWithin(c: RawConnection, waitMs: number): Promise<number | 'open'> {
  return Promise.race([c.closed, sleep(waitMs).then(() => 'open' as const)]);
}

describe('hub connections that do not authenticate', () => {
  let hub: Hub;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await hub?.stop();
  });

  function track(c: RawConnection): RawConnection {
    sockets.push(c.socket);
    return c;
  }

  it('closes a silent TCP connection on the MQTT and method API ports at the deadline', async () => {
    hub = await startHub({ limits: { connectTimeoutMs: DEADLINE_MS } });
    const mqtt = track(rawConnect(hub.ports.tls));
    const methods = track(rawConnect(hub.ports.methods!));
    const waitMs = DEADLINE_MS + SLACK_MS;
    const [mqttMs, methodsMs] = await Promise.all([
      closedWithin(mqtt, waitMs),
      closedWithin(methods, waitMs),
    ]);
    expect({ mqtt: mqttMs !== 'open', methods: methodsMs !== 'open' }).toEqual({
      mqtt: true,
      methods: true,
    });
    expect(mqttMs).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
    expect(
      await hub.metrics.value('kedge_hub_connections_refused_total', {
        listener: 'mqtt',
        reason: 'deadline',
      }),
    ).toBe(1);
  });

  it('closes a ClientHello trickled one byte every 1.5 s at the deadline', async () => {
    hub = await startHub({ limits: { connectTimeoutMs: DEADLINE_MS } });
    const hello = await clientHello();
    const conns = [track(rawConnect(hub.ports.tls)), track(rawConnect(hub.ports.methods!))];
    await Promise.all(conns.map((c) => c.connected));
    let sent = 0;
    const timer = setInterval(() => {
      for (const c of conns)
        if (!c.socket.destroyed) c.socket.write(hello.subarray(sent, sent + 1));
      sent += 1;
    }, TRICKLE_GAP_MS);
    try {
      const waitMs = DEADLINE_MS + TRICKLE_GAP_MS + SLACK_MS;
      const closed = await Promise.all(conns.map((c) => closedWithin(c, waitMs)));
      expect(closed.map((ms) => ms !== 'open')).toEqual([true, true]);
      expect(sent).toBeGreaterThan(0);
    } finally {
      clearInterval(timer);
    }
  });

  it('refuses a source over its pending-connection cap while an SDK client from elsewhere connects', async () => {
    hub = await startHub({ limits: { connectTimeoutMs: 20_000, maxPendingPerSource: 2 } });
    const held = [
      track(rawConnect(hub.ports.tls, OTHER_SOURCE)),
      track(rawConnect(hub.ports.tls, OTHER_SOURCE)),
    ];
    await Promise.all(held.map((c) => c.connected));
    const third = track(rawConnect(hub.ports.tls, OTHER_SOURCE));
    expect(await closedWithin(third, SLACK_MS)).not.toBe('open');
    const leaf = await sdkLeaf(hub);
    await leaf.sendEvent(jsonMessage({ ok: true }));
    await leaf.close();
    expect(await Promise.all(held.map((c) => closedWithin(c, 100)))).toEqual(['open', 'open']);
    expect(
      await hub.metrics.value('kedge_hub_connections_refused_total', {
        reason: 'per_source_limit',
      }),
    ).toBe(1);
  });
});
