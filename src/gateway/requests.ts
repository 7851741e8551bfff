/**
 * Requests to one device, served by the gateway that holds its session: any controller replica
 * sends them on the device's request subjects and this session answers. Method calls are NATS
 * request/reply; a log stream answers its request at once and then sends `data` frames and one
 * `end` frame to the inbox the request named. An exec, attach or port-forward session is opened
 * by request too; its frames (streams.ts) then pass both ways unread but for their id and kind.
 */
import { randomUUID } from 'node:crypto';
import { headers, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Leaf, type LogRequest, type MethodRequest } from '../common/cloudlink/protocol.js';
import {
  decodeStreamFrame,
  encodeStreamFrame,
  MAX_SESSIONS_PER_DEVICE,
  StreamKind,
} from '../common/cloudlink/streams.js';
import { Headers, Subjects } from '../common/cloudplane/layout.js';
import type { Logger } from '../common/logger.js';
import type { CloudIdentity } from './auth.js';

/** A method's own timeout plus this, so the device's answer wins over the gateway's. */
const METHOD_GRACE_MS = 2_000;

/** A log request as the controller sends it: the device's request plus where frames go. */
export interface LogStreamRequest extends LogRequest {
  inbox: string;
}

type Pending = { msg: Msg; timer: NodeJS.Timeout };

/** Why a session ends when its device leaves this gateway. */
const DEVICE_GONE = 'the device disconnected; the session ended';

export class SessionRequests {
  readonly #methods = new Map<string, Pending>();
  readonly #logs = new Map<string, string>();
  /** Open sessions: id → the controller inbox their device frames go to. */
  readonly #streams = new Map<string, string>();
  #sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly who: CloudIdentity,
    private readonly toDevice: (leaf: string, body: unknown) => Promise<void>,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.#sub = this.nc.subscribe(Subjects.requestsOf(this.who.namespace, this.who.device), {
      callback: (err, msg) => {
        if (!err) this.#onRequest(msg);
      },
    });
  }

  /** Ends every open request: the device is gone from this gateway. */
  stop(): void {
    this.#sub?.unsubscribe();
    for (const [id, pending] of this.#methods) {
      clearTimeout(pending.timer);
      pending.msg.respond(
        JSON.stringify({ status: 503, payload: { message: 'device disconnected' } }),
      );
      this.#methods.delete(id);
    }
    for (const [id, inbox] of this.#logs) this.#endLog(id, inbox, 'device disconnected');
    for (const [id, inbox] of this.#streams) this.#endStream(id, inbox, DEVICE_GONE);
  }

  /** Routes a device's answer (method response, log data, log end); false if it is none. */
  fromDevice(leaf: string, payload: Buffer): boolean {
    if (leaf === Leaf.streamUp) return this.#streamUp(payload);
    const [kind, id] = splitLeaf(leaf);
    if (kind === Leaf.methodResponse) {
      const pending = this.#methods.get(id);
      if (pending) {
        this.#methods.delete(id);
        clearTimeout(pending.timer);
        pending.msg.respond(payload);
      }
      return true;
    }
    if (kind === Leaf.logData) {
      const inbox = this.#logs.get(id);
      if (inbox) this.nc.publish(inbox, payload, { headers: frame('data') });
      return true;
    }
    if (kind === Leaf.logEnd) {
      const inbox = this.#logs.get(id);
      const end = payload.length
        ? (JSON.parse(payload.toString('utf8')) as { error?: string })
        : {};
      if (inbox) this.#endLog(id, inbox, end.error);
      return true;
    }
    return false;
  }

  #onRequest(msg: Msg): void {
    const kind = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
    try {
      if (kind === 'method') this.#method(msg);
      else if (kind === 'logs') this.#logsStart(msg);
      else if (kind === 'logs-cancel') this.#logsCancel(msg);
      else if (kind === 'stream-open') this.#streamOpen(msg);
      else if (kind === 'stream') this.#streamDown(msg);
    } catch (err) {
      this.log.warn({ subject: msg.subject, reason: (err as Error).message }, 'bad request');
      msg.respond(JSON.stringify({ status: 400, payload: { message: 'bad request' } }));
    }
  }

  #method(msg: Msg): void {
    const call = msg.json<Omit<MethodRequest, 'id'>>();
    const id = randomUUID();
    const timer = setTimeout(
      () => {
        if (!this.#methods.delete(id)) return;
        msg.respond(
          JSON.stringify({
            status: 504,
            payload: { message: 'the device did not answer in time' },
          }),
        );
      },
      call.timeoutSecs * 1000 + METHOD_GRACE_MS,
    );
    this.#methods.set(id, { msg, timer });
    void this.toDevice(Leaf.methodRequest, { ...call, id }).catch(() => undefined);
  }

  #logsStart(msg: Msg): void {
    const { inbox, ...request } = msg.json<LogStreamRequest>();
    this.#logs.set(request.id, inbox);
    msg.respond('accepted');
    void this.toDevice(Leaf.logRequest, request).catch(() =>
      this.#endLog(request.id, inbox, 'device unreachable'),
    );
  }

  #logsCancel(msg: Msg): void {
    const { id } = msg.json<{ id: string }>();
    if (this.#logs.delete(id)) void this.toDevice(Leaf.logCancel, { id }).catch(() => undefined);
    msg.respond('cancelled');
  }

  /** Opens a session: `{ inbox }` plus the open frame, which goes on to the device. */
  #streamOpen(msg: Msg): void {
    const { inbox, frame } = msg.json<{ inbox: string; frame: string }>();
    const open = decodeStreamFrame(Buffer.from(frame, 'base64'));
    if (open?.kind !== StreamKind.open) throw new Error('not an open frame');
    if (this.#streams.size >= MAX_SESSIONS_PER_DEVICE) {
      msg.respond(
        JSON.stringify({
          error: `the device has ${MAX_SESSIONS_PER_DEVICE} sessions open, the most it may`,
        }),
      );
      return;
    }
    this.#streams.set(open.id, inbox);
    msg.respond(JSON.stringify({ accepted: true }));
    void this.toDevice(Leaf.streamDown, Buffer.from(frame, 'base64')).catch(() =>
      this.#endStream(open.id, inbox, 'the device is unreachable'),
    );
  }

  /** A frame of an open session from the controller, passed on to the device. */
  #streamDown(msg: Msg): void {
    const frame = decodeStreamFrame(Buffer.from(msg.data));
    if (!frame || !this.#streams.has(frame.id)) return;
    if (frame.kind === StreamKind.close) this.#streams.delete(frame.id);
    void this.toDevice(Leaf.streamDown, Buffer.from(msg.data)).catch(() => undefined);
  }

  /** A frame from the device, passed on to the controller inbox of its session. */
  #streamUp(payload: Buffer): boolean {
    const frame = decodeStreamFrame(payload);
    const inbox = frame && this.#streams.get(frame.id);
    if (!frame || !inbox) return true;
    if (frame.kind === StreamKind.close) this.#streams.delete(frame.id);
    this.nc.publish(inbox, payload);
    return true;
  }

  #endStream(id: string, inbox: string, error: string): void {
    this.#streams.delete(id);
    this.nc.publish(inbox, encodeStreamFrame(StreamKind.close, id, { error }));
  }

  #endLog(id: string, inbox: string, error?: string): void {
    this.#logs.delete(id);
    const h = frame('end');
    if (error) h.set(Headers.error, error);
    this.nc.publish(inbox, undefined, { headers: h });
  }
}

function frame(kind: 'data' | 'end'): ReturnType<typeof headers> {
  const h = headers();
  h.set(Headers.frame, kind);
  return h;
}

function splitLeaf(leaf: string): [string, string] {
  const slash = leaf.lastIndexOf('/');
  return slash < 0 ? [leaf, ''] : [leaf.slice(0, slash), leaf.slice(slash + 1)];
}
