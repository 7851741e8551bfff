import { parseC2d } from './c2d.js';

const NOW = Date.parse('2026-12-02T00:00:00Z');

describe('parseC2d', () => {
  it('sets IoT Hub system properties and the expiry from the TTL', () => {
    const parsed = parseC2d(
      JSON.stringify({
        deviceId: 'leaf-1',
        payload: 'aGk=',
        payloadEncoding: 'base64',
        properties: { kind: 'command' },
        messageId: 'm1',
        correlationId: 'c1',
        ttlInSeconds: 60,
      }),
      NOW,
    );
    expect(parsed).toEqual({
      send: {
        leaf: 'leaf-1',
        body: Buffer.from('hi'),
        ttlSecs: 60,
        properties: {
          kind: 'command',
          '$.mid': 'm1',
          '$.cid': 'c1',
          '$.to': '/devices/leaf-1/messages/devicebound',
          '$.exp': '2026-12-02T00:01:00.000Z',
        },
      },
      expiresAt: '2026-12-02T00:01:00.000Z',
    });
  });

  it('gives a message a fresh id and IoT Hub’s default TTL of one hour', () => {
    const parsed = parseC2d(JSON.stringify({ deviceId: 'leaf-1', payload: 'x' }), NOW);
    if (typeof parsed === 'string') throw new Error(parsed);
    expect(parsed.send.ttlSecs).toBe(3600);
    expect(parsed.send.properties['$.mid']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    ['', 'the request body must be a JSON CloudToDeviceMessage'],
    ['[1]', 'the request body must be a JSON CloudToDeviceMessage'],
    ['{"payload":"x"}', 'deviceId must name the leaf device'],
    ['{"deviceId":"a/b","payload":"x"}', 'deviceId must name the leaf device'],
    ['{"deviceId":"l"}', 'payload must be a string'],
    ['{"deviceId":"l","payload":"x","payloadEncoding":"hex"}', 'payloadEncoding must be'],
    ['{"deviceId":"l","payload":"x","ttlInSeconds":0}', 'ttlInSeconds must be a whole number'],
    ['{"deviceId":"l","payload":"x","ttlInSeconds":1.5}', 'ttlInSeconds must be a whole number'],
    ['{"deviceId":"l","payload":"x","properties":{"n":1}}', 'property n must be a string'],
    ['{"deviceId":"l","payload":"x","properties":{"$.mid":"m"}}', 'names starting with $'],
    ['{"deviceId":"l","payload":"x","messageId":7}', '$.mid must be a string'],
  ])('refuses %s', (body, message) => {
    expect(parseC2d(body, NOW)).toEqual(expect.stringContaining(message));
  });

  it('refuses a body over IoT Hub’s 64 KiB', () => {
    const body = JSON.stringify({ deviceId: 'l', payload: 'x'.repeat(64 * 1024 + 1) });
    expect(parseC2d(body, NOW)).toMatch(/65537 bytes; a C2D message carries at most 65536/);
  });
});
