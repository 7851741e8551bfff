/**
 * Runs one hub as its own process: `node dist/edgenode/hub/standalone.js <options.json>`. Prints
 * `KEDGE_HUB_READY {ports}` on stdout once listening, stops cleanly on SIGTERM/SIGINT. Used by the
 * crash-recovery tests and benchmarks (a real process that can be `kill -9`'d).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { Hub } from './hub.js';
import type { HubOptionsInput } from './options.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: standalone.js <options.json>\n');
  process.exit(2);
}
try {
  const options = JSON.parse(readFileSync(file, 'utf8')) as HubOptionsInput;
  const hub = new Hub(options);
  await hub.start();
  // Optional Prometheus endpoint on 127.0.0.1 (KEDGE_HUB_METRICS_PORT, 0 = any free port).
  let metricsPort: number | null = null;
  if (process.env.KEDGE_HUB_METRICS_PORT !== undefined) {
    const server = http.createServer((_req, res) => {
      void hub.metrics.registry.metrics().then((text) => res.end(text));
    });
    await new Promise<void>((r) =>
      server.listen(Number(process.env.KEDGE_HUB_METRICS_PORT), '127.0.0.1', r),
    );
    metricsPort = (server.address() as AddressInfo).port;
  }
  process.stdout.write(
    `KEDGE_HUB_READY ${JSON.stringify({ ...hub.ports, metrics: metricsPort })}\n`,
  );
  const stop = (): void => {
    hub.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} catch (err) {
  process.stderr.write(`kedge hub: ${errorMessage(err)}\n`);
  process.exit(1);
}
