// MQTT over WebSockets (the SDKs' MqttWs transport) on 443, the port it shares with the method API.
// The SDK always dials wss://{gateway}:443/$iothub/websocket, so this file runs the hub on the
// standard ports (8883 and 443; root may bind them). Nothing else in the file binds them, and each
// hub is stopped before the next starts.
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import type { Hub } from '../../src/edgenode/hub/index.js';
import {
  DEVICE,
  eventually,
  IOTHUB,
  jsonMessage,
  leafToken,
  type SdkClient,
  type SdkMessage,
  sdkLeafOverWebSockets,
  sdkModule,
  sleep,
  startHub,
  tempDir,
} from './helpers.js';

const WS_PORT = 443;
const WS_PATH = '/$iothub/websocket';
/** Pre-auth deadline in this file (ms): short, so the test of it is quick; SDK clients need far less. */
const DEADLINE_MS = 3_000;
/** Slack for timers and scheduling on a busy machine. */
const SLACK_MS = 1_500;
/** A second loopback source address (Linux routes all of 127/8 to lo). */
const OTHER_SOURCE = '127.0.0.2';
/** MQTT PUBLISH fixed header announcing a 100,000,000-byte packet. */
const HUGE_PACKET_HEADER = Buffer.from([0x30, 0x80, 0xc2, 0xd7, 0x2f]);
/** WebSocket close code for a message over the server's size limit (RFC 6455 §7.4.1). */
const WS_MESSAGE_TOO_BIG = 1009;

const LEAF_TO_COLLECTOR =
  'FROM /messages WHERE NOT IS_DEFINED($connectionModuleId) INTO BrokeredEndpoint("/modules/collector/inputs/leaf")';
const COLLECTOR_UP = 'FROM /messages/modules/collector/* INTO $upstream';

/** A raw WebSocket to the hub, as the SDK opens it (subprotocol `mqtt`). */
function rawWebSocket(
  hub: Hub,
  opts: { localAddress?: string } = {},
): { ws: WebSocket; opened: Promise<void>; closed: Promise<{ code: number; ms: number }> } {
  const ws = new WebSocket(`wss://localhost:${WS_PORT}${WS_PATH}`, ['mqtt'], {
    ca: hub.trustBundlePem,
    ...opts,
  });
  const startedMs = Date.now();
  ws.on('error', () => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const closed = new Promise<{ code: number; ms: number }>((r) =>
    ws.once('close', (code) => r({ code, ms: Date.now() - startedMs })),
  );
  return { ws, opened, closed };
}

/** A raw MQTT.js client over WebSockets, for protocol-level tests. */
async function rawWsClient(
  hub: Hub,
  clientId: string,
  password: string,
  extra: mqtt.IClientOptions = {},
): Promise<mqtt.MqttClient> {
  const client = mqtt.connect(`wss://localhost:${WS_PORT}${WS_PATH}`, {
    clientId,
    username: `${IOTHUB}/${clientId}/?api-version=2021-04-12`,
    password,
    ca: hub.trustBundlePem,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...extra,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed')));
    });
  } catch (err) {
    client.end(true);
    throw err;
  }
  return client;
}

/** An upgrade request that is not the SDK's: the HTTP answer the hub gives it. */
function upgradeAttempt(
  hub: Hub,
  requestPath: string,
  protocols: string | undefined,
): Promise<{ status: number; message: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: 'localhost',
      port: WS_PORT,
      path: requestPath,
      ca: hub.trustBundlePem,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.alloc(16, 7).toString('base64'),
        ...(protocols === undefined ? {} : { 'sec-websocket-protocol': protocols }),
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, message: 'upgraded' });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          message: (JSON.parse(text) as { message: string }).message,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('hub MQTT over WebSockets on 443 (MqttWs)', () => {
  let hub: Hub;
  let upstreamFile: string;
  beforeAll(async () => {
    upstreamFile = path.join(tempDir('kedge-hub-ws-up-'), 'upstream.jsonl');
    hub = await startHub({
      tlsPort: 8883,
      methodsPort: WS_PORT,
      routes: { leaf: LEAF_TO_COLLECTOR, up: COLLECTOR_UP },
      upstream: { type: 'file', path: upstreamFile },
      limits: { connectTimeoutMs: DEADLINE_MS, maxPendingPerSource: 2 },
    });
  });
  afterAll(async () => hub?.stop());

  function upstreamLines(): { source: { moduleId?: string }; body: string }[] {
    if (!existsSync(upstreamFile)) return [];
    return readFileSync(upstreamFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { source: { moduleId?: string }; body: string });
  }

  it('carries leaf and module telemetry, methods, twins and C2D over wss://localhost:443/$iothub/websocket', async () => {
    const collector = await sdkModule(hub, 'collector', 'mqttws');
    const got: { input: string; body: string; cdid: string | undefined }[] = [];
    collector.on('inputMessage', (input: string, msg: SdkMessage) => {
      got.push({
        input,
        body: msg.getBytes().toString(),
        cdid: msg.properties.getValue('$.cdid'),
      });
      collector.complete(msg, () => undefined);
      void collector.sendOutputEvent('forwarded', jsonMessage({ seen: got.length }));
    });
    collector.onMethod('ping', (req, res) => void res?.send(200, { pong: req?.payload }));
    const twin = await collector.getTwin();
    const desired: unknown[] = [];
    twin.on('properties.desired', (patch: Record<string, unknown>) => desired.push(patch.limit));
    await sleep(200); // input, method and desired subscriptions reach the hub

    const c2d: string[] = [];
    let current: SdkClient | undefined;
    const onMessage = (msg: SdkMessage): void => {
      c2d.push(`${msg.getBytes().toString()}|${msg.properties.getValue('kind')}`);
      current?.complete(msg, () => undefined);
    };
    const leaf = await sdkLeafOverWebSockets(hub, { onMessage });
    current = leaf;
    leaf.onDeviceMethod('reboot', (req, res) => void res.send(202, { rebooting: req.payload }));
    expect(await hub.metrics.value('kedge_hub_connections')).toBe(2);

    // Telemetry: leaf → route → collector's input → collector's output → $upstream.
    await leaf.sendEvent(jsonMessage({ temperature: 21 }));
    await eventually(() => got.length === 1);
    expect(got[0]).toEqual({ input: 'leaf', body: '{"temperature":21}', cdid: 'leaf1' });
    await eventually(() => upstreamLines().length === 1);
    expect(upstreamLines()[0]).toMatchObject({
      source: { deviceId: DEVICE, moduleId: 'collector' },
      body: '{"seen":1}',
    });

    // Direct methods to the leaf and to the module.
    await sleep(200); // the leaf's method subscription reaches the hub
    await expect(
      hub.invokeMethod({ deviceId: 'leaf1' }, 'reboot', { in: 5 }, 5_000),
    ).resolves.toEqual({ status: 202, payload: { rebooting: { in: 5 } } });
    await expect(
      hub.invokeMethod({ deviceId: DEVICE, moduleId: 'collector' }, 'ping', 1, 5_000),
    ).resolves.toEqual({ status: 200, payload: { pong: 1 } });

    // Twin: a desired patch reaches the module, its reported patch reaches the hub.
    hub.setServiceDesired({ deviceId: DEVICE, moduleId: 'collector' }, { limit: 7 });
    await eventually(() => desired.includes(7));
    await new Promise<void>((resolve, reject) =>
      twin.properties.reported.update({ limit: 7 }, (err?: Error) =>
        err ? reject(err) : resolve(),
      ),
    );
    expect(hub.twin({ deviceId: DEVICE, moduleId: 'collector' }).reported).toMatchObject({
      limit: 7,
    });

    // C2D sent while the leaf is offline reaches it when it reconnects: its session (clean:false)
    // keeps the subscription. (The SDK's close() unsubscribes first, so the connection that goes
    // away here is a raw MQTT.js one over WebSockets, dropped without DISCONNECT.)
    await leaf.close();
    const raw = await rawWsClient(hub, 'leaf1', leafToken(), { clean: false });
    await raw.subscribeAsync('devices/leaf1/messages/devicebound/#', { qos: 1 });
    raw.stream.destroy();
    await eventually(async () => (await hub.metrics.value('kedge_hub_connections')) === 1);
    await hub.sendC2D('leaf1', Buffer.from('reboot'), [['kind', 'command']]);
    expect(c2d).toEqual([]);
    const again = await sdkLeafOverWebSockets(hub, { onMessage });
    current = again;
    await eventually(() => c2d.length === 1);
    expect(c2d).toEqual(['reboot|command']);
    await again.close();
    await collector.close();
  });

  it('still serves the method API on 443: ModuleClient.invokeMethod reaches a module on WebSockets', async () => {
    const target = await sdkModule(hub, 'target', 'mqttws');
    target.onMethod('echo', (req, res) => void res?.send(201, { echoed: req?.payload }));
    const caller = await sdkModule(hub, 'caller');
    await sleep(200);
    await expect(
      caller.invokeMethod(DEVICE, 'target', {
        methodName: 'echo',
        payload: { n: 1 },
        responseTimeoutInSeconds: 5,
        connectTimeoutInSeconds: 5,
      }),
    ).resolves.toMatchObject({ status: 201, payload: { echoed: { n: 1 } } });
    expect(await hub.metrics.value('kedge_hub_method_api_requests_total', { code: '200' })).toBe(1);
    await caller.close();
    await target.close();
  });

  it('answers an upgrade that is not MQTT over WebSockets with an HTTP error', async () => {
    await expect(upgradeAttempt(hub, '/mqtt', 'mqtt')).resolves.toEqual({
      status: 404,
      message: 'no WebSocket endpoint at /mqtt; MQTT over WebSockets is at /$iothub/websocket',
    });
    await expect(upgradeAttempt(hub, WS_PATH, undefined)).resolves.toEqual({
      status: 400,
      message: 'WebSocket subprotocol mqtt is required (offered: none)',
    });
    await expect(upgradeAttempt(hub, WS_PATH, 'amqp, wamp')).resolves.toEqual({
      status: 400,
      message: 'WebSocket subprotocol mqtt is required (offered: amqp, wamp)',
    });
    expect(
      await hub.metrics.value('kedge_hub_connections_refused_total', {
        listener: 'websocket',
        reason: 'bad_upgrade',
      }),
    ).toBe(3);
    // The hub is unharmed: the right request still upgrades.
    await expect(upgradeAttempt(hub, WS_PATH, 'mqtt')).resolves.toEqual({
      status: 101,
      message: 'upgraded',
    });
  });

  it('refuses forged credentials and oversized packets over WebSockets', async () => {
    const forgedKey = Buffer.alloc(32, 9).toString('base64');
    await expect(sdkLeafOverWebSockets(hub, { key: forgedKey })).rejects.toThrow();
    await expect(rawWsClient(hub, 'leaf1', leafToken('leaf1', forgedKey))).rejects.toThrow(
      /Bad username or password/,
    );
    expect(
      await hub.metrics.value('kedge_hub_auth_failures_total', {
        reason: 'SAS token signature is invalid',
      }),
    ).toBe(2);

    // A packet header announcing 100 MB, before CONNECT: refused before the body is buffered.
    const huge = rawWebSocket(hub);
    await huge.opened;
    huge.ws.send(HUGE_PACKET_HEADER);
    await huge.closed;
    expect(
      await hub.metrics.value('kedge_hub_messages_dropped_total', { reason: 'too_large' }),
    ).toBe(1);
    // One WebSocket message larger than the largest MQTT packet: closed by the WebSocket layer.
    const big = rawWebSocket(hub);
    await big.opened;
    big.ws.send(Buffer.alloc(400 * 1024, 0x10));
    expect((await big.closed).code).toBe(WS_MESSAGE_TOO_BIG);
  });

  it('holds a WebSocket to the pre-auth deadline and the per-source cap shared with the TLS listener', async () => {
    const before = await hub.metrics.value('kedge_hub_connections_refused_total', {
      listener: 'mqtt',
      reason: 'deadline',
    });
    // Upgraded, never sends CONNECT: closed at the deadline.
    const silent = rawWebSocket(hub);
    await silent.opened;
    const closed = await Promise.race([silent.closed, sleep(DEADLINE_MS + SLACK_MS)]);
    expect(closed).toMatchObject({ code: expect.any(Number) as number });
    expect((closed as { ms: number }).ms).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
    expect(
      await hub.metrics.value('kedge_hub_connections_refused_total', {
        listener: 'mqtt',
        reason: 'deadline',
      }),
    ).toBe(before + 1);

    // One pending TLS connection and one pending WebSocket fill OTHER_SOURCE's cap of 2; a third
    // (WebSocket) is refused, while a client from another address connects.
    const tlsHeld = await rawTlsPending(hub);
    const wsHeld = rawWebSocket(hub, { localAddress: OTHER_SOURCE });
    await wsHeld.opened;
    const third = rawWebSocket(hub, { localAddress: OTHER_SOURCE });
    await expect(third.opened).rejects.toThrow();
    const leaf = await sdkLeafOverWebSockets(hub);
    await leaf.close();
    expect(
      await hub.metrics.value('kedge_hub_connections_refused_total', {
        listener: 'mqtt',
        reason: 'per_source_limit',
      }),
    ).toBe(1);
    tlsHeld.destroy();
    wsHeld.ws.terminate();
  });
});

/** A TLS connection to the MQTT port from OTHER_SOURCE that never sends CONNECT. */
async function rawTlsPending(hub: Hub): Promise<tls.TLSSocket> {
  const tcp = net.connect({ port: hub.ports.tls, host: '127.0.0.1', localAddress: OTHER_SOURCE });
  tcp.on('error', () => undefined);
  const socket = tls.connect({ socket: tcp, servername: 'localhost', ca: hub.trustBundlePem });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('secureConnect', r));
  return socket;
}

describe('hub with MQTT over WebSockets turned off', () => {
  let hub: Hub;
  afterEach(async () => hub?.stop());

  it('answers the upgrade with 404 naming the setting, and keeps the method API', async () => {
    hub = await startHub({ tlsPort: 8883, methodsPort: WS_PORT, mqttWebSockets: false });
    await expect(upgradeAttempt(hub, WS_PATH, 'mqtt')).resolves.toEqual({
      status: 404,
      message: 'MQTT over WebSockets is turned off on this hub (hub.mqttWebSockets)',
    });
    const target = await sdkModule(hub, 'target');
    target.onMethod('echo', (req, res) => void res?.send(200, req?.payload));
    const caller = await sdkModule(hub, 'caller');
    await sleep(200);
    await expect(
      caller.invokeMethod(DEVICE, 'target', {
        methodName: 'echo',
        payload: 3,
        responseTimeoutInSeconds: 5,
        connectTimeoutInSeconds: 5,
      }),
    ).resolves.toMatchObject({ status: 200, payload: 3 });
    await caller.close();
    await target.close();
  });
});
