// Shared helpers for the gateway tests: a real gateway over real TLS, backed by a real nats-server.
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import mqtt, { type MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { deviceResourceUri } from '../../src/common/cloudlink/protocol.js';
import { Buckets, deviceKey, type CredentialsRecord } from '../../src/common/cloudplane/layout.js';
import { provisionCloudPlane } from '../../src/common/cloudplane/nats.js';
import { createSasToken } from '../../src/common/iothub/index.js';
import { createLogger, silentLogger } from '../../src/common/logger.js';
import { createCa, issueCertificate, type KeyPair } from '../../src/common/pki.js';
import { Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';

export const NS = 'plant';

/** A gateway and what a test needs around it. */
export interface GatewayRig {
  nc: NatsConnection;
  gateway: Gateway;
  ca: KeyPair;
  url: string;
  /** Registers a device's key as the controller would; returns the key. */
  register(device: string, key?: string): Promise<string>;
  /** Sets a device's credentials record as the controller would (X.509, for example). */
  setCredentials(device: string, record: CredentialsRecord): Promise<void>;
  /** Removes a device's credentials, as deleting its EdgeDevice does. */
  revoke(device: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts a gateway on a free port against the nats-server at `natsUrl`. */
export async function startGatewayRig(
  natsUrl: string,
  overrides: Partial<GatewayOptions> = {},
): Promise<GatewayRig> {
  const nc = await connect({ servers: natsUrl });
  await provisionCloudPlane(nc, { replicas: 1 });
  const ca = createCa('kedge-test-ca');
  const gateway = await Gateway.start({
    nc,
    port: 0,
    host: '127.0.0.1',
    tls: issueCertificate(ca, { commonName: 'gw', altNames: ['localhost'], usage: ['server'] }),
    log: process.env.KEDGE_TEST_LOG
      ? createLogger({ name: 'gateway', level: process.env.KEDGE_TEST_LOG })
      : silentLogger(),
    ...overrides,
  });
  const credentials = await new Kvm(nc).open(Buckets.credentials);
  return {
    nc,
    gateway,
    ca,
    url: `mqtts://localhost:${gateway.port}`,
    register: async (device, key = randomBytes(32).toString('base64')) => {
      await credentials.put(deviceKey(NS, device), JSON.stringify({ keys: [key] }));
      return key;
    },
    setCredentials: async (device, record) => {
      await credentials.put(deviceKey(NS, device), JSON.stringify(record));
    },
    revoke: async (device) => {
      await credentials.delete(deviceKey(NS, device));
    },
    close: async () => {
      await gateway.close();
      await nc.close();
    },
  };
}

/** A SAS token for a device of {@link NS}. */
export function deviceToken(device: string, key: string, ttlSecs = 3600): string {
  return createSasToken({
    resource: deviceResourceUri(NS, device),
    keyBase64: key,
    expirySecs: Math.floor(Date.now() / 1000) + ttlSecs,
  });
}

/** Connects as a device the way the cloud link does; rejects with the broker's refusal. */
export async function connectDevice(
  rig: GatewayRig,
  device: string,
  token: string,
  extra: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(rig.url, {
    clientId: `${NS}/${device}`,
    username: `${NS}/${device}`,
    password: token,
    ca: rig.ca.certPem,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...extra,
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
    client.once('close', () => reject(new Error('closed')));
  });
  return client;
}

/** Resolves with how long it took until the client's connection closed. */
export function closedWithin(client: MqttClient): Promise<number> {
  const start = Date.now();
  return new Promise((resolve) => client.once('close', () => resolve(Date.now() - start)));
}
