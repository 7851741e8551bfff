/**
 * Interactive sessions with a module (`kubectl exec`, `attach`, `port-forward`) over the device
 * link: small binary frames, one session per id, flowing controller → NATS → the gateway holding
 * the device → MQTT → `kedge node`, and back. Both ends grant the other a window of unacknowledged
 * bytes, so a large copy or port-forward is paced by whoever reads slowest and no hop buffers
 * more than a window per session (docs/adr/0027-exec-and-port-forward.md).
 *
 * A frame is `kind (1 byte) | channel (1 byte) | id length (1 byte) | id | payload`.
 */
import { EventEmitter } from 'node:events';

/** What a frame does. */
export const StreamKind = {
  /** cloud → device: JSON {@link StreamOpen}. */
  open: 1,
  /** either way: raw bytes on `channel`. */
  data: 2,
  /** cloud → device: no more input on `channel` (stdin half-closed). */
  eof: 3,
  /** cloud → device: JSON {@link TerminalSize}. */
  resize: 4,
  /** either way: JSON `{ bytes }`, that many bytes of the other side's data were consumed. */
  ack: 5,
  /** either way: JSON {@link StreamEnd}; the session is over. */
  close: 6,
} as const;
export type StreamKind = (typeof StreamKind)[keyof typeof StreamKind];

/** Channels, numbered as Kubernetes numbers its streams. */
export const Channel = { stdin: 0, stdout: 1, stderr: 2 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

/** Data bytes in one frame at most; Go's SPDY writer sends 32 KiB frames, so one maps to one. */
export const MAX_STREAM_CHUNK_BYTES = 32 * 1024;
/** A frame larger than this is refused by every hop. */
export const MAX_STREAM_FRAME_BYTES = MAX_STREAM_CHUNK_BYTES + 1024;
/**
 * Unacknowledged bytes a sender may have in flight per session. 256 KiB keeps a `kubectl cp` over
 * a 50 ms link near 5 MB/s while bounding what each hop can hold for one session.
 */
export const STREAM_WINDOW_BYTES = 256 * 1024;
/** A receiver acknowledges once it consumed this much, so acks cost 1 frame per 64 KiB. */
export const STREAM_ACK_BYTES = STREAM_WINDOW_BYTES / 4;
/**
 * The cloud end sends a frame (an empty ack) at least this often, even to an idle shell, so the
 * device can tell a quiet session from one whose controller is gone.
 */
export const STREAM_KEEPALIVE_MS = 30_000;
/** A device ends a session it has heard nothing of for this long: its controller went away. */
export const STREAM_SILENCE_LIMIT_MS = 3 * STREAM_KEEPALIVE_MS;
/** Sessions one device serves at once; more are refused. */
export const MAX_SESSIONS_PER_DEVICE = 32;
const MAX_ID_BYTES = 64;

/** How a session starts. */
export interface StreamOpen {
  kind: 'exec' | 'attach' | 'portforward';
  /** The module (the pod's container). */
  module: string;
  /** exec: argv. */
  command?: string[];
  /** Whether the client sends stdin / wants stdout / stderr. */
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
  /** portforward: the module's TCP port. */
  port?: number;
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** How a session ended: an exit code, or an error that says why it could not run or went on. */
export interface StreamEnd {
  exitCode?: number;
  error?: string;
}

export interface StreamFrame {
  kind: StreamKind;
  channel: number;
  id: string;
  payload: Buffer;
}

export function encodeStreamFrame(
  kind: StreamKind,
  id: string,
  payload: Buffer | object = Buffer.alloc(0),
  channel = 0,
): Buffer {
  const idBytes = Buffer.from(id, 'utf8');
  if (idBytes.length > MAX_ID_BYTES) throw new Error('stream id too long');
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  return Buffer.concat([Buffer.from([kind, channel, idBytes.length]), idBytes, body]);
}

/** Parses a frame; undefined for one that is malformed, oversized or of an unknown kind. */
export function decodeStreamFrame(frame: Buffer): StreamFrame | undefined {
  if (frame.length < 3 || frame.length > MAX_STREAM_FRAME_BYTES) return undefined;
  const [kind, channel, idLength] = [frame[0]!, frame[1]!, frame[2]!];
  if (kind < StreamKind.open || kind > StreamKind.close || frame.length < 3 + idLength)
    return undefined;
  return {
    kind: kind as StreamKind,
    channel,
    id: frame.toString('utf8', 3, 3 + idLength),
    payload: frame.subarray(3 + idLength),
  };
}

/** A frame's JSON payload, or undefined. */
export function frameJson<T>(frame: StreamFrame): T | undefined {
  try {
    return JSON.parse(frame.payload.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

export interface StreamEndpointEvents {
  /** Bytes from the other side; call {@link StreamEndpoint.consumed} once they are delivered. */
  data: [channel: number, data: Buffer];
  eof: [channel: number];
  resize: [size: TerminalSize];
  /** The session is over, from either side. */
  end: [end: StreamEnd];
  /** The window has room again after {@link StreamEndpoint.write} returned false. */
  drain: [];
}

/**
 * One end of a session: sends and receives frames through `send`, keeps the window in both
 * directions, and ends once. Transport-agnostic; the controller and the device each wrap one.
 */
export class StreamEndpoint extends EventEmitter<StreamEndpointEvents> {
  #inFlight = 0;
  #toAck = 0;
  #ended = false;

  constructor(
    readonly id: string,
    private readonly send: (frame: Buffer) => void,
  ) {
    super();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sends data; false when the window is full (wait for `drain`). Data is never dropped. */
  write(channel: number, data: Buffer): boolean {
    if (this.#ended) return false;
    for (let at = 0; at < data.length; at += MAX_STREAM_CHUNK_BYTES) {
      const chunk = data.subarray(at, at + MAX_STREAM_CHUNK_BYTES);
      this.send(encodeStreamFrame(StreamKind.data, this.id, chunk, channel));
      this.#inFlight += chunk.length;
    }
    return this.#inFlight < STREAM_WINDOW_BYTES;
  }

  /** Sends a control frame (open, eof, resize). */
  control(kind: StreamKind, payload: object = {}, channel = 0): void {
    if (!this.#ended) this.send(encodeStreamFrame(kind, this.id, payload, channel));
  }

  /** Marks `bytes` of received data delivered, acknowledging them in batches. */
  consumed(bytes: number): void {
    this.#toAck += bytes;
    if (this.#toAck < STREAM_ACK_BYTES || this.#ended) return;
    this.send(encodeStreamFrame(StreamKind.ack, this.id, { bytes: this.#toAck }));
    this.#toAck = 0;
  }

  /** Ends the session, telling the other side unless it ended it. */
  end(end: StreamEnd = {}, tellPeer = true): void {
    if (this.#ended) return;
    if (tellPeer) this.send(encodeStreamFrame(StreamKind.close, this.id, end));
    this.#ended = true;
    this.emit('end', end);
  }

  /** Handles a frame from the other side. */
  receive(frame: StreamFrame): void {
    if (this.#ended) return;
    switch (frame.kind) {
      case StreamKind.data:
        return void this.emit('data', frame.channel, frame.payload);
      case StreamKind.eof:
        return void this.emit('eof', frame.channel);
      case StreamKind.resize:
        return this.#resize(frameJson<TerminalSize>(frame));
      case StreamKind.ack:
        return this.#acked(frameJson<{ bytes?: number }>(frame)?.bytes ?? 0);
      case StreamKind.close:
        return this.end(frameJson<StreamEnd>(frame) ?? {}, false);
      case StreamKind.open:
        return;
    }
  }

  #resize(size: TerminalSize | undefined): void {
    if (size && size.width > 0 && size.height > 0) this.emit('resize', size);
  }

  #acked(bytes: number): void {
    const wasFull = this.#inFlight >= STREAM_WINDOW_BYTES;
    this.#inFlight = Math.max(0, this.#inFlight - bytes);
    if (wasFull && this.#inFlight < STREAM_WINDOW_BYTES) this.emit('drain');
  }
}
