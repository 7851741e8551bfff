/**
 * Port conflicts: every port `kedge node` listens on is either free or held by the running node.
 * Ownership comes from /proc (the socket's inode, then the process holding it), which works for
 * the node's own user and for root; the node is recognised as the process that also holds the
 * metrics port whose `/healthz` answers.
 */
import { readFile, readdir, readlink } from 'node:fs/promises';
import net from 'node:net';
import { fail, ok, warn, type CheckResult } from './result.js';

/** A port the node listens on, and the config key that sets it. */
export interface NodePort {
  port: number;
  host: string;
  key: string;
}

/** Who holds a port: a process id and its command line, when /proc says so. */
export interface PortOwner {
  pid: number;
  command: string;
}

/** What was found on one port. */
export type PortState =
  { state: 'free' } | { state: 'held'; owner?: PortOwner } | { state: 'unknown'; reason: string };

/** The running node, if its health endpoint answered. */
export interface RunningNodeInfo {
  pid?: number;
}

/** Hex port of `/proc/net/tcp` local addresses → the inodes of listening sockets on it. */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const LISTEN = '0A';
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const local = cols[1];
    if (!local || cols[3] !== LISTEN) continue;
    if (Number.parseInt(local.split(':')[1] ?? '', 16) === port && cols[9]) inodes.push(cols[9]);
  }
  return inodes;
}

async function fdsHold(pid: string, sockets: Set<string>): Promise<boolean> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (sockets.has(link)) return true;
  }
  return false;
}

/** The process listening on `port`, or undefined when /proc does not tell (another user's). */
export async function findPortOwner(port: number): Promise<PortOwner | undefined> {
  const tables = await Promise.all(
    ['/proc/net/tcp', '/proc/net/tcp6'].map((f) => readFile(f, 'utf8').catch(() => '')),
  );
  const sockets = new Set(
    tables.flatMap((t) => listeningInodes(t, port)).map((i) => `socket:[${i}]`),
  );
  if (sockets.size === 0) return undefined;
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    if (!(await fdsHold(pid, sockets))) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    return { pid: Number(pid), command: cmdline.split('\0').filter(Boolean).join(' ') };
  }
  return undefined;
}

/** `free`, `in-use`, or the error code (EACCES for a privileged port). */
function tryBind(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'EADDRINUSE' ? 'in-use' : (err.code ?? err.message)),
    );
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve('free')));
  });
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Probes one port: binds it when allowed, else connects to it. */
export async function probePort(p: NodePort): Promise<PortState> {
  const host = p.host === '0.0.0.0' || p.host === '::' ? '127.0.0.1' : p.host;
  const bound = await tryBind(host, p.port);
  if (bound === 'free') return { state: 'free' };
  if (bound === 'EADDRNOTAVAIL')
    return { state: 'unknown', reason: `${host} is not an address of this machine` };
  if (bound !== 'in-use' && !(await tryConnect(host, p.port))) return { state: 'free' };
  const owner = await findPortOwner(p.port);
  return { state: 'held', ...(owner ? { owner } : {}) };
}

function describeOwner(owner: PortOwner | undefined): string {
  return owner
    ? `pid ${owner.pid} (${owner.command.slice(0, 80)})`
    : 'a process kedge check cannot see (run as root to name it)';
}

/** Judges one port given what holds it and whether (and as which pid) the node runs. */
export function judgePort(
  p: NodePort,
  found: PortState,
  node: RunningNodeInfo | undefined,
): CheckResult {
  const name = `port ${p.port}`;
  const where = `${p.host}:${p.port} (${p.key})`;
  if (found.state === 'free')
    return node
      ? warn(
          name,
          `${where} is free although kedge node is running`,
          `the node did not open ${p.key}: see journalctl -u kedge-node`,
        )
      : ok(name, `${where} is free`);
  if (found.state === 'unknown')
    return warn(name, `${where}: ${found.reason}`, `check ${p.key} and hub.host`);
  if (node && found.owner && node.pid === found.owner.pid)
    return ok(name, `${where} is held by the running kedge node (pid ${node.pid})`);
  if (node && (!found.owner || node.pid === undefined))
    return warn(
      name,
      `${where} is in use and kedge node is running, but the owner cannot be confirmed`,
      "run kedge check as root (or as the node's user) to see which process holds it",
    );
  return fail(
    name,
    `${where} is held by ${describeOwner(found.owner)}, not by kedge node`,
    `stop that process, or give ${p.key} another port in the config`,
  );
}

/** Asks the node's local endpoint `/healthz`; true when it answers `ok`. */
export async function nodeHealthy(baseUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${baseUrl}/healthz`, { signal: AbortSignal.timeout(2_000) });
    return res.ok && (await res.text()).trim() === 'ok';
  } catch {
    return false;
  }
}
