import type { IncomingMessage } from 'node:http';
import { checkUpgrade, MQTT_WS_PATH } from './mqtt-ws.js';

function upgrade(url: string, headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return {
    url,
    method,
    headers: { upgrade: 'websocket', ...headers },
  } as unknown as IncomingMessage;
}

describe('MQTT over WebSockets upgrade check', () => {
  it('accepts the path and subprotocol the SDKs send, with a query and other offers', () => {
    expect(checkUpgrade(upgrade(MQTT_WS_PATH, { 'sec-websocket-protocol': 'mqtt' }))).toBe(
      undefined,
    );
    expect(
      checkUpgrade(
        upgrade('/%24iothub/websocket?iothub-no-client-cert=true', {
          'sec-websocket-protocol': 'mqttv3.1, mqtt',
        }),
      ),
    ).toBe(undefined);
  });

  it('refuses another path, method, upgrade or subprotocol with a status and a reason', () => {
    const mqtt = { 'sec-websocket-protocol': 'mqtt' };
    expect(checkUpgrade(upgrade('/mqtt', mqtt))).toMatchObject({ status: 404 });
    expect(checkUpgrade(upgrade('/%zz', mqtt))).toMatchObject({ status: 404 });
    expect(checkUpgrade(upgrade(MQTT_WS_PATH, mqtt, 'POST'))).toMatchObject({ status: 405 });
    expect(checkUpgrade(upgrade(MQTT_WS_PATH, { ...mqtt, upgrade: 'h2c' }))).toMatchObject({
      status: 400,
      message: 'only WebSocket upgrades are served here',
    });
    expect(checkUpgrade(upgrade(MQTT_WS_PATH, { 'sec-websocket-protocol': 'mqttv5' }))).toEqual({
      status: 400,
      message: 'WebSocket subprotocol mqtt is required (offered: mqttv5)',
    });
  });
});
