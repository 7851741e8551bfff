/**
 * SPDY/3 framing, as far as the Kubernetes streaming protocols use it: the API server (or
 * kubectl) opens streams with SYN_STREAM, the kubelet answers each with SYN_REPLY, data flows in
 * DATA frames with FIN for a half-close, RST_STREAM aborts a stream, PING is echoed and GOAWAY
 * ends the connection. Header blocks are zlib-compressed with the SPDY/3 dictionary, one
 * compression context per direction for the life of the connection (docs/adr/0027).
 */
import { deflateRawSync, inflateRawSync, constants as zlib } from 'node:zlib';

export const SPDY_VERSION = 3;

/** Control frame types (SPDY/3 §2.6). */
export const FrameType = {
  synStream: 1,
  synReply: 2,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goAway: 7,
  headers: 8,
  windowUpdate: 9,
} as const;

/** FLAG_FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS. */
export const FLAG_FIN = 0x01;

/** RST_STREAM status codes used here. */
export const RstStatus = {
  protocolError: 1,
  refusedStream: 3,
  cancel: 5,
  internalError: 6,
} as const;

/** A SPDY frame header is 8 bytes, for control and data frames alike. */
export const FRAME_HEADER_BYTES = 8;
/**
 * The largest frame accepted from a peer. Go's spdystream writes DATA frames of at most 32 KiB and
 * header blocks of a few hundred bytes; anything past this is a broken or hostile peer.
 */
export const MAX_FRAME_BYTES = 1 << 20;
/** A header block inflated past this is refused: the streaming protocols send a handful of names. */
const MAX_HEADER_BLOCK_BYTES = 64 * 1024;
/** zlib's window: how far back a compressed block may refer. */
const ZLIB_WINDOW_BYTES = 32 * 1024;

/** Header names (lowercase) to values. */
export type SpdyHeaders = Record<string, string>;

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'synStream'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'synReply'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'headers'; streamId: number; fin: boolean; headers: SpdyHeaders }
  | { type: 'rstStream'; streamId: number; status: number }
  | { type: 'ping'; id: number }
  | { type: 'goAway'; lastStreamId: number; status: number }
  | { type: 'settings' }
  | { type: 'windowUpdate'; streamId: number; delta: number }
  | { type: 'unknown'; frameType: number };

/** The SPDY/3 header compression dictionary (SPDY/3 §2.6.10.1): length-prefixed names, then text. */
export const SPDY3_DICTIONARY: Buffer = (() => {
  const names = [
    'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset',
    'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization',
    'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language',
    'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
    'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
    'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma',
    'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after', 'server', 'te',
    'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
    'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url',
    'public', 'set-cookie', 'keep-alive', 'origin',
  ]; // prettier-ignore
  const text =
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
    '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request' +
    '401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented' +
    '503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ' +
    'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,' +
    'application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=' +
    'gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';
  const parts = names.flatMap((n) => [u32(n.length), Buffer.from(n, 'latin1')]);
  return Buffer.concat([...parts, Buffer.from(text, 'latin1')]);
})();

/** A protocol violation by the peer; the connection is ended. */
export class SpdyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpdyProtocolError';
  }
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * One direction's header compression context. A sync flush ends every block on a byte boundary
 * with no pending state, so each block is raw deflate data that only refers back into the last
 * 32 KiB of everything before it (the dictionary first): the window is all the state there is.
 */
class HeaderContext {
  #window: Buffer = SPDY3_DICTIONARY;
  #started = false;

  #remember(plain: Buffer): void {
    const all = Buffer.concat([this.#window, plain]);
    this.#window = all.subarray(Math.max(0, all.length - ZLIB_WINDOW_BYTES));
  }

  /** Compresses one block, continuing the stream the peer inflates. */
  compress(plain: Buffer): Buffer {
    const raw = deflateRawSync(plain, {
      dictionary: this.#window,
      finishFlush: zlib.Z_SYNC_FLUSH,
    });
    this.#remember(plain);
    if (this.#started) return raw;
    this.#started = true;
    // zlib header: deflate, 32 KiB window, preset dictionary (FDICT), then the dictionary's Adler-32.
    return Buffer.concat([Buffer.from([0x78, 0xbb]), u32(adler32(SPDY3_DICTIONARY)), raw]);
  }

  /** Inflates one block of the peer's stream. */
  decompress(compressed: Buffer): Buffer {
    let raw = compressed;
    if (!this.#started) {
      this.#started = true;
      if (compressed.length < 2 || (compressed[0]! & 0x0f) !== 8)
        throw new SpdyProtocolError('header block is not zlib data');
      const hasDictionary = (compressed[1]! & 0x20) !== 0;
      if (hasDictionary && compressed.readUInt32BE(2) !== adler32(SPDY3_DICTIONARY))
        throw new SpdyProtocolError('header block uses an unknown dictionary');
      raw = compressed.subarray(hasDictionary ? 6 : 2);
    }
    let plain: Buffer;
    try {
      plain = inflateRawSync(raw, {
        dictionary: this.#window,
        finishFlush: zlib.Z_SYNC_FLUSH,
        maxOutputLength: MAX_HEADER_BLOCK_BYTES,
      });
    } catch (err) {
      throw new SpdyProtocolError(`bad header block: ${(err as Error).message}`);
    }
    this.#remember(plain);
    return plain;
  }
}

/** Serializes a header block: count, then length-prefixed lowercase names and values. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts = [u32(entries.length)];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses a header block; several values of one name (NUL-separated) are kept joined by commas. */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const out: SpdyHeaders = {};
  let at = 0;
  const read = (): string => {
    if (at + 4 > block.length) throw new SpdyProtocolError('truncated header block');
    const len = block.readUInt32BE(at);
    at += 4;
    if (at + len > block.length) throw new SpdyProtocolError('truncated header block');
    const s = block.toString('utf8', at, at + len);
    at += len;
    return s;
  };
  if (block.length < 4) throw new SpdyProtocolError('truncated header block');
  const count = block.readUInt32BE(0);
  at = 4;
  for (let i = 0; i < count; i++) {
    const name = read().toLowerCase();
    out[name] = read().split('\0').join(',');
  }
  return out;
}

/**
 * Reads and writes the frames of one connection, keeping its two header compression contexts.
 * `push` takes bytes as they arrive and returns every frame completed by them.
 */
export class SpdyCodec {
  readonly #inflate = new HeaderContext();
  readonly #deflate = new HeaderContext();
  #pending: Buffer = Buffer.alloc(0);

  /** Frames completed by `chunk`. @throws SpdyProtocolError on a malformed or oversized frame. */
  push(chunk: Buffer): Frame[] {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.#pending.length >= FRAME_HEADER_BYTES) {
      const length = this.#pending.readUInt32BE(4) & 0xffffff;
      if (length > MAX_FRAME_BYTES)
        throw new SpdyProtocolError(`frame of ${length} bytes is over the limit`);
      if (this.#pending.length < FRAME_HEADER_BYTES + length) break;
      const frame = this.#pending.subarray(0, FRAME_HEADER_BYTES + length);
      this.#pending = this.#pending.subarray(FRAME_HEADER_BYTES + length);
      frames.push(this.#parse(frame));
    }
    return frames;
  }

  /** Bytes received but not yet a whole frame. */
  get buffered(): number {
    return this.#pending.length;
  }

  #parse(frame: Buffer): Frame {
    const flags = frame[4]!;
    const body = frame.subarray(FRAME_HEADER_BYTES);
    if ((frame[0]! & 0x80) === 0) {
      return {
        type: 'data',
        streamId: frame.readUInt32BE(0) & 0x7fffffff,
        fin: (flags & FLAG_FIN) !== 0,
        data: Buffer.from(body),
      };
    }
    const version = frame.readUInt16BE(0) & 0x7fff;
    if (version !== SPDY_VERSION) throw new SpdyProtocolError(`SPDY version ${version}`);
    return this.#control(frame.readUInt16BE(2), flags, body);
  }

  #control(type: number, flags: number, body: Buffer): Frame {
    const fin = (flags & FLAG_FIN) !== 0;
    const need = (bytes: number): void => {
      if (body.length < bytes) throw new SpdyProtocolError(`control frame ${type} too short`);
    };
    const id = (at: number): number => body.readUInt32BE(at) & 0x7fffffff;
    switch (type) {
      case FrameType.synStream:
        need(10);
        return { type: 'synStream', streamId: id(0), fin, headers: this.#headers(body, 10) };
      case FrameType.synReply:
        need(4);
        return { type: 'synReply', streamId: id(0), fin, headers: this.#headers(body, 4) };
      case FrameType.headers:
        need(4);
        return { type: 'headers', streamId: id(0), fin, headers: this.#headers(body, 4) };
      case FrameType.rstStream:
        need(8);
        return { type: 'rstStream', streamId: id(0), status: body.readUInt32BE(4) };
      case FrameType.ping:
        need(4);
        return { type: 'ping', id: body.readUInt32BE(0) };
      case FrameType.goAway:
        need(8);
        return { type: 'goAway', lastStreamId: id(0), status: body.readUInt32BE(4) };
      case FrameType.settings:
        return { type: 'settings' };
      case FrameType.windowUpdate:
        need(8);
        return { type: 'windowUpdate', streamId: id(0), delta: body.readUInt32BE(4) & 0x7fffffff };
      default:
        return { type: 'unknown', frameType: type };
    }
  }

  #headers(body: Buffer, at: number): SpdyHeaders {
    return decodeHeaderBlock(this.#inflate.decompress(body.subarray(at)));
  }

  /** A SYN_REPLY with the given headers. */
  synReply(streamId: number, headers: SpdyHeaders = {}, fin = false): Buffer {
    const block = this.#deflate.compress(encodeHeaderBlock(headers));
    return control(FrameType.synReply, fin ? FLAG_FIN : 0, [u32(streamId), block]);
  }

  /** A SYN_STREAM, as a client opens a stream (tests play the API server with it). */
  synStream(streamId: number, headers: SpdyHeaders, fin = false): Buffer {
    const block = this.#deflate.compress(encodeHeaderBlock(headers));
    const priorityAndSlot = Buffer.alloc(2);
    return control(FrameType.synStream, fin ? FLAG_FIN : 0, [
      u32(streamId),
      u32(0),
      priorityAndSlot,
      block,
    ]);
  }
}

function control(type: number, flags: number, parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  header.writeUInt16BE(type, 2);
  header.writeUInt32BE(((flags & 0xff) << 24) | body.length, 4);
  return Buffer.concat([header, body]);
}

/** A DATA frame; `fin` half-closes the stream. */
export function dataFrame(streamId: number, data: Buffer, fin = false): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(streamId & 0x7fffffff, 0);
  header.writeUInt32BE((((fin ? FLAG_FIN : 0) & 0xff) << 24) | data.length, 4);
  return data.length ? Buffer.concat([header, data]) : header;
}

export function rstStreamFrame(streamId: number, status: number): Buffer {
  return control(FrameType.rstStream, 0, [u32(streamId), u32(status)]);
}

export function pingFrame(id: number): Buffer {
  return control(FrameType.ping, 0, [u32(id)]);
}

export function goAwayFrame(lastStreamId: number, status = 0): Buffer {
  return control(FrameType.goAway, 0, [u32(lastStreamId), u32(status)]);
}
