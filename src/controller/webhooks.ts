/**
 * Telemetry webhooks: per namespace, a JetStream durable consumer that POSTs each device's
 * messages to the namespace's endpoint, signed with HMAC-SHA256. A message is acknowledged only
 * after the endpoint answered 2xx; until then it stays in the stream and is retried with
 * backoff, through any number of webhook outages and controller restarts.
 *
 * Configured by Secret `kedge-telemetry-webhook` in the namespace: `url`, and `hmacKey` that
 * signs every body (header `X-Kedge-Signature: sha256=<hex>`).
 */
import { createHmac } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { UpstreamMessage } from '../common/cloudlink/protocol.js';
import { deviceOfSubject, Streams, Subjects } from '../common/cloudplane/layout.js';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { Resources, type KubeClient, type KubeObject } from './kube/client.js';

/** The Secret that configures a namespace's webhook. */
export const WEBHOOK_SECRET = 'kedge-telemetry-webhook';
/** Signature header: `sha256=` and the hex HMAC of the body. */
export const SIGNATURE_HEADER = 'x-kedge-signature';
/** How often the namespaces' webhook Secrets are read again. */
const CONFIG_REFRESH_MS = 15_000;
/** Messages per fetch; one POST per device among them. */
const FETCH_MAX = 256;
const FETCH_EXPIRES_MS = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** Retry backoff for a failing endpoint: doubles from the first to the last. */
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 60_000;
/** Unacknowledged messages are redelivered after this; longer than one POST can take. */
const ACK_WAIT_NS = 60 * 1e9;

/** The JSON body POSTed to a webhook: one device's batch. */
export interface WebhookBatch {
  namespace: string;
  device: string;
  messages: UpstreamMessage[];
}

interface Endpoint {
  url: string;
  hmacKey: string;
}

type SecretObject = KubeObject & { data?: Record<string, string> };

export class WebhookConsumers {
  readonly #running = new Map<string, { endpoint: Endpoint; stop: AbortController }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly namespaces: () => string[],
  ) {}

  start(): void {
    const refresh = (): void =>
      void this.#refresh().catch((err: unknown) =>
        this.log.warn({ reason: errorMessage(err) }, 'reading webhook configuration failed'),
      );
    refresh();
    this.#timer = setInterval(refresh, CONFIG_REFRESH_MS);
  }

  stop(): Promise<void> {
    clearInterval(this.#timer);
    for (const r of this.#running.values()) r.stop.abort();
    this.#running.clear();
    return Promise.resolve();
  }

  async #refresh(): Promise<void> {
    for (const ns of new Set(this.namespaces())) {
      const secret = await this.client.find<SecretObject>(Resources.secrets(ns), WEBHOOK_SECRET);
      const endpoint = secret && endpointOf(secret);
      const running = this.#running.get(ns);
      if (running && endpoint && sameEndpoint(running.endpoint, endpoint)) continue;
      running?.stop.abort();
      this.#running.delete(ns);
      if (!endpoint) continue;
      const stop = new AbortController();
      this.#running.set(ns, { endpoint, stop });
      void this.#run(ns, endpoint, stop.signal);
    }
  }

  async #run(namespace: string, endpoint: Endpoint, signal: AbortSignal): Promise<void> {
    const name = `webhook-${namespace}`;
    const jsm = await jetstreamManager(this.nc);
    await jsm.consumers.add(Streams.telemetry, {
      durable_name: name,
      filter_subject: Subjects.telemetryOf(namespace),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ACK_WAIT_NS,
      max_ack_pending: FETCH_MAX * 4,
    });
    const consumer = await jetstream(this.nc).consumers.get(Streams.telemetry, name);
    this.log.info({ namespace, url: endpoint.url }, 'telemetry webhook consumer running');
    let backoffMs = RETRY_MIN_MS;
    while (!signal.aborted) {
      const batch: JsMsg[] = [];
      try {
        const fetched = await consumer.fetch({
          max_messages: FETCH_MAX,
          expires: FETCH_EXPIRES_MS,
        });
        for await (const m of fetched) batch.push(m);
        if (batch.length === 0) continue;
        await this.#deliver(namespace, endpoint, batch);
        batch.forEach((m) => m.ack());
        backoffMs = RETRY_MIN_MS;
      } catch (err) {
        batch.forEach((m) => m.nak(backoffMs));
        this.log.warn(
          { namespace, reason: errorMessage(err), retryInMs: backoffMs },
          'telemetry webhook failed; will retry',
        );
        await sleep(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, RETRY_MAX_MS);
      }
    }
  }

  async #deliver(namespace: string, endpoint: Endpoint, batch: JsMsg[]): Promise<void> {
    const byDevice = new Map<string, UpstreamMessage[]>();
    for (const m of batch) {
      const device = deviceOfSubject(m.subject, 2)?.device ?? '';
      byDevice.set(device, [...(byDevice.get(device) ?? []), m.json<UpstreamMessage>()]);
    }
    for (const [device, messages] of byDevice) {
      const body = JSON.stringify({ namespace, device, messages } satisfies WebhookBatch);
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(endpoint, body) },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (!res.ok) throw new Error(`${endpoint.url} answered ${res.status}`);
    }
  }
}

/** `sha256=` and the hex HMAC-SHA256 of the body under the namespace's key. */
export function sign(endpoint: { hmacKey: string }, body: string): string {
  return `sha256=${createHmac('sha256', endpoint.hmacKey).update(body).digest('hex')}`;
}

function endpointOf(secret: SecretObject): Endpoint | undefined {
  const get = (k: string): string | undefined => {
    const v = secret.data?.[k];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8').trim();
  };
  const url = get('url');
  const hmacKey = get('hmacKey');
  return url && hmacKey ? { url, hmacKey } : undefined;
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.url === b.url && a.hmacKey === b.hmacKey;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
