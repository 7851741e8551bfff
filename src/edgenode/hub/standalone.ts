/**
 * Runs one hub as its own process: `node dist/edgenode/hub/standalone.js <options.json>`. Prints
 * `KEDGE_HUB_READY {ports}` on stdout once listening, stops cleanly on SIGTERM/SIGINT. Used by the
 * crash-recovery tests and benchmarks (a real process that can be `kill -9`'d).
 */
import { readFileSync } from 'node:fs';
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
  process.stdout.write(`KEDGE_HUB_READY ${JSON.stringify(hub.ports)}\n`);
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
