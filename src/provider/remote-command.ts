/**
 * The Kubernetes streaming protocols on top of a SPDY session, bridged to a device session:
 * remote command (`exec`, `attach`; v4.channel.k8s.io) and port forwarding (portforward.k8s.io).
 * The API server opens one SPDY stream per channel, named by its `streamtype` header; exec ends
 * with a `metav1.Status` on the error stream that carries the exit code.
 */
import {
  Channel,
  StreamKind,
  type StreamEnd,
  type StreamEndpoint,
  type StreamOpen,
} from '../common/cloudlink/streams.js';
import type { SpdySession, SpdyStream } from './spdy/session.js';

/** The one remote command protocol served: its error stream carries a JSON Status. */
export const REMOTE_COMMAND_PROTOCOL = 'v4.channel.k8s.io';
export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
/** The kubelet waits this long for the client's streams (DefaultStreamCreationTimeout). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** After the command ended, the client gets this long to read its output and hang up. */
const CLIENT_CLOSE_GRACE_MS = 10_000;
/** Bytes of resize messages buffered while waiting for a newline; a size is a few dozen. */
const MAX_RESIZE_LINE_BYTES = 4_096;

/** What the client asked for, from the query (`input=1&output=1&error=1&tty=1`). */
export interface RemoteCommandOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Opens the device end of a session. */
export type OpenSession = (open: Omit<StreamOpen, 'module'>) => StreamEndpoint;

/** The Status an exec ends with on the error stream (client-go's errorDecoderV4 reads it). */
export function exitStatus(end: StreamEnd): Record<string, unknown> {
  if (end.error !== undefined)
    return { metadata: {}, status: 'Failure', message: end.error, reason: 'InternalError' };
  if (!end.exitCode) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit code ${end.exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(end.exitCode) }] },
  };
}

/** The stream types a remote command needs before it can start. */
export function expectedStreams(o: RemoteCommandOptions): Set<string> {
  const types = new Set(['error']);
  if (o.stdin) types.add('stdin');
  if (o.stdout) types.add('stdout');
  if (o.stderr && !o.tty) types.add('stderr');
  if (o.tty) types.add('resize');
  return types;
}

/**
 * Splits the resize stream (JSON sizes, one per line) into sizes; keeps a partial line.
 * Returns the sizes and what is left over.
 */
export function parseResize(buffered: string): {
  sizes: { width: number; height: number }[];
  rest: string;
} {
  const lines = buffered.split('\n');
  const rest = lines.pop() ?? '';
  const sizes: { width: number; height: number }[] = [];
  for (const line of lines) {
    try {
      const size = JSON.parse(line) as { Width?: number; Height?: number };
      if (size.Width && size.Height) sizes.push({ width: size.Width, height: size.Height });
    } catch {
      // A malformed size is skipped, as the kubelet does.
    }
  }
  return { sizes, rest: rest.length > MAX_RESIZE_LINE_BYTES ? '' : rest };
}

/** Waits for the client's streams, then runs the command on the device and bridges the two. */
export function serveRemoteCommand(
  session: SpdySession,
  options: RemoteCommandOptions,
  open: OpenSession,
  command?: string[],
): void {
  const expected = expectedStreams(options);
  const streams = new Map<string, SpdyStream>();
  const timer = setTimeout(() => session.close(), STREAM_CREATION_TIMEOUT_MS);
  session.on('close', () => clearTimeout(timer));
  session.on('stream', (stream) => {
    if (!expected.has(stream.type) || streams.has(stream.type)) return stream.reset();
    streams.set(stream.type, stream);
    if (streams.size < expected.size) return;
    clearTimeout(timer);
    const endpoint = open({
      kind: command ? 'exec' : 'attach',
      ...(command ? { command } : {}),
      ...options,
      stderr: options.stderr && !options.tty,
    });
    bridgeRemoteCommand(session, streams, endpoint);
  });
}

function bridgeRemoteCommand(
  session: SpdySession,
  streams: Map<string, SpdyStream>,
  endpoint: StreamEndpoint,
): void {
  const out = [streams.get('stdout'), streams.get('stderr')];
  endpoint.on('data', (channel, data) => {
    const target = channel === Channel.stderr ? out[1] : out[0];
    if (!target) return endpoint.consumed(data.length);
    target.write(data, () => endpoint.consumed(data.length));
  });
  endpoint.on('end', (end) => {
    for (const s of out) s?.end();
    const error = streams.get('error')!;
    error.write(Buffer.from(JSON.stringify(exitStatus(end))));
    error.end();
    // The client closes once it read every stream. Closing first would lose output it has not
    // read yet: spdystream drops frames still queued when the connection ends.
    setTimeout(() => session.close(), CLIENT_CLOSE_GRACE_MS).unref();
  });
  session.on('close', () => endpoint.end({ error: 'the client closed the connection' }));
  const stdin = streams.get('stdin');
  if (stdin) {
    forwardInput(session, stdin, endpoint, Channel.stdin);
    stdin.on('end', () => endpoint.control(StreamKind.eof, {}, Channel.stdin));
  }
  let pending = '';
  streams.get('resize')?.on('data', (chunk) => {
    const { sizes, rest } = parseResize(pending + chunk.toString('utf8'));
    pending = rest;
    for (const size of sizes) endpoint.control(StreamKind.resize, size);
  });
}

/** Passes a client stream's data to the device, pausing the connection while the window is full. */
function forwardInput(
  session: SpdySession,
  from: SpdyStream,
  endpoint: StreamEndpoint,
  channel: number,
): void {
  let paused = false;
  from.on('data', (data) => {
    if (endpoint.write(channel, data) || paused) return;
    paused = true;
    session.pause();
    endpoint.once('drain', () => {
      paused = false;
      session.resume();
    });
  });
  endpoint.once('end', () => {
    if (paused) session.resume();
    paused = false;
  });
}

/**
 * Port forwarding: the client opens an `error` and a `data` stream per forwarded connection,
 * paired by `requestid` and naming the pod `port`. Each pair is one device session.
 */
export function servePortForward(
  session: SpdySession,
  open: (port: number) => StreamEndpoint | string,
): void {
  const pairs = new Map<string, { error?: SpdyStream; data?: SpdyStream }>();
  session.on('stream', (stream) => {
    const type = stream.type;
    const requestId = stream.headers.requestid ?? stream.headers.port ?? '';
    if (type !== 'error' && type !== 'data') return stream.reset();
    const pair = pairs.get(requestId) ?? {};
    if (pair[type]) return stream.reset();
    pair[type] = stream;
    pairs.set(requestId, pair);
    if (!pair.error || !pair.data) return;
    pairs.delete(requestId);
    forwardPort(session, pair.error, pair.data, open);
  });
}

function forwardPort(
  session: SpdySession,
  error: SpdyStream,
  data: SpdyStream,
  open: (port: number) => StreamEndpoint | string,
): void {
  const portText = data.headers.port ?? '';
  const port = Number(portText);
  const fail = (message: string): void => {
    error.write(Buffer.from(message));
    error.end();
    data.end();
  };
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    return fail(`kedge: invalid port ${JSON.stringify(portText)}`);
  const endpoint = open(port);
  if (typeof endpoint === 'string') return fail(endpoint);
  endpoint.on('data', (_channel, bytes) =>
    data.write(bytes, () => endpoint.consumed(bytes.length)),
  );
  endpoint.on('end', (end) => {
    if (end.error !== undefined) return fail(`kedge: error forwarding port ${port}: ${end.error}`);
    error.end();
    data.end();
  });
  forwardInput(session, data, endpoint, Channel.stdin);
  data.on('end', () => endpoint.control(StreamKind.eof, {}, Channel.stdin));
  data.on('close', () => endpoint.end({ error: 'the client closed the connection' }));
  session.on('close', () => endpoint.end({ error: 'the client closed the connection' }));
}
