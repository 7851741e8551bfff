import { createHash } from 'node:crypto';
import { constants, createDeflate, createInflate } from 'node:zlib';
import {
  dataFrame,
  encodeHeaderBlock,
  goAwayFrame,
  MAX_FRAME_BYTES,
  pingFrame,
  rstStreamFrame,
  SPDY3_DICTIONARY,
  SpdyCodec,
  SpdyProtocolError,
} from './frames.js';

/** Compresses blocks as a standard zlib writer with the SPDY dictionary does: one stream, sync-flushed per block. */
async function zlibBlocks(blocks: Buffer[]): Promise<Buffer[]> {
  const deflate = createDeflate({ dictionary: SPDY3_DICTIONARY });
  const out: Buffer[] = [];
  for (const block of blocks) {
    const parts: Buffer[] = [];
    const onData = (c: Buffer): number => parts.push(c);
    deflate.on('data', onData);
    deflate.write(block);
    await new Promise<void>((r) => deflate.flush(constants.Z_SYNC_FLUSH, () => r()));
    await new Promise((r) => setImmediate(r));
    deflate.off('data', onData);
    out.push(Buffer.concat(parts));
  }
  deflate.destroy();
  return out;
}

function synStream(streamId: number, compressed: Buffer, flags = 0): Buffer {
  const body = Buffer.alloc(10 + compressed.length);
  body.writeUInt32BE(streamId, 0);
  compressed.copy(body, 10);
  const header = Buffer.alloc(8);
  header.writeUInt16BE(0x8003, 0);
  header.writeUInt16BE(1, 2);
  header.writeUInt32BE((flags << 24) | body.length, 4);
  return Buffer.concat([header, body]);
}

describe('SPDY/3 framing', () => {
  it('builds the header dictionary of the SPDY/3 draft byte for byte', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(createHash('sha256').update(SPDY3_DICTIONARY).digest('hex')).toBe(
      '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02',
    );
  });

  it('reads header blocks from one zlib stream with the dictionary, as Go writes them', async () => {
    const blocks = await zlibBlocks([
      encodeHeaderBlock({ streamtype: 'error' }),
      encodeHeaderBlock({ streamtype: 'stdout' }),
      encodeHeaderBlock({ streamtype: 'data', port: '8080', requestid: '0' }),
    ]);
    const codec = new SpdyCodec();
    const wire = Buffer.concat(blocks.map((b, i) => synStream(2 * i + 1, b)));
    // Byte by byte: frames may arrive split anywhere.
    const frames = [...wire].flatMap((byte) => codec.push(Buffer.from([byte])));
    expect(frames).toEqual([
      { type: 'synStream', streamId: 1, fin: false, headers: { streamtype: 'error' } },
      { type: 'synStream', streamId: 3, fin: false, headers: { streamtype: 'stdout' } },
      {
        type: 'synStream',
        streamId: 5,
        fin: false,
        headers: { streamtype: 'data', port: '8080', requestid: '0' },
      },
    ]);
  });

  it('writes header blocks a standard zlib reader with the dictionary inflates', async () => {
    const codec = new SpdyCodec();
    const replies = [
      codec.synReply(1, { a: 'b' }),
      codec.synReply(3),
      codec.synReply(5, { a: 'b' }),
    ];
    const inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
    const plain: Buffer[] = [];
    inflate.on('data', (c: Buffer) => plain.push(c));
    for (const reply of replies) inflate.write(reply.subarray(12));
    await new Promise<void>((r) => inflate.flush(constants.Z_SYNC_FLUSH, () => r()));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(plain)).toEqual(
      Buffer.concat([
        encodeHeaderBlock({ a: 'b' }),
        encodeHeaderBlock({}),
        encodeHeaderBlock({ a: 'b' }),
      ]),
    );
  });

  it('round-trips data, reset, ping and goaway frames', () => {
    const codec = new SpdyCodec();
    const wire = Buffer.concat([
      dataFrame(3, Buffer.from('hello')),
      dataFrame(3, Buffer.alloc(0), true),
      rstStreamFrame(5, 5),
      pingFrame(7),
      goAwayFrame(9, 0),
    ]);
    expect(codec.push(wire)).toEqual([
      { type: 'data', streamId: 3, fin: false, data: Buffer.from('hello') },
      { type: 'data', streamId: 3, fin: true, data: Buffer.alloc(0) },
      { type: 'rstStream', streamId: 5, status: 5 },
      { type: 'ping', id: 7 },
      { type: 'goAway', lastStreamId: 9, status: 0 },
    ]);
  });

  it('refuses an oversized frame before buffering it', () => {
    const header = Buffer.alloc(8);
    header.writeUInt32BE(1, 0);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1, 4);
    expect(() => new SpdyCodec().push(header)).toThrow(SpdyProtocolError);
  });

  it('refuses a header block that is not zlib data', () => {
    expect(() => new SpdyCodec().push(synStream(1, Buffer.from('garbage')))).toThrow(
      SpdyProtocolError,
    );
  });
});
