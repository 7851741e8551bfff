import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Lowest port handed out; below are well-known and registered services. */
const LOWEST = 10_000;
const ATTEMPTS = 50;
/**
 * A port handed out is not handed out again for this long: callers bind it later, so two picks made
 * before either binds (a cluster's client, route and monitor ports) could otherwise collide.
 */
const REUSE_AFTER_MS = 10 * 60 * 1000;
const handedOut = new Map<number, number>();

/** Records `port` as handed out; false when it was handed out recently. */
function claim(port: number): boolean {
  const now = Date.now();
  for (const [p, at] of handedOut) if (now - at > REUSE_AFTER_MS) handedOut.delete(p);
  if (handedOut.has(port)) return false;
  handedOut.set(port, now);
  return true;
}

/**
 * The first port of the kernel's ephemeral range. Ports handed out below it cannot be taken by an
 * outgoing connection between the check and the moment a component binds them.
 */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    return low && low > LOWEST + 1000 ? low : 0;
  } catch {
    return 0;
  }
}

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(address && typeof address === 'object' ? address.port : undefined),
      );
    });
  });
}

/** A free TCP port on 127.0.0.1, outside the ephemeral range where the kernel allows it. */
export async function freePort(): Promise<number> {
  const end = ephemeralStart();
  for (let i = 0; end && i < ATTEMPTS; i++) {
    const port = await tryListen(LOWEST + Math.floor(Math.random() * (end - LOWEST)));
    if (port && claim(port)) return port;
  }
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = await tryListen(0);
    if (port && claim(port)) return port;
  }
  throw new Error('could not find a free port');
}

/** `port` when it is free on 127.0.0.1, else any free port. */
export async function freePortPreferring(port: number): Promise<number> {
  const free = await tryListen(port);
  if (free === undefined) return freePort();
  handedOut.set(free, Date.now());
  return free;
}
