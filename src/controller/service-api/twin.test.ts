import { FakeDeviceBackend } from '../backend/fake.js';
import type { SubresourceRequest } from './server.js';
import { twinSubresource } from './twin.js';

const request = (method: string, body: unknown, moduleId = 'filter'): SubresourceRequest => ({
  namespace: 'ns',
  device: 'gw',
  method,
  body: typeof body === 'string' ? body : JSON.stringify(body),
  query: new URLSearchParams({ moduleId }),
  user: { user: 'alice', groups: [], extra: {} },
});

const messageOf = (reply: { body: object }) => (reply.body as { message?: string }).message;

describe('twin subresource', () => {
  it('composes desired patches and answers the twin with both sections', async () => {
    const backend = new FakeDeviceBackend();
    backend.twins.set('ns/gw/filter', { module: 'filter', version: 3, properties: { t: 1 } });
    const twin = twinSubresource(backend);
    await twin.handle(request('PATCH', { properties: { desired: { a: 1, b: { c: 2 } } } }));
    const reply = await twin.handle(request('PATCH', { properties: { desired: { a: null } } }));
    expect(reply).toEqual({
      status: 200,
      body: {
        apiVersion: 'api.kedge.io/v1alpha1',
        kind: 'ModuleTwin',
        deviceId: 'gw',
        moduleId: 'filter',
        properties: {
          desired: { b: { c: 2 }, $version: 2 },
          reported: { t: 1, $version: 3 },
        },
      },
    });
    // The device gets the layer with its deletion kept.
    expect(backend.desiredTwins.get('ns/gw/filter')?.properties).toEqual({ a: null, b: { c: 2 } });
  });

  it('refuses what is not a desired patch, saying what is wrong', async () => {
    const twin = twinSubresource(new FakeDeviceBackend());
    const cases: [unknown, RegExp][] = [
      ['not json', /must be a JSON object/],
      [{ tags: { x: 1 } }, /tags is not supported/],
      [{ properties: { reported: { x: 1 } } }, /only properties.desired may be patched/],
      [{ properties: { desired: [1] } }, /\{"properties":\{"desired"/],
    ];
    for (const [body, message] of cases) {
      const reply = await twin.handle(request('PATCH', body));
      expect(reply.status).toBe(400);
      expect(messageOf(reply)).toMatch(message);
    }
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 11; i++) deep = { d: deep };
    const tooDeep = await twin.handle(request('PATCH', { properties: { desired: deep } }));
    expect(messageOf(tooDeep)).toMatch(/nest deeper than 10 levels/);
  });

  it('refuses a patch that would grow the desired layer over 32 KiB, keeping what it had', async () => {
    const backend = new FakeDeviceBackend();
    const twin = twinSubresource(backend);
    await twin.handle(request('PATCH', { properties: { desired: { a: 'x'.repeat(20_000) } } }));
    const reply = await twin.handle(
      request('PATCH', { properties: { desired: { b: 'y'.repeat(20_000) } } }),
    );
    expect(reply.status).toBe(413);
    expect(messageOf(reply)).toMatch(/over the limit of 32768/);
    expect(Object.keys(backend.desiredTwins.get('ns/gw/filter')!.properties)).toEqual(['a']);
  });

  it('answers 404 for a twin with nothing in it and 400 without a module', async () => {
    const twin = twinSubresource(new FakeDeviceBackend());
    expect((await twin.handle(request('GET', ''))).status).toBe(404);
    expect((await twin.handle(request('GET', '', ''))).status).toBe(400);
  });
});
