/**
 * The gateway's TLS listener. It accepts TCP itself and runs TLS on top, so that every limit
 * holds before a byte reaches MQTT: a connection cap, a cap on connections per source address
 * that have not yet authenticated, and a hard deadline from accept to a finished handshake that
 * really closes the socket (a silent or trickling client cannot hold it open).
 */
import net from 'node:net';
import tls from 'node:tls';

/** Limits of {@link GuardedTlsListener}. */
export interface ListenerLimits {
  /** Open connections at most; further ones are closed at accept. */
  maxConnections: number;
  /** Connections per source address not yet authenticated, at most. */
  maxPreAuthPerSource: number;
  /** From TCP accept to a finished TLS handshake, at most. */
  handshakeTimeoutMs: number;
}

/** Why a connection was closed before MQTT saw it. */
export type RefusalReason = 'connection_cap' | 'source_cap' | 'handshake_timeout' | 'tls_error';

/** A TLS connection that finished its handshake. */
export interface AcceptedSocket {
  socket: tls.TLSSocket;
  /** Call once the client authenticated: it no longer counts against its source's cap. */
  authenticated(): void;
}

export class GuardedTlsListener {
  readonly #server: net.Server;
  readonly #limits: ListenerLimits;
  readonly #preAuth = new Map<string, number>();
  readonly #sockets = new Set<net.Socket>();
  #context: tls.SecureContext;

  constructor(
    limits: ListenerLimits,
    credentials: { certPem: string; keyPem: string },
    onAccept: (accepted: AcceptedSocket) => void,
    onRefuse: (reason: RefusalReason) => void,
  ) {
    this.#limits = limits;
    this.#context = tls.createSecureContext({ cert: credentials.certPem, key: credentials.keyPem });
    this.#server = net.createServer((raw) => this.#accept(raw, onAccept, onRefuse));
  }

  /** Open connections, authenticated or not. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Serves a new certificate to every connection from now on; open ones keep theirs. */
  setCredentials(credentials: { certPem: string; keyPem: string }): void {
    this.#context = tls.createSecureContext({ cert: credentials.certPem, key: credentials.keyPem });
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #accept(
    raw: net.Socket,
    onAccept: (accepted: AcceptedSocket) => void,
    onRefuse: (reason: RefusalReason) => void,
  ): void {
    const source = raw.remoteAddress ?? '?';
    if (this.#sockets.size >= this.#limits.maxConnections) return refuse(raw, 'connection_cap');
    if ((this.#preAuth.get(source) ?? 0) >= this.#limits.maxPreAuthPerSource)
      return refuse(raw, 'source_cap');
    this.#sockets.add(raw);
    this.#preAuth.set(source, (this.#preAuth.get(source) ?? 0) + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      const left = (this.#preAuth.get(source) ?? 1) - 1;
      if (left > 0) this.#preAuth.set(source, left);
      else this.#preAuth.delete(source);
    };
    const deadline = setTimeout(
      () => refuse(raw, 'handshake_timeout'),
      this.#limits.handshakeTimeoutMs,
    );
    raw.once('close', () => {
      clearTimeout(deadline);
      release();
      this.#sockets.delete(raw);
    });
    raw.on('error', () => raw.destroy());
    raw.setNoDelay(true);
    // X.509 devices present a client certificate; the CONNECT, not TLS, judges it (gateway.ts).
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.#context,
      requestCert: true,
      rejectUnauthorized: false,
    });
    socket.on('error', () => refuse(raw, 'tls_error'));
    socket.once('secure', () => {
      clearTimeout(deadline);
      onAccept({ socket, authenticated: release });
    });

    function refuse(socket: net.Socket, reason: RefusalReason): void {
      if (socket.destroyed) return;
      onRefuse(reason);
      socket.destroy();
    }
  }
}
