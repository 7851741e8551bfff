/**
 * The server end of one SPDY/3.1 connection after the HTTP upgrade: streams the peer opens,
 * replied to at once (as the kubelet does), with data, half-close and reset. Flow control is the
 * TCP connection's: Go's spdystream, the peer here, neither sends nor honours WINDOW_UPDATE, so
 * reading is paused while a consumer is behind (docs/adr/0027-exec-and-port-forward.md).
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import {
  dataFrame,
  goAwayFrame,
  pingFrame,
  rstStreamFrame,
  RstStatus,
  SpdyCodec,
  SpdyProtocolError,
  type Frame,
  type SpdyHeaders,
} from './frames.js';

/** Bytes of one outgoing DATA frame at most, as Go's spdystream writes them. */
const MAX_DATA_FRAME_BYTES = 32 * 1024;
/** A closed connection the peer does not close in this long is dropped. */
const CLOSE_GRACE_MS = 5_000;
/** Streams one connection may open; exec needs 5, each forwarded TCP connection 2. */
const MAX_STREAMS = 1_000;

export interface SpdyStreamEvents {
  data: [data: Buffer];
  /** The peer half-closed the stream (FIN). */
  end: [];
  /** The stream is gone: reset by either side, or the connection closed. */
  close: [];
}

/** One stream of a {@link SpdySession}. */
export class SpdyStream extends EventEmitter<SpdyStreamEvents> {
  #localEnded = false;
  #remoteEnded = false;
  #closed = false;

  constructor(
    readonly id: number,
    readonly headers: SpdyHeaders,
    private readonly session: SpdySession,
  ) {
    super();
  }

  /** The stream's `streamtype` header. */
  get type(): string {
    return this.headers.streamtype ?? '';
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Writes data; `done` runs once it left for the network. False when the connection's send
   * buffer is full: wait for the session's `drain`.
   */
  write(data: Buffer, done?: () => void): boolean {
    if (this.#localEnded || this.#closed) {
      done?.();
      return true;
    }
    let ok = true;
    for (let at = 0; at < data.length; at += MAX_DATA_FRAME_BYTES) {
      const last = at + MAX_DATA_FRAME_BYTES >= data.length;
      const frame = dataFrame(this.id, data.subarray(at, at + MAX_DATA_FRAME_BYTES));
      ok = this.session.send(frame, last ? done : undefined);
    }
    return ok;
  }

  /** Half-closes the stream from this side (FIN). */
  end(): void {
    if (this.#localEnded || this.#closed) return;
    this.#localEnded = true;
    this.session.send(dataFrame(this.id, Buffer.alloc(0), true));
    if (this.#remoteEnded) this.#finish();
  }

  /** Aborts the stream. */
  reset(status: number = RstStatus.cancel): void {
    if (this.#closed) return;
    this.session.send(rstStreamFrame(this.id, status));
    this.#finish();
  }

  /** @internal */
  remoteData(data: Buffer): void {
    if (!this.#remoteEnded && !this.#closed && data.length) this.emit('data', data);
  }

  /** @internal */
  remoteEnd(): void {
    if (this.#remoteEnded || this.#closed) return;
    this.#remoteEnded = true;
    this.emit('end');
    if (this.#localEnded) this.#finish();
  }

  /** @internal */
  finish(): void {
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.session.forget(this.id);
    this.emit('close');
  }
}

export interface SpdySessionEvents {
  stream: [stream: SpdyStream];
  /** The send buffer has room again. */
  drain: [];
  /** The connection is gone; `reason` when it broke rather than ended. */
  close: [reason?: string];
}

/** The server end of a SPDY/3.1 connection. */
export class SpdySession extends EventEmitter<SpdySessionEvents> {
  readonly #codec = new SpdyCodec();
  readonly #streams = new Map<number, SpdyStream>();
  #lastStreamId = 0;
  #pausers = 0;
  #closed = false;

  constructor(private readonly socket: Duplex) {
    super();
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.emit('drain'));
    socket.on('close', () => this.#teardown());
    socket.on('error', (err) => this.#teardown(err.message));
  }

  /** Feeds bytes that arrived with the upgrade request. */
  start(head: Buffer): void {
    if (head.length) this.#onData(head);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Writes a frame; false when the socket's buffer is full. */
  send(frame: Buffer, done?: () => void): boolean {
    if (this.#closed) {
      done?.();
      return true;
    }
    return this.socket.write(frame, done ? () => done() : undefined);
  }

  /** @internal */
  forget(id: number): void {
    this.#streams.delete(id);
  }

  /** Stops reading from the peer until as many {@link resume} calls: a consumer is behind. */
  pause(): void {
    if (this.#pausers++ === 0) this.socket.pause();
  }

  resume(): void {
    if (this.#pausers > 0 && --this.#pausers === 0) this.socket.resume();
  }

  /** Says goodbye and closes once what was written has left. */
  close(): void {
    if (this.#closed) return;
    this.socket.write(goAwayFrame(this.#lastStreamId));
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.#teardown();
  }

  #teardown(reason?: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const stream of [...this.#streams.values()]) stream.finish();
    this.emit('close', reason);
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#codec.push(chunk);
    } catch (err) {
      if (!(err instanceof SpdyProtocolError)) throw err;
      this.socket.write(goAwayFrame(this.#lastStreamId, RstStatus.protocolError));
      this.socket.destroy();
      return this.#teardown(err.message);
    }
    for (const frame of frames) this.#onFrame(frame);
  }

  #onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'synStream':
        return this.#onSynStream(frame.streamId, frame.headers, frame.fin);
      case 'data':
        return this.#onDataFrame(frame.streamId, frame.data, frame.fin);
      case 'rstStream':
        return this.#streams.get(frame.streamId)?.finish();
      case 'ping':
        return void this.send(pingFrame(frame.id));
      case 'goAway':
        return this.close();
      case 'headers':
        if (frame.fin) this.#streams.get(frame.streamId)?.remoteEnd();
        return;
      default:
        return; // SETTINGS, WINDOW_UPDATE, and what SPDY/3.1 lets a receiver ignore.
    }
  }

  #onDataFrame(id: number, data: Buffer, fin: boolean): void {
    const stream = this.#streams.get(id);
    stream?.remoteData(data);
    if (fin) stream?.remoteEnd();
  }

  #onSynStream(id: number, headers: SpdyHeaders, fin: boolean): void {
    // Client streams are odd and increasing (SPDY/3 §2.3.2).
    if (id % 2 === 0 || id <= this.#lastStreamId || this.#streams.size >= MAX_STREAMS) {
      this.send(rstStreamFrame(id, RstStatus.refusedStream));
      return;
    }
    this.#lastStreamId = id;
    const stream = new SpdyStream(id, headers, this);
    this.#streams.set(id, stream);
    this.send(this.#codec.synReply(id));
    this.emit('stream', stream);
    if (fin) stream.remoteEnd();
  }
}
