/**
 * The one place that reaches into aedes' MQTT parser (aedes 1.x, mqtt-packet 9): it refuses a
 * packet as soon as its length header arrives, before the body is buffered, so a client cannot
 * make the gateway or the device hub hold a large packet in memory. The limit is a function, so it can be small
 * before authentication and larger after.
 */
import type { Client } from 'aedes';

interface ParserInternals {
  packet: { length: number };
  _parseLength: () => boolean;
  _emitError: (err: Error) => void;
}

/** Installs the guard on a client's parser; returns false when the parser is not as expected. */
export function guardPacketSize(
  client: Client,
  limitBytes: () => number,
  onRefused: (bytes: number, limit: number) => void,
): boolean {
  const parser = (client as Client & { _parser?: ParserInternals })._parser;
  if (typeof parser?._parseLength !== 'function') return false;
  const parseLength = parser._parseLength.bind(parser);
  parser._parseLength = () => {
    const ok = parseLength();
    const limit = limitBytes();
    if (ok && parser.packet.length > limit) {
      onRefused(parser.packet.length, limit);
      parser._emitError(new Error(`packet of ${parser.packet.length} bytes exceeds ${limit}`));
      return false;
    }
    return ok;
  };
  return true;
}
