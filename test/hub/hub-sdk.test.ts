// The hub against the real Azure IoT device SDK (in this process) and raw MQTT.js over TLS.
import https from 'node:https';
import type { Hub } from '../../src/edgenode/hub/index.js';
import {
  DEVICE,
  eventually,
  jsonMessage,
  leafToken,
  moduleToken,
  rawClient,
  sdkLeaf,
  type SdkMessage,
  sdkModule,
  sleep,
  startHub,
} from './helpers.js';

const LEAF_TO_COLLECTOR =
  'FROM /messages WHERE NOT IS_DEFINED($connectionModuleId) INTO BrokeredEndpoint("/modules/collector/inputs/leaf")';

describe('hub with SDK leaf devices', () => {
  let hub: Hub;
  afterEach(async () => hub?.stop());

  it('routes leaf telemetry (Client.fromConnectionString with GatewayHostName) to a module', async () => {
    hub = await startHub({ routes: { leaf: LEAF_TO_COLLECTOR } });
    const collector = await sdkModule(hub, 'collector');
    const got: { input: string; body: string; cdid: string | undefined }[] = [];
    collector.on('inputMessage', (input: string, msg: SdkMessage) => {
      const cdid = msg.properties.getValue('$.cdid');
      got.push({ input, body: msg.getBytes().toString(), cdid });
      collector.complete(msg, () => undefined);
    });
    await sleep(200);
    const leaf = await sdkLeaf(hub);
    await leaf.sendEvent(jsonMessage({ temperature: 21 }));
    await eventually(() => got.length === 1);
    expect(got[0]).toEqual({ input: 'leaf', body: '{"temperature":21}', cdid: 'leaf1' });
    await leaf.close();
    await collector.close();
  });

  it('delivers C2D messages to a leaf device', async () => {
    hub = await startHub();
    const leaf = await sdkLeaf(hub);
    const got: string[] = [];
    leaf.on('message', (msg: SdkMessage) => {
      got.push(`${msg.getBytes().toString()}|${msg.properties.getValue('kind')}`);
      leaf.complete(msg, () => undefined);
    });
    await sleep(300);
    await hub.sendC2D('leaf1', Buffer.from('reboot'), [['kind', 'command']]);
    await eventually(() => got.length === 1);
    expect(got).toEqual(['reboot|command']);
    await leaf.close();
  });
});

describe('hub security', () => {
  let hub: Hub;
  beforeEach(async () => {
    hub = await startHub({
      routes: { toB: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")' },
    });
  });
  afterEach(async () => hub.stop());

  it("refuses a module publishing to another module's input or output topic", async () => {
    const b = await sdkModule(hub, 'b');
    const received: string[] = [];
    b.on('inputMessage', (_i: string, msg: SdkMessage) => {
      received.push(msg.getBytes().toString());
      b.complete(msg, () => undefined);
    });
    await sleep(200);
    const token = await moduleToken(hub, 'a');
    for (const topic of [
      `devices/${DEVICE}/modules/b/inputs/in1/%24.cdid=${DEVICE}&%24.cmid=a`,
      `devices/${DEVICE}/modules/b/messages/events/%24.on=out/`,
    ]) {
      const a = await rawClient(hub, `${DEVICE}/a`, token);
      const closed = new Promise<void>((r) => a.once('close', () => r()));
      a.publish(topic, 'forged', { qos: 1 });
      await closed; // IoT Hub semantics: a publish outside the topic space ends the connection
      a.end(true);
    }
    const a = await rawClient(hub, `${DEVICE}/a`, token);
    // SUBACK 0x80 (failure): MQTT.js reports it as an error; the connection stays up.
    await expect(
      a.subscribeAsync(`devices/${DEVICE}/modules/b/inputs/#`, { qos: 1 }),
    ).rejects.toThrow(/Subscribe error/);
    // a's own topic space still works and is routed to b.
    await a.publishAsync(`devices/${DEVICE}/modules/a/messages/events/%24.on=o1/`, 'legit', {
      qos: 1,
    });
    await eventually(() => received.length === 1);
    expect(received).toEqual(['legit']);
    expect(await hub.metrics.value('kedge_hub_acl_denials_total', { action: 'publish' })).toBe(2);
    expect(await hub.metrics.value('kedge_hub_acl_denials_total', { action: 'subscribe' })).toBe(1);
    a.end(true);
    await b.close();
  });

  it('refuses a forged token', async () => {
    const forgedKey = Buffer.alloc(32, 9).toString('base64');
    await expect(sdkLeaf(hub, 'leaf1', forgedKey)).rejects.toThrow();
    await expect(rawClient(hub, 'leaf1', leafToken('leaf1', forgedKey))).rejects.toThrow(
      /Bad username or password/,
    );
    expect(
      await hub.metrics.value('kedge_hub_auth_failures_total', {
        reason: 'SAS token signature is invalid',
      }),
    ).toBe(2);
  });

  it('refuses an expired token', async () => {
    const expired = leafToken('leaf1', undefined, Math.floor(Date.now() / 1000) - 10);
    await expect(rawClient(hub, 'leaf1', expired)).rejects.toThrow(/Bad username or password/);
    expect(
      await hub.metrics.value('kedge_hub_auth_failures_total', { reason: 'SAS token expired' }),
    ).toBe(1);
  });

  it('refuses a device that is not on the list, and a token for another identity', async () => {
    await expect(sdkLeaf(hub, 'stranger')).rejects.toThrow();
    await expect(rawClient(hub, 'stranger', leafToken('stranger'))).rejects.toThrow(
      /Bad username or password/,
    );
    // leaf1's valid token presented as module a.
    await expect(rawClient(hub, `${DEVICE}/a`, leafToken('leaf1'))).rejects.toThrow(
      /Bad username or password/,
    );
    expect(
      await hub.metrics.value('kedge_hub_auth_failures_total', { reason: 'unknown identity' }),
    ).toBe(3); // stranger twice, and module a, which this hub never registered
    // The module removed from the deployment cannot connect any more.
    const token = await moduleToken(hub, 'gone');
    await hub.identityProvider.removeModule('gone');
    await expect(rawClient(hub, `${DEVICE}/gone`, token)).rejects.toThrow(/Bad username/);
  });
});

describe('hub limits and bad input', () => {
  let hub: Hub;
  afterEach(async () => hub.stop());

  async function healthyPair(h: Hub) {
    const b = await sdkModule(h, 'b');
    const received: number[] = [];
    b.on('inputMessage', (_i: string, msg: SdkMessage) => {
      received.push(JSON.parse(msg.getBytes().toString()).n);
      b.complete(msg, () => undefined);
    });
    const a = await sdkModule(h, 'a');
    await sleep(200);
    return { a, b, received };
  }

  it('refuses oversized, malformed and over-limit traffic while other clients are unaffected', async () => {
    hub = await startHub({
      routes: { toB: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")' },
      limits: { connectTimeoutMs: 500 },
    });
    const { a, b, received } = await healthyPair(hub);
    await a.sendOutputEvent('o1', jsonMessage({ n: 1 }));

    // 1. A message over 256 KiB: the connection is closed, nothing is routed.
    const leaf = await rawClient(hub, 'leaf1', leafToken());
    const closed = new Promise<void>((r) => leaf.once('close', () => r()));
    leaf.publish('devices/leaf1/messages/events/', Buffer.alloc(300 * 1024, 1), { qos: 1 });
    await closed;
    leaf.end(true);

    // 2. A packet header announcing 100 MB: refused before the body is buffered.
    const tls = await import('node:tls');
    const huge = tls.connect({ port: hub.ports.tls, host: 'localhost', ca: hub.trustBundlePem });
    await new Promise((r) => huge.once('secureConnect', r));
    const hugeClosed = new Promise<void>((r) => huge.once('close', () => r()));
    // CONNECT is not even needed: fixed header 0x30 + remaining length 100,000,000.
    huge.write(Buffer.from([0x30, 0x80, 0xc2, 0xd7, 0x2f]));
    await hugeClosed;

    // 3. Garbage bytes.
    const junk = tls.connect({ port: hub.ports.tls, host: 'localhost', ca: hub.trustBundlePem });
    await new Promise((r) => junk.once('secureConnect', r));
    const junkClosed = new Promise<void>((r) => junk.once('close', () => r()));
    junk.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await junkClosed;

    // 4. Slowloris: TLS up, CONNECT never sent → dropped after connectTimeoutMs.
    const slow = tls.connect({ port: hub.ports.tls, host: 'localhost', ca: hub.trustBundlePem });
    const started = Date.now();
    await new Promise<void>((r) => slow.once('close', () => r()));
    expect(Date.now() - started).toBeLessThan(5_000);

    // 5. Too many properties and too long a topic.
    for (const topic of [
      `devices/leaf1/messages/events/${Array.from({ length: 100 }, (_, i) => `p${i}=1`).join('&')}`,
      `devices/leaf1/messages/events/k=${'x'.repeat(5000)}`,
    ]) {
      const c = await rawClient(hub, 'leaf1', leafToken());
      const done = new Promise<void>((r) => c.once('close', () => r()));
      c.publish(topic, 'x', { qos: 1 });
      await done;
      c.end(true);
    }

    // The well-behaved pair kept working throughout.
    await a.sendOutputEvent('o1', jsonMessage({ n: 2 }));
    await eventually(() => received.length === 2);
    expect(received).toEqual([1, 2]);
    expect(
      await hub.metrics.value('kedge_hub_messages_dropped_total', { reason: 'too_large' }),
    ).toBe(2);
    expect(
      await hub.metrics.value('kedge_hub_messages_dropped_total', {
        reason: 'too_many_properties',
      }),
    ).toBe(1);
    expect(
      await hub.metrics.value('kedge_hub_messages_dropped_total', { reason: 'topic_too_long' }),
    ).toBe(1);
    await a.close();
    await b.close();
  });

  it('disconnects a client that does not read its QoS1 deliveries, bounding its backlog', async () => {
    hub = await startHub({
      routes: {
        toSlow: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/slow/inputs/in1")',
        toB: 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")',
      },
      limits: { maxClientBacklogBytes: 256 * 1024 },
    });
    const { a, b, received } = await healthyPair(hub);
    const slow = await rawClient(hub, `${DEVICE}/slow`, await moduleToken(hub, 'slow'));
    await slow.subscribeAsync(`devices/${DEVICE}/modules/slow/inputs/#`, { qos: 1 });
    // Never read again: MQTT.js pipes its socket, so unpipe before pausing.
    (slow.stream as unknown as NodeJS.ReadableStream).unpipe();
    (slow.stream as unknown as NodeJS.ReadableStream).pause();
    const big = 'x'.repeat(200 * 1024);
    for (let n = 0; n < 150; n++) await a.sendOutputEvent('o1', jsonMessage({ n, big }));
    // The paused client cannot see its own disconnect; the hub's counter can.
    await eventually(
      async () =>
        (await hub.metrics.value('kedge_hub_messages_dropped_total', { reason: 'slow_client' })) >=
        1,
    );
    await eventually(() => received.length === 150, 10_000);
    expect(received).toEqual(Array.from({ length: 150 }, (_, n) => n));
    slow.stream.destroy();
    slow.end(true);
    await a.close();
    await b.close();
  });
});

describe('hub direct-method API (ModuleClient.invokeMethod)', () => {
  let hub: Hub;
  afterEach(async () => hub.stop());

  /** POST /twins/{d}[/modules/{m}]/methods as the SDK's MethodClient sends it. */
  function post(
    target: string,
    headers: Record<string, string>,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: 'localhost',
          port: hub.ports.methods!,
          method: 'POST',
          path: `/twins/${target}/methods`,
          headers: { 'content-type': 'application/json', ...headers },
          ca: hub.trustBundlePem,
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(text) as Record<string, unknown>,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(typeof body === 'string' ? body : JSON.stringify(body));
    });
  }

  it('lets a module call another module, and refuses bad callers and bad requests', async () => {
    hub = await startHub();
    const target = await sdkModule(hub, 'target');
    target.onMethod('echo', (req, res) => void res?.send(201, { echoed: req?.payload }));
    await sleep(200); // the method subscription reaches the hub
    const token = await moduleToken(hub, 'caller');
    const as = (moduleId: string, t = token): Record<string, string> => ({
      authorization: t,
      'x-ms-edge-moduleId': `${DEVICE}/${moduleId}`,
    });
    const call = { methodName: 'echo', payload: { n: 1 }, responseTimeoutInSeconds: 5 };

    await expect(post(`${DEVICE}/modules/target`, as('caller'), call)).resolves.toEqual({
      status: 200,
      body: { status: 201, payload: { echoed: { n: 1 } } },
    });
    // Not connected, or not listening for that method in time.
    await expect(post(`${DEVICE}/modules/ghost`, as('caller'), call)).resolves.toMatchObject({
      status: 404,
    });
    await expect(
      post(`${DEVICE}/modules/target`, as('caller'), { ...call, methodName: 'silent' }),
    ).resolves.toMatchObject({ status: 504 });
    // Callers: no token, a token of another module, a leaf device, a forged signature.
    await expect(post(`${DEVICE}/modules/target`, {}, call)).resolves.toMatchObject({
      status: 401,
    });
    await expect(post(`${DEVICE}/modules/target`, as('target'), call)).resolves.toMatchObject({
      status: 401,
    });
    await expect(
      post(
        `${DEVICE}/modules/target`,
        { authorization: leafToken(), 'x-ms-edge-moduleId': 'leaf1' },
        call,
      ),
    ).resolves.toMatchObject({ status: 403 });
    await expect(
      post(`${DEVICE}/modules/target`, as('caller', token.replace(/sig=[^&]+/, 'sig=AAAA')), call),
    ).resolves.toMatchObject({ status: 401 });
    // Requests: not JSON, no method name, a topic character in it, a timeout out of range, too big.
    for (const bad of [
      'not json',
      { payload: 1 },
      { methodName: 'a/b' },
      { methodName: 'echo', responseTimeoutInSeconds: 1 },
    ])
      await expect(post(`${DEVICE}/modules/target`, as('caller'), bad)).resolves.toMatchObject({
        status: 400,
      });
    await expect(
      post(`${DEVICE}/modules/target`, as('caller'), { ...call, payload: 'x'.repeat(200_000) }),
    ).resolves.toMatchObject({ status: 413 });
    expect(await hub.metrics.value('kedge_hub_method_api_requests_total', { code: '200' })).toBe(1);
    await target.close();
  });
});
