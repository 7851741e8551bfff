/**
 * Dials the gateway named by `cloud.url` the way the cloud link does, one step at a time (DNS,
 * TCP, TLS verified with `cloud.caPem`), so a failure names the step that broke.
 */
import { X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import { errorMessage } from '../common/errors.js';
import { fail, ok, skip, type CheckResult } from './result.js';

/** Each network step gives up after this long: a gateway answers a handshake in milliseconds. */
export const DIAL_TIMEOUT_MS = 5_000;

/** Ports the cloud link uses when `cloud.url` names none (MQTT's registered ports). */
const DEFAULT_PORT: Record<string, number> = { 'mqtts:': 8883, 'mqtt:': 1883 };

/** Where the gateway is. */
export interface GatewayTarget {
  host: string;
  port: number;
  tls: boolean;
}

/** What the dial found: one result per step, and the certificate the gateway served. */
export interface GatewayProbe {
  results: CheckResult[];
  /** The gateway's certificate, when the TLS handshake got that far. */
  certificate?: X509Certificate;
}

/** Host, port and scheme of `cloud.url`. */
export function gatewayTarget(url: string): GatewayTarget {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = parsed.port ? Number(parsed.port) : (DEFAULT_PORT[parsed.protocol] ?? 8883);
  return { host, port, tls: parsed.protocol === 'mqtts:' };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} timed out after ${DIAL_TIMEOUT_MS / 1000} s`)),
      DIAL_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function resolveHost(target: GatewayTarget, urlKey: string): Promise<CheckResult> {
  if (net.isIP(target.host)) return ok('gateway DNS', `${target.host} is an address`);
  try {
    const { address } = await withTimeout(lookup(target.host), 'lookup');
    return ok('gateway DNS', `${target.host} resolves to ${address}`);
  } catch (err) {
    return fail(
      'gateway DNS',
      `${target.host} does not resolve: ${errorMessage(err)}`,
      `check the host name in ${urlKey} and the device's DNS (/etc/resolv.conf, /etc/hosts)`,
    );
  }
}

function connectTcp(target: GatewayTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setTimeout(DIAL_TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error(`no answer within ${DIAL_TIMEOUT_MS / 1000} s`));
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function handshake(
  socket: net.Socket,
  target: GatewayTarget,
  caPem: string,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // Verified below, step by step, so that an expired or foreign certificate is still seen.
    const secure = tls.connect({
      socket,
      ca: caPem,
      rejectUnauthorized: false,
      ...(net.isIP(target.host) ? {} : { servername: target.host }),
    });
    secure.setTimeout(DIAL_TIMEOUT_MS, () => {
      secure.destroy();
      reject(new Error(`no TLS handshake within ${DIAL_TIMEOUT_MS / 1000} s`));
    });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

/** Why the certificate does not fit: chain, validity, or host name; undefined when it does. */
function verifyPeer(secure: tls.TLSSocket, target: GatewayTarget): string | undefined {
  const error = secure.authorizationError as unknown as string | Error | null;
  const code = typeof error === 'string' ? error : error?.message;
  // Node reports a name mismatch as this code only; checkServerIdentity says which names it has.
  if (code && code !== 'ERR_TLS_CERT_ALTNAME_INVALID') return code;
  const identity = tls.checkServerIdentity(target.host, secure.getPeerCertificate());
  return identity ? identity.message : code;
}

/** The hint for a TLS verification failure, by OpenSSL's reason. */
function tlsHint(reason: string, target: GatewayTarget, keys: { url: string; ca: string }): string {
  if (reason.includes('CERT_HAS_EXPIRED'))
    return 'the gateway serves an expired certificate: the controller renews Secret kedge-gateway-tls; check that it runs and the gateways re-read it';
  if (reason.includes('NOT_YET_VALID'))
    return "the device clock is behind the gateway certificate's start: set the clock (timedatectl, NTP)";
  if (reason.includes('altnames') || reason.includes('ALTNAME'))
    return `the gateway certificate does not name ${target.host}: use a name it carries in ${keys.url}, or add ${target.host} to the chart's gateway.hostnames`;
  return `the gateway certificate is not signed by ${keys.ca}: re-run kedge device bootstrap to get the cluster's current CA`;
}

/** The TLS step: handshake, chain verified with the CA, host name in the certificate. */
async function tlsStep(
  socket: net.Socket,
  target: GatewayTarget,
  caPem: string,
  keys: { url: string; ca: string },
): Promise<GatewayProbe> {
  let secure: tls.TLSSocket;
  try {
    secure = await handshake(socket, target, caPem);
  } catch (err) {
    socket.destroy();
    const message = `no TLS handshake with ${target.host}:${target.port}: ${errorMessage(err)}`;
    return {
      results: [
        fail(
          'gateway TLS',
          message,
          `check that ${keys.url} names the gateway's TLS port, not another service`,
        ),
      ],
    };
  }
  // In this order: on Node 20, getPeerCertificate() returns {} once getPeerX509Certificate() ran.
  const problem = verifyPeer(secure, target);
  const certificate = secure.getPeerX509Certificate();
  secure.destroy();
  const result = problem
    ? fail('gateway TLS', `certificate rejected: ${problem}`, tlsHint(problem, target, keys))
    : ok('gateway TLS', `certificate verified with ${keys.ca} and names ${target.host}`);
  return { results: [result], ...(certificate ? { certificate } : {}) };
}

/** Dials the gateway: DNS, TCP, then TLS; a failed step skips the ones after it. */
export async function probeGateway(
  url: string,
  caPem: string,
  keys: { url: string; ca: string } = { url: 'cloud.url', ca: 'cloud.caPem' },
): Promise<GatewayProbe> {
  const target = gatewayTarget(url);
  const dns = await resolveHost(target, keys.url);
  if (dns.status === 'fail')
    return { results: [dns, skip('gateway TCP', 'needs DNS'), skip('gateway TLS', 'needs DNS')] };
  let socket: net.Socket;
  try {
    socket = await connectTcp(target);
  } catch (err) {
    const tcp = fail(
      'gateway TCP',
      `cannot connect to ${target.host}:${target.port}: ${errorMessage(err)}`,
      `check the host and port in ${keys.url}; devices dial out to the gateway Service (port 8883 unless changed) through any firewall`,
    );
    return { results: [dns, tcp, skip('gateway TLS', 'needs a TCP connection')] };
  }
  const tcp = ok('gateway TCP', `connected to ${target.host}:${target.port}`);
  if (!target.tls) {
    socket.destroy();
    return { results: [dns, tcp, skip('gateway TLS', `${keys.url} is plaintext mqtt://`)] };
  }
  const secured = await tlsStep(socket, target, caPem, keys);
  return { ...secured, results: [dns, tcp, ...secured.results] };
}
