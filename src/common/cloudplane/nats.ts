/**
 * Connecting to NATS and provisioning the cloud plane's streams and buckets. Both the controller
 * and the gateways connect the same way; the controller provisions.
 */
import { DiscardPolicy, jetstreamManager, type StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import {
  connect,
  credsAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type NodeConnectionOptions,
  type NatsConnection,
} from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import { ErrorCode, KedgeError, errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { Buckets, deviceKey, Streams, Subjects } from './layout.js';

/** How to reach NATS. */
export interface NatsSettings {
  /** Server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string[];
  /** A `.creds` file (JWT and NKey seed). */
  credsFile?: string;
  user?: string;
  password?: string;
  /** CA certificate file for TLS to NATS. */
  caFile?: string;
}

/** The default server: a local `nats-server`, as `kedge up` runs it. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** Reads the settings from flags, falling back to the `KEDGE_NATS_*` environment. */
export function natsSettings(flags: {
  natsUrl?: string;
  natsCreds?: string;
  natsUser?: string;
  natsCa?: string;
}): NatsSettings {
  const env = process.env;
  const url = flags.natsUrl ?? env.KEDGE_NATS_URL ?? DEFAULT_NATS_URL;
  return {
    servers: url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    credsFile: flags.natsCreds ?? env.KEDGE_NATS_CREDS_FILE,
    user: flags.natsUser ?? env.KEDGE_NATS_USER,
    password: env.KEDGE_NATS_PASSWORD,
    caFile: flags.natsCa ?? env.KEDGE_NATS_CA_FILE,
  };
}

/**
 * The client options {@link connectNats} uses. Async traces are off: with them the client builds
 * two `Error`s (stack captured) for every request, JetStream publishes included, only to name
 * the caller if it times out. They took ≈ 40 % of a gateway's CPU under telemetry load
 * (`npm run bench -- cloud-telemetry`); errors still carry their cause, without that stack.
 */
export function natsConnectOptions(settings: NatsSettings, name: string): NodeConnectionOptions {
  const authenticator: Authenticator[] = [];
  if (settings.credsFile) authenticator.push(credsAuthenticator(readFileSync(settings.credsFile)));
  if (settings.user)
    authenticator.push(usernamePasswordAuthenticator(settings.user, settings.password));
  return {
    servers: settings.servers,
    name,
    authenticator: authenticator.length ? authenticator : undefined,
    tls: settings.caFile ? { caFile: settings.caFile } : undefined,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    noAsyncTraces: true,
  };
}

/** Connects, retrying for ever in the background once the first connection is made. */
export async function connectNats(
  settings: NatsSettings,
  name: string,
  log: Logger,
): Promise<NatsConnection> {
  try {
    const nc = await connect(natsConnectOptions(settings, name));
    void watchStatus(nc, log);
    return nc;
  } catch (err) {
    throw new KedgeError(
      ErrorCode.Unavailable,
      `cannot connect to NATS at ${settings.servers.join(',')}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** Wait between reconnect attempts; with jitter from the client, a fleet of gateways spreads. */
const RECONNECT_WAIT_MS = 500;

async function watchStatus(nc: NatsConnection, log: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect' || s.type === 'reconnect')
      log.info({ nats: s.type, server: 'server' in s ? s.server : undefined }, 'NATS link');
  }
}

/** How the controller provisions the streams and buckets. */
export interface ProvisionOptions {
  /** JetStream replicas: 1 for one server, 3 in a production cluster. */
  replicas: number;
  /** Telemetry is kept this long for consumers that fall behind. */
  telemetryMaxAgeSecs?: number;
  /** The largest telemetry message the stream stores; larger ones are dead-lettered. */
  maxMessageBytes?: number;
}

/** A week of telemetry for consumers that fall behind, as IoT Hub's longest retention. */
const DEFAULT_TELEMETRY_MAX_AGE_SECS = 7 * 24 * 3600;
/** A 256 KiB body, base64, plus its properties. */
export const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024;
/** A 64 KiB C2D body (IoT Hub's limit), base64, plus its properties. */
const C2D_MAX_MESSAGE_BYTES = 96 * 1024;
/** IoT Hub's limits for cloud-to-device messages: queued per device, and the longest TTL. */
export const C2D_MAX_QUEUED = 50;
export const C2D_MAX_TTL_SECS = 48 * 3600;
/** JetStream drops a re-sent message with the same id within this window. */
const DUPLICATE_WINDOW_NS = 10 * 60 * 1e9;
const NS_PER_SEC = 1e9;

/** Creates or updates every stream and bucket of the cloud plane; safe to run on every start. */
export async function provisionCloudPlane(
  nc: NatsConnection,
  opts: ProvisionOptions,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const streams: (Partial<StreamConfig> & { name: string })[] = [
    {
      name: Streams.telemetry,
      subjects: [Subjects.telemetryAll],
      num_replicas: opts.replicas,
      max_age: (opts.telemetryMaxAgeSecs ?? DEFAULT_TELEMETRY_MAX_AGE_SECS) * NS_PER_SEC,
      max_msg_size: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      duplicate_window: DUPLICATE_WINDOW_NS,
    },
    {
      name: Streams.deadLetter,
      subjects: [Subjects.deadLetterAll],
      num_replicas: opts.replicas,
      max_age: (opts.telemetryMaxAgeSecs ?? DEFAULT_TELEMETRY_MAX_AGE_SECS) * NS_PER_SEC,
    },
    {
      // Each message carries its own TTL (`Nats-TTL`); a full queue refuses new messages, as
      // IoT Hub does, rather than dropping old ones nobody was told about.
      name: Streams.c2d,
      subjects: [Subjects.c2dAll],
      num_replicas: opts.replicas,
      max_age: C2D_MAX_TTL_SECS * NS_PER_SEC,
      allow_msg_ttl: true,
      max_msgs_per_subject: C2D_MAX_QUEUED,
      discard: DiscardPolicy.New,
      discard_new_per_subject: true,
      max_msg_size: C2D_MAX_MESSAGE_BYTES,
    },
  ];
  for (const config of streams) {
    try {
      await jsm.streams.info(config.name);
      await jsm.streams.update(config.name, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add(config);
    }
  }
  const kvm = new Kvm(nc);
  for (const bucket of Object.values(Buckets))
    await kvm.create(bucket, { replicas: opts.replicas, history: 1 });
}

/** Opens the cloud plane's buckets (they must have been provisioned). */
export async function openBuckets(nc: NatsConnection): Promise<Record<keyof typeof Buckets, KV>> {
  const kvm = new Kvm(nc);
  const entries = await Promise.all(
    (Object.keys(Buckets) as (keyof typeof Buckets)[]).map(
      async (k) => [k, await openWhenProvisioned(kvm, Buckets[k])] as const,
    ),
  );
  return Object.fromEntries(entries) as Record<keyof typeof Buckets, KV>;
}

/** The keys of one device's twins (`<ns>.<device>.<module>`) in a twin bucket. */
export async function deviceTwinKeys(
  bucket: KV,
  namespace: string,
  device: string,
): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await bucket.keys(`${deviceKey(namespace, device)}.*`)) keys.push(key);
  return keys;
}

/** A gateway may start before any controller has provisioned the buckets; it waits. */
const PROVISION_POLL_MS = 1_000;

async function openWhenProvisioned(kvm: Kvm, name: string): Promise<KV> {
  for (;;) {
    try {
      const kv = await kvm.open(name);
      await kv.status();
      return kv;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await new Promise((r) => setTimeout(r, PROVISION_POLL_MS));
    }
  }
}

function isNotFound(err: unknown): boolean {
  return /not found/i.test(errorMessage(err));
}
