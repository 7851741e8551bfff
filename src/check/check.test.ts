import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { createCa, issueCertificate } from '../common/pki.js';
import { EXPIRY_WARN_MS, judgeClock, judgeExpiry } from './certificates.js';
import { judgeApiService, judgeCrd, judgeDevice, judgeGatewayEndpoints } from './cluster.js';
import { defaultConfig } from '../edgenode/config.js';
import { nodePorts } from './device.js';
import { DISK_FAIL_BYTES, judgeDisk } from './disk.js';
import { gatewayTarget, probeGateway } from './gateway.js';
import { judgePort, listeningInodes, type NodePort } from './ports.js';
import { REDACTED, redactValue, scrubText } from './redact.js';
import { anyFailed, fail, formatResults, ok, skip, warn } from './result.js';
import { parseSince } from './support-bundle.js';
import { tarBuffer, tarGzip } from './tar.js';

const DAY_MS = 24 * 3600 * 1000;
const MIB = 1024 * 1024;

describe('formatResults', () => {
  it('prints one line per check, a hint under failures and warnings, and a summary', () => {
    const results = [
      ok('config', 'valid'),
      warn('clock', 'NTP not synchronized', 'enable NTP'),
      fail('gateway TCP', 'refused', 'check cloud.url'),
      skip('gateway TLS', 'needs TCP'),
    ];
    expect(formatResults(results)).toBe(
      [
        'ok   config: valid',
        'warn clock: NTP not synchronized',
        '       hint: enable NTP',
        'FAIL gateway TCP: refused',
        '       hint: check cloud.url',
        'skip gateway TLS: needs TCP',
        '1 ok, 1 warnings, 1 failed, 1 skipped',
        '',
      ].join('\n'),
    );
    expect(anyFailed(results)).toBe(true);
    expect(anyFailed(results.filter((r) => r.status !== 'fail'))).toBe(false);
  });
});

describe('certificate expiry and clock', () => {
  const ca = createCa('unit CA');
  const cert = new X509Certificate(
    issueCertificate(ca, { commonName: 'x', validityDays: 90 }).certPem,
  );
  const notAfter = Date.parse(cert.validTo);
  const subject = { name: 'x', certificate: cert, hint: 'renew it' };

  it('is ok well before expiry, warns inside the window, fails after', () => {
    expect(judgeExpiry(subject, notAfter - EXPIRY_WARN_MS - DAY_MS).status).toBe('ok');
    const soon = judgeExpiry(subject, notAfter - 3 * DAY_MS);
    expect(soon).toMatchObject({ status: 'warn', hint: 'renew it' });
    expect(soon.message).toMatch(/in 3 days/);
    expect(judgeExpiry(subject, notAfter + 1000)).toMatchObject({
      status: 'fail',
      hint: 'renew it',
    });
    expect(judgeExpiry({ ...subject, warnBeforeMs: DAY_MS }, notAfter - 3 * DAY_MS).status).toBe(
      'ok',
    );
  });

  it('fails a clock behind the certificate start, warns without NTP, says what it compared', () => {
    const start = Date.parse(cert.validFrom);
    expect(judgeClock(cert, start - 60_000, true)).toMatchObject({ status: 'fail' });
    expect(judgeClock(cert, start + 60_000, false).status).toBe('warn');
    const fine = judgeClock(cert, start + 60_000, true);
    expect(fine.status).toBe('ok');
    expect(fine.message).toContain('only its certificate start is compared');
  });
});

describe('judgeDisk', () => {
  const queue = 1024 * MIB;
  it('fails only below both 100 MiB and 5 %', () => {
    expect(judgeDisk('/d', { freeBytes: 50 * MIB, totalBytes: 2000 * MIB }, queue).status).toBe(
      'fail',
    );
    // 4 % of a big disk is many GiB: not a failure.
    expect(
      judgeDisk('/d', { freeBytes: 40_000 * MIB, totalBytes: 1_000_000 * MIB }, queue).status,
    ).toBe('warn');
    // A small filesystem mostly free is not a failure either.
    expect(judgeDisk('/d', { freeBytes: 7 * MIB, totalBytes: 8 * MIB }, queue).status).toBe('warn');
    expect(
      judgeDisk('/d', { freeBytes: DISK_FAIL_BYTES * 30, totalBytes: DISK_FAIL_BYTES * 40 }, queue)
        .status,
    ).toBe('ok');
  });
  it('warns when the queue bound does not fit', () => {
    const r = judgeDisk('/d', { freeBytes: 500 * MIB, totalBytes: 1000 * MIB }, queue);
    expect(r.status).toBe('warn');
    expect(r.message).toContain('hub.storeAndForward.maxBytes');
  });
});

describe('ports', () => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:22B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1',
    '   1: 0100007F:22B3 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4243 1',
    '   2: 00000000:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1',
  ].join('\n');
  it('finds the listening sockets of a port in /proc/net/tcp', () => {
    expect(listeningInodes(table, 8883)).toEqual(['4242']);
    expect(listeningInodes(table, 443)).toEqual(['5151']);
    expect(listeningInodes(table, 80)).toEqual([]);
  });

  const p: NodePort = { port: 8883, host: '127.0.0.1', key: 'hub.tlsPort' };
  it('accepts a free port and one held by the running node, fails one held by another', () => {
    expect(judgePort(p, { state: 'free' }, undefined).status).toBe('ok');
    expect(
      judgePort(p, { state: 'held', owner: { pid: 7, command: 'kedge node' } }, { pid: 7 }).status,
    ).toBe('ok');
    const other = judgePort(
      p,
      { state: 'held', owner: { pid: 9, command: 'mosquitto' } },
      { pid: 7 },
    );
    expect(other).toMatchObject({ status: 'fail' });
    expect(other.message).toContain('pid 9 (mosquitto)');
    expect(other.hint).toContain('hub.tlsPort');
    expect(judgePort(p, { state: 'held' }, undefined).status).toBe('fail');
    expect(judgePort(p, { state: 'held' }, { pid: 7 }).status).toBe('warn');
  });
});

describe('gatewayTarget', () => {
  it('reads host, port and scheme of cloud.url', () => {
    expect(gatewayTarget('mqtts://gw.example.com:18883')).toEqual({
      host: 'gw.example.com',
      port: 18883,
      tls: true,
    });
    expect(gatewayTarget('mqtts://gw')).toEqual({ host: 'gw', port: 8883, tls: true });
    expect(gatewayTarget('mqtt://[::1]')).toEqual({ host: '::1', port: 1883, tls: false });
  });
});

describe('redaction', () => {
  it('replaces every secret field and PEM private key, and collects the values', () => {
    const pair = issueCertificate(createCa('r'), { commonName: 'r' });
    const found = new Set<string>();
    const out = redactValue(
      {
        cloud: { url: 'mqtts://gw', key: 'c2VjcmV0LWRldmljZS1rZXk=', caPem: pair.certPem },
        hub: {
          leafDevices: [{ deviceId: 'leaf', primaryKey: 'cHJpbWFyeS1rZXktdmFsdWU=' }],
          upstream: { type: 'mqtt', password: 'hunter2hunter2' },
          note: `inline ${pair.keyPem}`,
        },
      },
      found,
    ) as {
      cloud: Record<string, string>;
      hub: {
        leafDevices: Record<string, string>[];
        upstream: Record<string, string>;
        note: string;
      };
    };
    expect(out.cloud.key).toBe(REDACTED);
    expect(out.cloud.caPem).toBe(pair.certPem);
    expect(out.cloud.url).toBe('mqtts://gw');
    expect(out.hub.leafDevices[0]).toEqual({ deviceId: 'leaf', primaryKey: REDACTED });
    expect(out.hub.upstream.password).toBe(REDACTED);
    expect(out.hub.note).toBe(`inline ${REDACTED}\n`);
    expect(found).toContain('c2VjcmV0LWRldmljZS1rZXk=');
    expect(
      scrubText('token c2VjcmV0LWRldmljZS1rZXk= and SharedAccessSignature sr=a&sig=b', found),
    ).toBe(`token ${REDACTED} and ${REDACTED}`);
  });
});

describe('tar', () => {
  it('writes ustar headers with a valid checksum, padded data and the end blocks', () => {
    const tar = tarBuffer([{ name: 'a/b.txt', data: 'hello' }], new Date(0));
    expect(tar.length).toBe(512 + 512 + 1024);
    expect(tar.subarray(0, 7).toString()).toBe('a/b.txt');
    expect(tar.subarray(124, 135).toString()).toBe('00000000005');
    expect(tar.subarray(257, 262).toString()).toBe('ustar');
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = Number.parseInt(header.subarray(148, 154).toString(), 8);
    header.fill(0x20, 148, 156);
    expect(header.reduce((s, b) => s + b, 0)).toBe(stored);
    expect(tar.subarray(512, 517).toString()).toBe('hello');
    expect(gunzipSync(tarGzip([{ name: 'x', data: 'y' }], new Date(0)))).toEqual(
      tarBuffer([{ name: 'x', data: 'y' }], new Date(0)),
    );
  });
  it('refuses a name longer than the ustar field', () => {
    expect(() => tarBuffer([{ name: 'n'.repeat(101), data: '' }])).toThrow(/1..100 bytes/);
  });
});

describe('parseSince', () => {
  it('reads s, m, h and d and names a bad value', () => {
    expect(parseSince('90s')).toBe(90);
    expect(parseSince('30m')).toBe(1800);
    expect(parseSince('1h')).toBe(3600);
    expect(parseSince('2d')).toBe(172_800);
    expect(() => parseSince('1 hour')).toThrow(
      '--since 1 hour: expected a number and s, m, h or d',
    );
  });
});

describe('cluster judgements', () => {
  const meta = { metadata: { name: 'x', namespace: 'factory' } };
  const cond = (type: string, status: string, reason?: string): object => ({
    status: { conditions: [{ type, status, reason }] },
  });
  it('judges CRDs, the APIService and gateway endpoints by their conditions', () => {
    expect(judgeCrd('edgedevices.kedge.io', undefined).status).toBe('fail');
    expect(
      judgeCrd('edgedevices.kedge.io', { ...meta, ...cond('Established', 'True') }).status,
    ).toBe('ok');
    expect(
      judgeApiService({ ...meta, ...cond('Available', 'False', 'MissingEndpoints') }),
    ).toMatchObject({
      status: 'fail',
      message: 'not available: MissingEndpoints',
    });
    expect(judgeGatewayEndpoints('kedge-system', []).status).toBe('fail');
    expect(
      judgeGatewayEndpoints('kedge-system', [
        { ...meta, endpoints: [{ conditions: { ready: true } }] },
      ]).status,
    ).toBe('ok');
  });
  it('judges a device by phase and conditions', () => {
    expect(judgeDevice('factory/x', undefined).status).toBe('fail');
    expect(judgeDevice('factory/x', { ...meta, status: { phase: 'Pending' } }).hint).toContain(
      'never connected',
    );
    expect(
      judgeDevice('factory/x', {
        ...meta,
        status: {
          phase: 'Connected',
          lastSeen: 't',
          conditions: [{ type: 'ModulesHealthy', status: 'False', reason: 'CrashLoop' }],
        },
      }),
    ).toMatchObject({
      status: 'warn',
      message: 'phase Connected, lastSeen t; ModulesHealthy=False (CrashLoop)',
    });
    expect(
      judgeDevice('factory/x', { ...meta, status: { phase: 'Connected', lastSeen: 't' } }).status,
    ).toBe('ok');
  });
});

describe('probeGateway (a TLS server on loopback)', () => {
  const ca = createCa('unit gateway CA');
  async function serve(
    altNames: string[],
    signer = ca,
  ): Promise<{ url: string; close: () => void }> {
    const leaf = issueCertificate(signer, { commonName: 'gw', altNames, usage: ['server'] });
    const server = tls.createServer({ cert: leaf.certPem, key: leaf.keyPem }, () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `mqtts://localhost:${(server.address() as AddressInfo).port}`,
      close: () => server.close(),
    };
  }

  it('verifies a certificate that names the host and returns it', async () => {
    const gw = await serve(['localhost']);
    try {
      const probe = await probeGateway(gw.url, ca.certPem);
      expect(probe.results.map((r) => r.status)).toEqual(['ok', 'ok', 'ok']);
      expect(probe.certificate?.subject).toBe('CN=gw');
    } finally {
      gw.close();
    }
  });

  it('fails a certificate for another name, and one from another CA, each with its hint', async () => {
    const other = await serve(['gateway.example.com']);
    const foreign = await serve(['localhost'], createCa('someone else'));
    try {
      const named = (await probeGateway(other.url, ca.certPem)).results[2]!;
      expect(named).toMatchObject({ status: 'fail' });
      expect(named.hint).toContain('does not name localhost');
      const signed = (await probeGateway(foreign.url, ca.certPem)).results[2]!;
      expect(signed).toMatchObject({ status: 'fail' });
      expect(signed.hint).toContain('not signed by cloud.caPem');
    } finally {
      other.close();
      foreign.close();
    }
  });
});

describe('nodePorts', () => {
  it('lists the hub ports and the metrics port as the config sets them', () => {
    const config = defaultConfig();
    expect(nodePorts(config).map((p) => `${p.key}=${p.port}`)).toEqual([
      'hub.tlsPort=8883',
      'hub.methodsPort=443',
      'hub.workloadPort=15580',
      'metrics.port=9600',
    ]);
    config.hub = { methodsPort: null, plainPort: 1883, host: ['0.0.0.0'] };
    config.metrics.port = 0;
    expect(nodePorts(config).map((p) => `${p.host}:${p.port}`)).toEqual([
      '0.0.0.0:8883',
      '0.0.0.0:1883',
      '127.0.0.1:15580',
    ]);
    config.hub = { enabled: false };
    expect(nodePorts(config)).toEqual([]);
  });
});
