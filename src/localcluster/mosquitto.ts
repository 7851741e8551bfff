/**
 * Runs a real Mosquitto 2 (Debian `mosquitto`) on 127.0.0.1 for tests and benchmarks: the
 * standalone `$upstream` sink and the performance reference.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const MOSQUITTO = '/usr/sbin/mosquitto';
const START_TIMEOUT_MS = 10_000;

/** A running Mosquitto. */
export interface Mosquitto {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A server certificate and key (PEM files) for a TLS-only listener. */
export interface MosquittoTls {
  certFile: string;
  keyFile: string;
}

/**
 * Starts Mosquitto with `persistence` in `dir` (so sessions and queued messages survive a
 * restart) and no per-client queue limit; with `tls`, the listener speaks only TLS.
 */
export async function startMosquitto(
  dir: string,
  port: number,
  persistence = true,
  tls?: MosquittoTls,
): Promise<Mosquitto> {
  if (!existsSync(MOSQUITTO))
    throw new Error('mosquitto is not installed: apt-get install mosquitto');
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      `persistence ${persistence}`,
      `persistence_location ${dir}/`,
      'max_queued_messages 0',
      'max_inflight_messages 0',
      'set_tcp_nodelay true',
      'user root',
      'log_dest none',
      ...(tls ? [`certfile ${tls.certFile}`, `keyfile ${tls.keyFile}`] : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(MOSQUITTO, ['-c', conf], { stdio: 'ignore' });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepting(port))) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error('mosquitto did not start');
    await sleep(50);
  }
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
