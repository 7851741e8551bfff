// A simulated temperature sensor module, written against the Azure IoT device SDK as any IoT Edge
// module is. Sends {temperature, humidity, seq} on output "temperatureOutput".
//   SEND_INTERVAL_MS (default 1000), MESSAGE_COUNT (default unlimited),
//   TEMPERATURES: comma-separated values to cycle through (default 20,30).
//   PING_MODULE: a module on the same device to call the direct method "ping" on, with
//     ModuleClient.invokeMethod, until it answers 200; the answer goes out on output "pingResult".
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

const pingModule = process.env.PING_MODULE;
let pinged = !pingModule;
let pingInFlight = false;
async function ping() {
  pingInFlight = true;
  try {
    const result = await client.invokeMethod(process.env.IOTEDGE_DEVICEID, pingModule, {
      methodName: 'ping',
      payload: { from: process.env.IOTEDGE_MODULEID },
      responseTimeoutInSeconds: 10,
      connectTimeoutInSeconds: 5,
    });
    console.log(`ping ${pingModule}: ${JSON.stringify(result)}`);
    if (result.status !== 200) return;
    pinged = true;
    await client.sendOutputEvent('pingResult', new Message(JSON.stringify({ pingResult: result })));
  } catch (err) {
    console.error(`ping ${pingModule} failed: ${err.message}`);
  } finally {
    pingInFlight = false;
  }
}

let seq = 0;
const timer = setInterval(async () => {
  if (seq >= limit) {
    clearInterval(timer);
    return;
  }
  if (!pinged && !pingInFlight) void ping();
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
