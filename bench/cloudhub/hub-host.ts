/**
 * Hosts the controller's cloud hub on its own, so its process RSS is the hub's: the same
 * CloudHub class `kedge controller` runs, with device keys derived from a per-run secret instead
 * of read from Secrets. Reads commands on stdin, one a line, and answers on stdout:
 * `sample` → one JSON line of memory figures (after a full GC when --expose-gc is given);
 * `snapshot <file>` → writes a V8 heap snapshot there.
 *
 * Environment: KEDGE_BENCH_SECRET, KEDGE_BENCH_TLS (JSON {certPem, keyPem}).
 */
import { createInterface } from 'node:readline';
import { writeHeapSnapshot } from 'node:v8';
import { silentLogger } from '../../src/common/logger.js';
import { CloudHub } from '../../src/controller/cloudhub/server.js';
import { deviceKey } from './fleet-keys.js';

const secret = process.env.KEDGE_BENCH_SECRET!;
const tls = JSON.parse(process.env.KEDGE_BENCH_TLS!) as { certPem: string; keyPem: string };
const hub = await CloudHub.start({
  port: 0,
  host: '127.0.0.1',
  tls,
  keys: (ns, device) => [deviceKey(secret, ns, device)],
  log: silentLogger(),
});

/** Memory figures of this process, in KB. */
function sample(): Record<string, number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const kb = (n: number): number => Math.round(n / 1024);
  return {
    connected: hub.connectedDevices,
    rssKb: kb(m.rss),
    heapTotalKb: kb(m.heapTotal),
    heapUsedKb: kb(m.heapUsed),
    externalKb: kb(m.external),
    arrayBuffersKb: kb(m.arrayBuffers),
  };
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'sample') process.stdout.write(`SAMPLE ${JSON.stringify(sample())}\n`);
  // For looking into the per-connection cost: `snapshot <file>` writes a V8 heap snapshot.
  if (cmd === 'snapshot') process.stdout.write(`SNAPSHOT ${writeHeapSnapshot(arg)}\n`);
});
process.stdin.once('end', () => void hub.close().then(() => process.exit(0)));
process.stdout.write(`HUB_READY ${hub.port}\n`);
