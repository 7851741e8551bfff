// Reported twins as IoT Hub bounds them: size (the real SDK's twin API) and optimistic
// concurrency on `$version` (raw MQTT, as the Java SDK sends it).
import type { Twin } from 'azure-iot-device';
import type { MqttClient } from 'mqtt';
import type { Hub } from '../../src/edgenode/hub/index.js';
import { DEVICE, LEAF_KEY, leafToken, rawClient, sdkModule, startHub } from './helpers.js';

/** Over IoT Hub's 32 KB reported-properties limit. */
const OVERSIZED_BYTES = 33 * 1024;

function update(twin: Twin, patch: Record<string, unknown>): Promise<Error | undefined> {
  return new Promise((resolve) =>
    twin.properties.reported.update(patch, (err?: Error) => resolve(err ?? undefined)),
  );
}

describe('hub reported twin limits', () => {
  let hub: Hub;
  afterEach(async () => hub?.stop());

  it('refuses a reported patch that would make the twin larger than 32 KB and keeps the twin', async () => {
    hub = await startHub();
    const client = await sdkModule(hub, 'big');
    const twin = await client.getTwin();
    expect(await update(twin, { small: 1 })).toBeUndefined();
    const refused = await update(twin, { blob: 'x'.repeat(OVERSIZED_BYTES) });
    expect(refused).toBeInstanceOf(Error);
    expect(hub.twin({ deviceId: DEVICE, moduleId: 'big' }).reported).toEqual({
      small: 1,
      $version: 2,
    });
    expect(await update(twin, { small: 2 })).toBeUndefined();
    await client.close();
  });

  it('answers a reported patch that names a stale $version with 412 and a current one with 204', async () => {
    hub = await startHub({ leafDevices: [{ deviceId: 'leaf1', primaryKey: LEAF_KEY }] });
    const client = await rawClient(hub, 'leaf1', leafToken('leaf1'));
    await client.subscribeAsync('$iothub/twin/res/#', { qos: 0 });
    const patch = (rid: string, query: string, body: object) =>
      twinResponse(client, rid, () =>
        client.publish(
          `$iothub/twin/PATCH/properties/reported/?$rid=${rid}${query}`,
          JSON.stringify(body),
        ),
      );
    expect(await patch('1', '', { a: 1 })).toMatchObject({ status: 204, version: '2' });
    expect(await patch('2', '&$version=2', { a: 2 })).toMatchObject({ status: 204, version: '3' });
    const stale = await patch('3', '&$version=2', { a: 3 });
    expect(stale.status).toBe(412);
    expect(JSON.parse(stale.body)).toEqual({
      errorCode: 412,
      message: 'the patch applies to reported $version 2, but the twin is at 3',
    });
    expect((await patch('4', '&$version=x', { a: 4 })).status).toBe(400);
    expect(hub.twin({ deviceId: 'leaf1' }).reported).toEqual({ a: 2, $version: 3 });
    await client.endAsync();
  });
});

/** Publishes with `send` and waits for the twin response with request id `rid`. */
function twinResponse(
  client: MqttClient,
  rid: string,
  send: () => void,
): Promise<{ status: number; version: string | undefined; body: string }> {
  return new Promise((resolve) => {
    const onMessage = (topic: string, payload: Buffer): void => {
      const m = /^\$iothub\/twin\/res\/(\d+)\/\?(.*)$/.exec(topic);
      const query = new URLSearchParams(m?.[2] ?? '');
      if (!m || query.get('$rid') !== rid) return;
      client.off('message', onMessage);
      resolve({
        status: Number(m[1]),
        version: query.get('$version') ?? undefined,
        body: payload.toString(),
      });
    };
    client.on('message', onMessage);
    send();
  });
}
