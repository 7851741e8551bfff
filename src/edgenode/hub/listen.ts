/**
 * Binding one service to several explicit addresses (loopback, the module network's gateway, a
 * LAN address for leaf devices) on one port. The hub never binds the wildcard address unless it
 * is asked to in the configuration.
 */
import type net from 'node:net';
import { ErrorCode, KedgeError } from '../../common/errors.js';

/** A listen address setting: one address or a list. */
export type ListenAddresses = string | string[];

/** The address list of a setting, duplicates removed, order kept. */
export function addressList(value: ListenAddresses): string[] {
  return [...new Set(Array.isArray(value) ? value : [value])];
}

function listenOne(server: net.Server, port: number, host: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/**
 * Listens with a fresh server from `create` on each address. Port 0 picks a free port on the first
 * address, and the others then use that same port, so one URL works on every address.
 * @param setting names the option in errors (e.g. `hub.tlsPort`), so a busy or privileged port
 * reads as a configuration problem rather than a stack trace.
 * @returns the servers and the bound port; no servers (and the requested port) for an empty list.
 */
export async function listenOn(
  create: () => net.Server,
  port: number,
  hosts: string[],
  setting: string,
): Promise<{ servers: net.Server[]; port: number }> {
  const servers: net.Server[] = [];
  let bound = port;
  for (const host of hosts) {
    const server = create();
    try {
      bound = await listenOne(server, bound, host);
    } catch (err) {
      for (const s of servers) s.close();
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new KedgeError(
        ErrorCode.Unavailable,
        `cannot listen on ${host}:${bound} (${setting}): ${code}`,
        { cause: err },
      );
    }
    servers.push(server);
  }
  return { servers, port: bound };
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * The module network address to bind on an SDK port, as a list: empty when there is none, or when
 * `hosts` already covers it (the address itself or a wildcard) on that same port.
 */
export function sdkPortHosts(
  moduleHost: string | undefined,
  hosts: readonly string[],
  boundPort: number,
  sdkPort: number,
): string[] {
  if (moduleHost === undefined) return [];
  const covered = hosts.includes(moduleHost) || hosts.some((h) => WILDCARDS.has(h));
  return covered && boundPort === sdkPort ? [] : [moduleHost];
}
