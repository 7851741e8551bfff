// A simulated temperature sensor module, written against the Azure IoT device SDK as any IoT Edge
// module is. Sends {temperature, humidity, seq} on output "temperatureOutput".
//   SEND_INTERVAL_MS (default 1000), MESSAGE_COUNT (default unlimited),
//   TEMPERATURES: comma-separated values to cycle through (default 20,30).
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';

// The SDK is CommonJS, so its exports come through the default import.
const { ModuleClient, Message } = deviceSdk;
const { Mqtt } = mqttTransport;

const intervalMs = Number(process.env.SEND_INTERVAL_MS ?? 1000);
const limit = Number(process.env.MESSAGE_COUNT ?? Infinity);
const temperatures = (process.env.TEMPERATURES ?? '20,30').split(',').map(Number);

const client = await ModuleClient.fromEnvironment(Mqtt);
client.on('error', (err) => console.error(`client error: ${err.message}`));
await client.open();
console.log(`sensor ${process.env.IOTEDGE_MODULEID} connected`);

let seq = 0;
const timer = setInterval(async () => {
  if (seq >= limit) {
    clearInterval(timer);
    return;
  }
  const temperature = temperatures[seq % temperatures.length];
  const body = JSON.stringify({ temperature, humidity: 40 + (seq % 10), seq });
  const message = new Message(body);
  message.contentType = 'application/json';
  message.contentEncoding = 'utf-8';
  message.properties.add('sensorKind', 'temperature');
  seq += 1;
  try {
    await client.sendOutputEvent('temperatureOutput', message);
    console.log(`sent ${body}`);
  } catch (err) {
    console.error(`send failed: ${err.message}`);
  }
}, intervalMs);
