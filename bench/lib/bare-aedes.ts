// A bare aedes broker (in-memory persistence, no auth, TCP_NODELAY) as its own process: the
// substrate the hub is built on, for comparison. Prints `BARE_AEDES_READY <port>`.
import { Aedes } from 'aedes';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

const broker = await Aedes.createBroker();
const server = net.createServer({ noDelay: true }, (socket) => broker.handle(socket));
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`BARE_AEDES_READY ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => process.exit(0));
