/**
 * MQTT over WebSockets, the Azure IoT SDKs' `MqttWs` transport, for networks that only open 443.
 * The SDKs dial `wss://{gateway}:443/$iothub/websocket` with subprotocol `mqtt`; the upgrade
 * arrives on the method API's HTTPS server (the same port), and the WebSocket's byte stream goes
 * to the same broker as the TLS listener, behind the same authentication, ACLs, pre-auth guard
 * and packet-size cap.
 *
 * `ws` is imported on the first upgrade, so a hub that never sees one does not load it.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../../common/logger.js';
import type { HubMetrics } from './metrics.js';

/** The request path the SDKs (Node, Python, C, Java, .NET) use. */
export const MQTT_WS_PATH = '/$iothub/websocket';
/** The WebSocket subprotocol MQTT 3.1.1 clients ask for (RFC 6455, MQTT 3.1.1 §6). */
export const MQTT_WS_SUBPROTOCOL = 'mqtt';

/** An upgrade the hub answers with an HTTP error instead of a WebSocket. */
export interface UpgradeRefusal {
  status: number;
  message: string;
}

/** What the WebSocket endpoint needs from the hub. */
export interface MqttWsDeps {
  /**
   * Counts the upgraded socket as a not-yet-authenticated MQTT connection (deadline and
   * per-source cap); false when the guard refused it (the socket is then destroyed).
   */
  admit: (socket: net.Socket) => boolean;
  /** Hands the MQTT byte stream to the broker; `socket` is the TLS socket under it. */
  handle: (stream: Duplex, socket: net.Socket) => void;
  /** Largest WebSocket message accepted (bytes): the broker's largest MQTT packet. */
  maxMessageBytes: number;
  metrics: HubMetrics;
  log: Logger;
}

function offeredSubprotocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  return header === undefined ? [] : header.split(',').map((p) => p.trim());
}

function requestPath(req: IncomingMessage): string {
  const pathname = new URL(req.url ?? '/', 'https://hub').pathname;
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** Why an upgrade request is not an MQTT WebSocket; undefined when it is one. */
export function checkUpgrade(req: IncomingMessage): UpgradeRefusal | undefined {
  const at = requestPath(req);
  if (at !== MQTT_WS_PATH)
    return {
      status: 404,
      message: `no WebSocket endpoint at ${at}; MQTT over WebSockets is at ${MQTT_WS_PATH}`,
    };
  if (req.method !== 'GET') return { status: 405, message: 'a WebSocket upgrade must be a GET' };
  if (req.headers.upgrade?.toLowerCase() !== 'websocket')
    return { status: 400, message: 'only WebSocket upgrades are served here' };
  const offered = offeredSubprotocols(req);
  if (!offered.includes(MQTT_WS_SUBPROTOCOL))
    return {
      status: 400,
      message: `WebSocket subprotocol ${MQTT_WS_SUBPROTOCOL} is required (offered: ${offered.join(', ') || 'none'})`,
    };
  return undefined;
}

/** Answers an upgrade request with an HTTP error and closes the connection. */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  const body = JSON.stringify({ message: refusal.message });
  socket.end(
    [
      `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`,
      'Connection: close',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

/** The parts of `ws` the endpoint uses, loaded on the first upgrade. */
interface WsLibrary {
  server: WebSocketServer;
  toStream: (ws: WebSocket) => Duplex;
}

/** The `/$iothub/websocket` endpoint on the method API's HTTPS server. */
export class MqttWebSockets {
  readonly #d: MqttWsDeps;
  #lib: Promise<WsLibrary> | undefined;

  constructor(deps: MqttWsDeps) {
    this.#d = deps;
  }

  /** The https server's `upgrade` listener. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const tlsSocket = socket as net.Socket;
    const refusal = checkUpgrade(req);
    if (refusal) {
      this.#d.metrics.refused.inc({ listener: 'websocket', reason: 'bad_upgrade' });
      this.#d.log.debug({ url: req.url, refusal }, 'WebSocket upgrade refused');
      refuseUpgrade(socket, refusal);
      return;
    }
    if (!this.#d.admit(tlsSocket)) return;
    this.#library().then(
      ({ server, toStream }) => {
        if (tlsSocket.destroyed) return; // the pre-auth deadline passed while `ws` loaded
        server.handleUpgrade(req, tlsSocket, head, (ws) => this.#d.handle(toStream(ws), tlsSocket));
      },
      (err: unknown) => {
        this.#d.log.error({ err }, 'cannot load the WebSocket library');
        refuseUpgrade(socket, { status: 503, message: 'MQTT over WebSockets is unavailable' });
      },
    );
  }

  #library(): Promise<WsLibrary> {
    this.#lib ??= import('ws').then(({ WebSocketServer, createWebSocketStream }) => ({
      server: new WebSocketServer({
        noServer: true,
        // A WebSocket message is buffered whole before it is handed on: cap it at the largest
        // MQTT packet, so a client cannot make the hub hold more than that before authenticating.
        maxPayload: this.#d.maxMessageBytes,
        // ws's default for servers, stated: MQTT packets are small, and zlib state per
        // connection would cost memory on a small device.
        perMessageDeflate: false,
        handleProtocols: (offered) =>
          offered.has(MQTT_WS_SUBPROTOCOL) ? MQTT_WS_SUBPROTOCOL : false,
      }),
      toStream: (ws) => createWebSocketStream(ws),
    }));
    return this.#lib;
  }
}
