// Reported twin size is bounded as IoT Hub bounds it; checked with the real SDK's twin API.
import type { Twin } from 'azure-iot-device';
import type { Hub } from '../../src/edgenode/hub/index.js';
import { DEVICE, sdkModule, startHub } from './helpers.js';

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
});
