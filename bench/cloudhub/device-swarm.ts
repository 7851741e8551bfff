/**
 * Connects many devices to a cloud hub the way `kedge node` does: each is the real CloudLink
 * (TLS, SAS-token password, the four device subscriptions, heartbeats), with no agent behind
 * it, so the devices sit idle. Devices are started in waves; the swarm reports how many links
 * are up after each wave.
 *
 * Reads commands on stdin, one a line: `connect <from> <to>` starts devices [from, to) and
 * answers `CONNECTED <n>` once all links it started are up (or `FAILED <reason>` after a limit).
 *
 * Environment: KEDGE_BENCH_SECRET, KEDGE_BENCH_URL, KEDGE_BENCH_CA.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../src/common/logger.js';
import { CloudLink } from '../../src/edgenode/cloudlink/link.js';
import { BENCH_NAMESPACE, deviceKey, deviceName } from './fleet-keys.js';

/** Links started per wave; the next wave waits until this one is connected. */
const WAVE = 100;
/** How long one wave may take to connect. */
const WAVE_LIMIT_MS = 60_000;

const secret = process.env.KEDGE_BENCH_SECRET!;
const url = process.env.KEDGE_BENCH_URL!;
const caPem = process.env.KEDGE_BENCH_CA!;
const log = silentLogger();
const links: CloudLink[] = [];

async function connectRange(from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += WAVE) {
    const wave: CloudLink[] = [];
    for (let i = start; i < Math.min(start + WAVE, to); i++) {
      const device = deviceName(i);
      const link = new CloudLink({
        url,
        namespace: BENCH_NAMESPACE,
        device,
        keyBase64: deviceKey(secret, BENCH_NAMESPACE, device),
        caPem,
        log,
      });
      await link.start(() => undefined);
      wave.push(link);
    }
    links.push(...wave);
    const deadline = Date.now() + WAVE_LIMIT_MS;
    while (wave.some((l) => !l.connected)) {
      if (Date.now() > deadline) throw new Error(`wave at ${start} did not connect in time`);
      await sleep(50);
    }
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, from, to] = line.trim().split(' ');
  if (cmd !== 'connect') return;
  connectRange(Number(from), Number(to)).then(
    () => process.stdout.write(`CONNECTED ${links.filter((l) => l.connected).length}\n`),
    (err: unknown) => process.stdout.write(`FAILED ${String(err)}\n`),
  );
});
process.stdin.once('end', () => process.exit(0));
process.stdout.write('SWARM_READY\n');
