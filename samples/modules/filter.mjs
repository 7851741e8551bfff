// A filter module: forwards messages from input "input1" to output "output1" when
// temperature > the twin's desired `threshold` (or THRESHOLD env, default 25). It reports the
// threshold it uses and answers the direct methods "ping" and "setThreshold".
import deviceSdk from 'azure-iot-device';
import mqttTransport from 'azure-iot-device-mqtt';

// The SDK is CommonJS, so its exports come through the default import.
const { ModuleClient, Message } = deviceSdk;
const { Mqtt } = mqttTransport;

let threshold = Number(process.env.THRESHOLD ?? 25);
const client = await ModuleClient.fromEnvironment(Mqtt);
client.on('error', (err) => console.error(`client error: ${err.message}`));
await client.open();
console.log(`filter ${process.env.IOTEDGE_MODULEID} connected, threshold ${threshold}`);

const twin = await client.getTwin();
const applyDesired = async (desired) => {
  if (typeof desired.threshold === 'number') threshold = desired.threshold;
  await new Promise((resolve) => twin.properties.reported.update({ threshold }, () => resolve()));
  console.log(`threshold now ${threshold}`);
};
// The SDK hands over the whole desired document once, then each patch as it comes.
twin.on('properties.desired', (desired) => {
  console.log(`desired ${JSON.stringify(desired)}`);
  void applyDesired(desired);
});

client.on('inputMessage', async (input, msg) => {
  await client.complete(msg);
  const body = JSON.parse(msg.getBytes().toString('utf8'));
  if (input !== 'input1' || !(body.temperature > threshold)) return;
  const out = new Message(JSON.stringify({ ...body, filteredBy: process.env.IOTEDGE_MODULEID }));
  out.contentType = 'application/json';
  out.contentEncoding = 'utf-8';
  await client.sendOutputEvent('output1', out);
  console.log(`forwarded ${body.seq}`);
});

client.onMethod('ping', (req, res) => res.send(200, { pong: true, payload: req.payload ?? null }));
client.onMethod('setThreshold', async (req, res) => {
  await applyDesired({ threshold: Number(req.payload?.threshold) });
  res.send(200, { threshold });
});
