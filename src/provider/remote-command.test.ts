import { duplexPair } from 'node:stream';
import {
  Channel,
  decodeStreamFrame,
  encodeStreamFrame,
  StreamEndpoint,
  StreamKind,
  type StreamOpen,
} from '../common/cloudlink/streams.js';
import {
  expectedStreams,
  exitStatus,
  parseResize,
  servePortForward,
  serveRemoteCommand,
} from './remote-command.js';
import { dataFrame, SpdyCodec, type Frame } from './spdy/frames.js';
import { SpdySession } from './spdy/session.js';

/** A SPDY client (the API server's part) on one end of an in-memory pipe, the server on the other. */
function connect(): { session: SpdySession; client: Client } {
  const [serverSide, clientSide] = duplexPair();
  const session = new SpdySession(serverSide);
  session.start(Buffer.alloc(0));
  const codec = new SpdyCodec();
  const frames: Frame[] = [];
  clientSide.on('data', (chunk: Buffer) => frames.push(...codec.push(chunk)));
  return {
    session,
    client: {
      frames,
      open: (id, headers) => void clientSide.write(codec.synStream(id, headers)),
      send: (id, data, fin = false) => void clientSide.write(dataFrame(id, data, fin)),
    },
  };
}

interface Client {
  frames: Frame[];
  open(id: number, headers: Record<string, string>): void;
  send(id: number, data: Buffer, fin?: boolean): void;
}

/** A device end that records what it got and answers when told. */
function device(): { opened: StreamOpen[]; sent: Buffer[]; endpoint?: StreamEndpoint } & {
  open: (o: Omit<StreamOpen, 'module'>) => StreamEndpoint;
} {
  const state = {
    opened: [] as StreamOpen[],
    sent: [] as Buffer[],
    endpoint: undefined as StreamEndpoint | undefined,
    open: (o: Omit<StreamOpen, 'module'>): StreamEndpoint => {
      state.opened.push({ ...o, module: 'm' });
      state.endpoint = new StreamEndpoint('s', (f) => state.sent.push(f));
      return state.endpoint;
    },
  };
  return state;
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 10));
const dataOn = (frames: Frame[], id: number): string =>
  frames
    .filter((f): f is Extract<Frame, { type: 'data' }> => f.type === 'data' && f.streamId === id)
    .map((f) => f.data.toString())
    .join('');
const fromDevice = (endpoint: StreamEndpoint, kind: StreamKind, payload: Buffer | object, ch = 0) =>
  endpoint.receive(decodeStreamFrame(encodeStreamFrame(kind, 's', payload, ch))!);

describe('remote command protocol (v4.channel.k8s.io)', () => {
  it('maps an exit to the Status client-go reads its exit code from', () => {
    expect(exitStatus({ exitCode: 0 })).toEqual({ metadata: {}, status: 'Success' });
    expect(exitStatus({ exitCode: 3 })).toMatchObject({
      status: 'Failure',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    expect(exitStatus({ error: 'device gone' })).toMatchObject({
      status: 'Failure',
      message: 'device gone',
    });
  });

  it('expects a resize stream instead of stderr with a TTY', () => {
    const tty = { stdin: true, stdout: true, stderr: true, tty: true };
    expect([...expectedStreams(tty)].sort()).toEqual(['error', 'resize', 'stdin', 'stdout']);
    const plain = { stdin: false, stdout: true, stderr: true, tty: false };
    expect([...expectedStreams(plain)].sort()).toEqual(['error', 'stderr', 'stdout']);
  });

  it('reads terminal sizes line by line, keeping a partial line', () => {
    const first = parseResize('{"Width":80,"Height":24}\n{"Width":1');
    expect(first.sizes).toEqual([{ width: 80, height: 24 }]);
    expect(parseResize(`${first.rest}00,"Height":30}\nnot json\n`).sizes).toEqual([
      { width: 100, height: 30 },
    ]);
  });

  it('starts once every stream is open, bridges them, and ends with the exit status', async () => {
    const { session, client } = connect();
    const dev = device();
    serveRemoteCommand(session, { stdin: true, stdout: true, stderr: false, tty: true }, dev.open, [
      'sh',
    ]);
    client.open(1, { streamtype: 'error' });
    client.open(3, { streamtype: 'stdin' });
    client.open(5, { streamtype: 'stdout' });
    await tick();
    expect(dev.opened).toHaveLength(0);
    client.open(7, { streamtype: 'resize' });
    await tick();
    expect(dev.opened).toEqual([
      {
        kind: 'exec',
        command: ['sh'],
        stdin: true,
        stdout: true,
        stderr: false,
        tty: true,
        module: 'm',
      },
    ]);
    expect(client.frames.filter((f) => f.type === 'synReply')).toHaveLength(4);
    client.send(3, Buffer.from('ls\n'));
    client.send(7, Buffer.from('{"Width":120,"Height":40}\n'));
    client.send(3, Buffer.alloc(0), true);
    await tick();
    const got = dev.sent.map((f) => decodeStreamFrame(f)!);
    expect(got.map((f) => [f.kind, f.channel, f.payload.toString()])).toEqual([
      [StreamKind.data, Channel.stdin, 'ls\n'],
      [StreamKind.resize, 0, '{"width":120,"height":40}'],
      [StreamKind.eof, Channel.stdin, '{}'],
    ]);
    fromDevice(dev.endpoint!, StreamKind.data, Buffer.from('file\n'), Channel.stdout);
    fromDevice(dev.endpoint!, StreamKind.close, { exitCode: 2 });
    await tick();
    expect(dataOn(client.frames, 5)).toBe('file\n');
    expect(JSON.parse(dataOn(client.frames, 1))).toMatchObject({ reason: 'NonZeroExitCode' });
    // The client hangs up once it read everything; the server does not cut it short.
    expect(client.frames.some((f) => f.type === 'goAway')).toBe(false);
    session.close();
  });

  it('ends the device session when the client goes away', async () => {
    const { session, client } = connect();
    const dev = device();
    serveRemoteCommand(
      session,
      { stdin: false, stdout: true, stderr: true, tty: false },
      dev.open,
      ['sleep', '9'],
    );
    client.open(1, { streamtype: 'error' });
    client.open(3, { streamtype: 'stdout' });
    client.open(5, { streamtype: 'stderr' });
    await tick();
    session.close();
    await tick();
    expect(dev.endpoint!.ended).toBe(true);
    expect(decodeStreamFrame(dev.sent.at(-1)!)!.kind).toBe(StreamKind.close);
  });
});

describe('port forward protocol (portforward.k8s.io)', () => {
  it('pairs the error and data streams of a request and forwards both ways', async () => {
    const { session, client } = connect();
    const ports: number[] = [];
    let endpoint: StreamEndpoint | undefined;
    const sent: Buffer[] = [];
    servePortForward(session, (port) => {
      ports.push(port);
      endpoint = new StreamEndpoint('s', (f) => sent.push(f));
      return endpoint;
    });
    client.open(1, { streamtype: 'error', port: '8080', requestid: '0' });
    client.open(3, { streamtype: 'data', port: '8080', requestid: '0' });
    await tick();
    expect(ports).toEqual([8080]);
    client.send(3, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await tick();
    expect(decodeStreamFrame(sent[0]!)!.payload.toString()).toContain('GET /');
    fromDevice(endpoint!, StreamKind.data, Buffer.from('HTTP/1.0 200 OK\r\n'), Channel.stdout);
    fromDevice(endpoint!, StreamKind.close, {});
    await tick();
    expect(dataOn(client.frames, 3)).toBe('HTTP/1.0 200 OK\r\n');
    expect(dataOn(client.frames, 1)).toBe('');
    session.close();
  });

  it('reports a failed connection on the error stream', async () => {
    const { session, client } = connect();
    servePortForward(session, () => 'kedge: device default/d is not connected');
    client.open(1, { streamtype: 'error', port: '80', requestid: '1' });
    client.open(3, { streamtype: 'data', port: '80', requestid: '1' });
    await tick();
    expect(dataOn(client.frames, 1)).toBe('kedge: device default/d is not connected');
    session.close();
  });
});
