import {
  decodeStreamFrame,
  encodeStreamFrame,
  MAX_STREAM_CHUNK_BYTES,
  MAX_STREAM_FRAME_BYTES,
  STREAM_ACK_BYTES,
  STREAM_WINDOW_BYTES,
  StreamEndpoint,
  StreamKind,
} from './streams.js';

/** Two endpoints wired back to back, as the controller and the device are. */
function pair(): { a: StreamEndpoint; b: StreamEndpoint; sent: { a: Buffer[]; b: Buffer[] } } {
  const sent = { a: [] as Buffer[], b: [] as Buffer[] };
  const a: StreamEndpoint = new StreamEndpoint('s1', (f) => {
    sent.a.push(f);
    b.receive(decodeStreamFrame(f)!);
  });
  const b: StreamEndpoint = new StreamEndpoint('s1', (f) => {
    sent.b.push(f);
    a.receive(decodeStreamFrame(f)!);
  });
  return { a, b, sent };
}

describe('session frames over the device link', () => {
  it('encodes and decodes each kind with its id, channel and payload', () => {
    const frame = encodeStreamFrame(StreamKind.data, 'abc', Buffer.from('xyz'), 2);
    expect(decodeStreamFrame(frame)).toEqual({
      kind: StreamKind.data,
      channel: 2,
      id: 'abc',
      payload: Buffer.from('xyz'),
    });
    const close = decodeStreamFrame(encodeStreamFrame(StreamKind.close, 'abc', { exitCode: 3 }))!;
    expect(JSON.parse(close.payload.toString())).toEqual({ exitCode: 3 });
  });

  it('refuses malformed, unknown and oversized frames', () => {
    expect(decodeStreamFrame(Buffer.from([2, 0]))).toBeUndefined();
    expect(decodeStreamFrame(Buffer.from([99, 0, 0]))).toBeUndefined();
    expect(decodeStreamFrame(Buffer.from([2, 0, 10, 1]))).toBeUndefined();
    expect(decodeStreamFrame(Buffer.alloc(MAX_STREAM_FRAME_BYTES + 1, 2))).toBeUndefined();
  });

  it('splits data into bounded chunks and stops at a full window until the reader consumes', () => {
    const { a, b, sent } = pair();
    const received: Buffer[] = [];
    b.on('data', (_c, d) => received.push(d));
    expect(a.write(1, Buffer.alloc(STREAM_WINDOW_BYTES - 1))).toBe(true);
    expect(sent.a.every((f) => f.length <= MAX_STREAM_FRAME_BYTES)).toBe(true);
    expect(a.write(1, Buffer.alloc(MAX_STREAM_CHUNK_BYTES))).toBe(false);
    let drained = false;
    a.once('drain', () => (drained = true));
    // Acks come in batches: nothing until a batch is consumed.
    b.consumed(STREAM_ACK_BYTES - 1);
    expect(sent.b).toHaveLength(0);
    b.consumed(MAX_STREAM_CHUNK_BYTES);
    expect(sent.b).toHaveLength(1);
    expect(drained).toBe(true);
    expect(received.reduce((n, d) => n + d.length, 0)).toBe(
      STREAM_WINDOW_BYTES - 1 + MAX_STREAM_CHUNK_BYTES,
    );
  });

  it('carries eof, resize and one end, after which nothing is sent', () => {
    const { a, b, sent } = pair();
    const events: unknown[] = [];
    b.on('eof', (c) => events.push(['eof', c]));
    b.on('resize', (s) => events.push(['resize', s]));
    b.on('end', (e) => events.push(['end', e]));
    a.control(StreamKind.eof, {}, 0);
    a.control(StreamKind.resize, { width: 80, height: 0 });
    a.control(StreamKind.resize, { width: 80, height: 24 });
    b.end({ exitCode: 2 });
    expect(events).toEqual([
      ['eof', 0],
      ['resize', { width: 80, height: 24 }],
      ['end', { exitCode: 2 }],
    ]);
    expect(a.ended).toBe(true);
    const count = sent.a.length;
    expect(a.write(1, Buffer.from('late'))).toBe(false);
    a.end();
    expect(sent.a).toHaveLength(count);
  });
});
