// A bare Node.js TLS server that only holds its connections (no MQTT): the floor any Node process
// terminating TLS itself pays per connection. argv: cert file, key file. Prints
// `BARE_TLS_READY <port>`. With --expose-gc, SIGUSR2 runs a full GC (before a memory reading).
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

const [certFile, keyFile] = process.argv.slice(2) as [string, string];
const held = new Set<tls.TLSSocket>();
const server = tls.createServer(
  { cert: readFileSync(certFile), key: readFileSync(keyFile), minVersion: 'TLSv1.2' },
  (socket) => {
    held.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => held.delete(socket));
  },
);
server.on('connection', (socket) => socket.setNoDelay(true));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`BARE_TLS_READY ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
process.on('SIGUSR2', () => (globalThis as { gc?: () => void }).gc?.());
