/**
 * What a connection may hold before it has proved who it is: a hard deadline from TCP accept, and
 * a cap on such connections per source address. A silent socket, or a ClientHello trickled a byte
 * at a time (which resets Node's idle `handshakeTimeout` forever), is closed at the deadline; a
 * source that opens many of them is refused at accept, so it cannot exhaust the hub's descriptors.
 */
import type net from 'node:net';

/** Why the guard closed a connection (the `reason` label of the refusal counter). */
export type PreAuthRefusal = 'deadline' | 'per_source_limit';

/** Options for {@link PreAuthGuard}. */
export interface PreAuthGuardOptions {
  /** Time from TCP accept to {@link PreAuthGuard.passed} before the socket is destroyed (ms). */
  deadlineMs: number;
  /** Connections one source address may have open before they pass. */
  maxPerSource: number;
  /** Called for every connection the guard closes or refuses. */
  onRefused: (reason: PreAuthRefusal, source: string) => void;
}

/** One TCP connection, as both the raw socket and its TLS wrapper see it. */
function connectionKey(s: net.Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}

/** Tracks the not-yet-authenticated connections of one listener (or several of one service). */
export class PreAuthGuard {
  readonly #o: PreAuthGuardOptions;
  readonly #bySource = new Map<string, number>();
  readonly #pending = new Map<string, () => void>();

  constructor(options: PreAuthGuardOptions) {
    this.#o = options;
  }

  /** Call on the server's `connection` event with the raw TCP socket. */
  admit(socket: net.Socket): void {
    const source = socket.remoteAddress ?? 'unknown';
    const open = this.#bySource.get(source) ?? 0;
    if (open >= this.#o.maxPerSource) {
      this.#o.onRefused('per_source_limit', source);
      socket.destroy();
      return;
    }
    this.#bySource.set(source, open + 1);
    const key = connectionKey(socket);
    const timer = setTimeout(() => {
      this.#o.onRefused('deadline', source);
      socket.destroy();
    }, this.#o.deadlineMs);
    timer.unref();
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      this.#pending.delete(key);
      const left = (this.#bySource.get(source) ?? 1) - 1;
      if (left > 0) this.#bySource.set(source, left);
      else this.#bySource.delete(source);
    };
    this.#pending.set(key, release);
    socket.once('close', release);
  }

  /** The connection on `socket` (raw or its TLS wrapper) passed: no deadline, no longer counted. */
  passed(socket: net.Socket): void {
    this.#pending.get(connectionKey(socket))?.();
  }

  /** Connections not yet passed, for tests and metrics. */
  get pending(): number {
    return this.#pending.size;
  }
}
