import { MAX_METHOD_TIMEOUT_SECS, parseCall } from './invoke.js';

describe('parseCall: the DirectMethodRequest body of edgedevices/invoke', () => {
  it('reads IoT Hub field names and defaults the timeout to 30 s', () => {
    expect(
      parseCall(JSON.stringify({ moduleId: 'filter', methodName: 'ping', payload: { a: 1 } })),
    ).toEqual({
      module: 'filter',
      method: 'ping',
      payload: { a: 1 },
      timeoutSecs: 30,
    });
  });

  it('names what is wrong with a bad body', () => {
    expect(parseCall('{')).toMatch(/must be a JSON DirectMethodRequest/);
    expect(parseCall('[1]')).toMatch(/must be a JSON DirectMethodRequest/);
    expect(parseCall('{"methodName":"ping"}')).toBe('moduleId is required');
    expect(parseCall('{"moduleId":"m"}')).toBe('methodName is required');
    const tooLong = {
      moduleId: 'm',
      methodName: 'x',
      responseTimeoutInSeconds: MAX_METHOD_TIMEOUT_SECS + 1,
    };
    expect(parseCall(JSON.stringify(tooLong))).toMatch(/responseTimeoutInSeconds must be/);
  });
});
