/**
 * Connects many devices to a server the way `kedge node` does: each is the real CloudLink (TLS,
 * SAS-token password, the four device subscriptions, heartbeats), with no agent behind it, so
 * the devices sit idle. Devices are started in waves; the swarm reports how many links are up
 * after each wave. For the bare-TLS reference, it can instead open plain TLS sockets that send
 * nothing after the handshake.
 *
 * Reads commands on stdin, one a line:
 * `connect <from> <to>` starts CloudLinks [from, to) and answers `CONNECTED <n>` once all links
 * it started are up (or `FAILED <reason>` after a limit);
 * `tls <from> <to>` opens that many bare TLS sockets and answers `CONNECTED <n>` likewise.
 *
 * Environment: KEDGE_BENCH_SECRET, KEDGE_BENCH_URL (`mqtts://host:port`), KEDGE_BENCH_CA.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
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
const sockets: tls.TLSSocket[] = [];

async function connectRange(from: number, to: number): Promise<number> {
  for (let start = from; start < to; start += WAVE) {
    const wave: CloudLink[] = [];
    for (let i = start; i < Math.min(start + WAVE, to); i++) {
      const device = deviceName(i);
      const link = new CloudLink({
        url,
        namespace: BENCH_NAMESPACE,
        device,
        credentials: { keyBase64: deviceKey(secret, BENCH_NAMESPACE, device) },
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
  return links.filter((l) => l.connected).length;
}

function dialTls(host: string, port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca: caPem, servername: 'localhost' });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}

async function openTls(from: number, to: number): Promise<number> {
  const { hostname, port } = new URL(url);
  for (let start = from; start < to; start += WAVE) {
    const count = Math.min(WAVE, to - start);
    const wave = await Promise.all(
      Array.from({ length: count }, () => dialTls(hostname, Number(port))),
    );
    for (const s of wave) s.on('error', () => undefined);
    sockets.push(...wave);
  }
  return sockets.filter((s) => !s.destroyed).length;
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, from, to] = line.trim().split(' ');
  const run = cmd === 'connect' ? connectRange : cmd === 'tls' ? openTls : undefined;
  if (!run) return;
  run(Number(from), Number(to)).then(
    (n) => process.stdout.write(`CONNECTED ${n}\n`),
    (err: unknown) => process.stdout.write(`FAILED ${String(err)}\n`),
  );
});
process.stdin.once('end', () => process.exit(0));
process.stdout.write('SWARM_READY\n');
