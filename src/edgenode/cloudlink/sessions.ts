/**
 * The device end of exec, attach and port-forward sessions: each opens a {@link ModuleSession}
 * through the agent and bridges it to its frames on the cloud link, reading the module's output
 * no faster than the cloud consumes it.
 */
import type { Readable } from 'node:stream';
import {
  Channel,
  decodeStreamFrame,
  frameJson,
  MAX_SESSIONS_PER_DEVICE,
  STREAM_KEEPALIVE_MS,
  STREAM_SILENCE_LIMIT_MS,
  StreamEndpoint,
  StreamKind,
  type StreamFrame,
  type StreamOpen,
} from '../../common/cloudlink/streams.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { ModuleSession } from '../agent/runtime.js';

/** A session's endpoint, and the frames that came while the module session was opening. */
interface Entry {
  endpoint: StreamEndpoint;
  early?: StreamFrame[];
  /** When a frame of this session last came from the cloud. */
  heardAtMs: number;
}

export class DeviceSessions {
  readonly #sessions = new Map<string, Entry>();
  #silenceCheck: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (frame: Buffer) => void,
    private readonly open: (open: StreamOpen) => Promise<ModuleSession>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Ends sessions whose cloud end fell silent (its controller went away without a word). */
  endSilent(): void {
    for (const { endpoint, heardAtMs } of [...this.#sessions.values()])
      if (this.now() - heardAtMs > STREAM_SILENCE_LIMIT_MS)
        endpoint.end({ error: 'nothing heard from the cloud end of the session' });
  }

  #watchSilence(): void {
    if (this.#silenceCheck || this.#sessions.size === 0) return;
    this.#silenceCheck = setInterval(() => {
      this.endSilent();
      if (this.#sessions.size > 0) return;
      clearInterval(this.#silenceCheck);
      this.#silenceCheck = undefined;
    }, STREAM_KEEPALIVE_MS);
    this.#silenceCheck.unref();
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Handles a frame from the cloud. */
  receive(payload: Buffer): void {
    const frame = decodeStreamFrame(payload);
    if (!frame) return;
    if (frame.kind === StreamKind.open) return void this.#open(frame);
    const entry = this.#sessions.get(frame.id);
    if (entry) entry.heardAtMs = this.now();
    // Input may follow the open at once; it waits (bounded by the window) until the module is.
    if (entry?.early && frame.kind !== StreamKind.close) entry.early.push(frame);
    else entry?.endpoint.receive(frame);
  }

  /** Ends every session without telling the cloud: the link is gone. */
  closeAll(): void {
    for (const { endpoint } of [...this.#sessions.values()])
      endpoint.end({ error: 'the device link closed' }, false);
  }

  async #open(frame: StreamFrame): Promise<void> {
    const open = frameJson<StreamOpen>(frame);
    const endpoint = new StreamEndpoint(frame.id, this.send);
    if (!open || this.#sessions.has(frame.id)) return endpoint.end({ error: 'bad open frame' });
    if (this.#sessions.size >= MAX_SESSIONS_PER_DEVICE)
      return endpoint.end({
        error: `the device serves ${MAX_SESSIONS_PER_DEVICE} sessions at most`,
      });
    const entry: Entry = { endpoint, early: [], heardAtMs: this.now() };
    this.#sessions.set(frame.id, entry);
    this.#watchSilence();
    let session: ModuleSession | undefined;
    endpoint.once('end', (end) => {
      this.#sessions.delete(frame.id);
      session?.kill();
      this.log.info(
        { id: frame.id, module: open.module, kind: open.kind, ...end },
        'session ended',
      );
    });
    try {
      session = await this.open(open);
    } catch (err) {
      return endpoint.end({ error: errorMessage(err) });
    }
    this.log.info({ id: frame.id, module: open.module, kind: open.kind }, 'session started');
    if (endpoint.ended) return session.kill();
    bridge(endpoint, session);
    const early = entry.early ?? [];
    delete entry.early;
    for (const f of early) endpoint.receive(f);
  }
}

function bridge(endpoint: StreamEndpoint, session: ModuleSession): void {
  const stdin = session.stdin;
  stdin?.on('error', () => undefined);
  endpoint.on('data', (_channel, data) => {
    if (!stdin || stdin.writableEnded) return endpoint.consumed(data.length);
    stdin.write(data, () => endpoint.consumed(data.length));
  });
  endpoint.on('eof', () => stdin?.end());
  endpoint.on(
    'resize',
    ({ width, height }) => void session.resize?.(width, height).catch(() => undefined),
  );
  pump(session.stdout, endpoint, Channel.stdout);
  if (session.stderr) pump(session.stderr, endpoint, Channel.stderr);
  session.done.then(
    (exitCode) => endpoint.end(exitCode === undefined ? {} : { exitCode }),
    (err: unknown) => endpoint.end({ error: errorMessage(err) }),
  );
}

/** Sends a module's output, pausing it while the cloud's window is full. */
function pump(from: Readable, endpoint: StreamEndpoint, channel: number): void {
  from.on('error', () => undefined);
  from.on('data', (data: Buffer) => {
    if (endpoint.write(channel, data)) return;
    from.pause();
    endpoint.once('drain', () => from.resume());
  });
}
