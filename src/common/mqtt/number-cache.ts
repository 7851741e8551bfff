/**
 * mqtt-packet (under aedes and MQTT.js) writes 16-bit numbers (packet ids, string lengths) from a
 * table of 65,536 two-byte Buffers it builds on its first write: about 7 MB of V8 heap that a
 * device keeps for its whole life, a tenth of its footprint target. Without the table each number
 * is a two-byte slice of Node's Buffer pool: about 70 ns more per PUBLISH plus PUBACK written,
 * under 0.5 % of a core at the hub's routing peak (docs/benchmarks.md, ADR 0026).
 * `cacheNumbers` is mqtt-packet's own switch, and process-wide.
 */
import mqttPacket from 'mqtt-packet';

/** Makes every MQTT writer in this process allocate numbers as it writes them. */
export function skipMqttNumberCache(): void {
  mqttPacket.writeToStream.cacheNumbers = false;
}
