// `kedge check` and `kedge support-bundle`, the real CLI from dist/, against a real gateway on a
// real nats-server, a real `kedge node` on the real dockerd, and a real tmpfs for the full disk.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { silentLogger } from '../../src/common/logger.js';
import { createCa, issueCertificate } from '../../src/common/pki.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { NS, startGatewayRig, type GatewayRig } from '../gateway/helpers.js';
import { startTestNats, type TestNats } from '../support/nats.js';
import { SLEEPER, cleanupDevice, manifest, uniqueId, waitFor } from './helpers.js';
import { startNode, type NodeProcess } from './node-process.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kedge(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, stdout, stderr) =>
      err ? reject(new Error(`${command} ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    );
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** The line a check printed, e.g. `FAIL gateway TCP: …`, and the hint line under it. */
function lineOf(stdout: string, marker: string, name: string): string {
  const lines = stdout.split('\n');
  const i = lines.findIndex((l) => l.startsWith(`${marker} ${name}`));
  if (i < 0) throw new Error(`no "${marker} ${name}" line in:\n${stdout}`);
  const hint = lines[i + 1]?.trim().startsWith('hint:') ? `\n${lines[i + 1]}` : '';
  return `${lines[i]}${hint}`;
}

describe('kedge check and kedge support-bundle (real CLI, gateway, node, dockerd)', () => {
  let nats: TestNats;
  let rig: GatewayRig;
  let dir: string;
  const deviceId = uniqueId('kchk');
  const network = `${deviceId}-net`;
  const leafKey = Buffer.from(`leaf-secret-${deviceId}`).toString('base64');
  let key: string;
  let ports: { tls: number; methods: number; workload: number; metrics: number };

  /** A node config for this device; `patch` replaces top-level sections. */
  async function writeConfig(name: string, patch: Record<string, unknown> = {}): Promise<string> {
    const file = path.join(dir, name);
    const config = {
      deviceId,
      dataDir: path.join(dir, 'data'),
      agent: {
        network,
        containerNamePrefix: `${deviceId}-`,
        stopGraceSecs: 1,
        resyncIntervalSecs: 1,
      },
      metrics: { port: ports.metrics },
      hub: {
        tlsPort: ports.tls,
        methodsPort: ports.methods,
        workloadPort: ports.workload,
        leafDevices: [{ deviceId: 'leaf', primaryKey: leafKey }],
      },
      cloud: {
        url: rig.url,
        namespace: NS,
        device: deviceId,
        key,
        caPem: rig.ca.certPem,
        heartbeatSecs: 1,
      },
      ...patch,
    };
    await writeFile(file, stringify(config), { mode: 0o600 });
    return file;
  }

  beforeAll(async () => {
    nats = await startTestNats('check');
    rig = await startGatewayRig(nats.url);
    key = await rig.register(deviceId);
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-check-'));
    ports = {
      tls: await freePort(),
      methods: await freePort(),
      workload: await freePort(),
      metrics: await freePort(),
    };
  });

  afterAll(async () => {
    await cleanupDevice(deviceId, network);
    await rig?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe('a healthy device with kedge node running', () => {
    let node: NodeProcess;
    let configFile: string;

    beforeAll(async () => {
      configFile = await writeConfig('node.yaml');
      const deployment = path.join(dir, 'deployment.json');
      await writeFile(deployment, JSON.stringify(manifest({ one: { cmd: SLEEPER } })));
      node = startNode(['--config', configFile, '--manifest', deployment]);
      await node.started();
      await waitFor(
        'module one running',
        async () => (await node.status()).modules.one?.runtimeStatus === 'running',
      );
    });

    afterAll(async () => {
      node.child.kill('SIGTERM');
      await node.exited;
    });

    it('passes, with the gateway verified, the engine answering and the ports held by the node', async () => {
      const result = await kedge(['check', '--config', configFile]);
      console.log(result.stdout);
      expect(result.stdout).not.toMatch(/^FAIL/m);
      expect(result.code).toBe(0);
      expect(lineOf(result.stdout, 'ok  ', 'gateway TLS')).toMatch(
        /verified with cloud.caPem and names localhost/,
      );
      expect(lineOf(result.stdout, 'ok  ', 'certificate gateway')).toMatch(/valid until/);
      expect(lineOf(result.stdout, 'ok  ', 'certificate hub server')).toMatch(/valid until/);
      expect(lineOf(result.stdout, 'ok  ', 'engine')).toMatch(/^ok {3}engine: Docker \S+ answers/);
      const pid = node.child.pid!;
      for (const port of [ports.tls, ports.methods, ports.workload, ports.metrics])
        expect(lineOf(result.stdout, 'ok  ', `port ${port}`)).toContain(
          `held by the running kedge node (pid ${pid})`,
        );
    });

    it('fails a port held by another process, naming it and the config key', async () => {
      const squatter = net.createServer();
      const port = await freePort();
      await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
      try {
        const file = await writeConfig('squatted.yaml', { metrics: { port } });
        const result = await kedge(['check', '--config', file]);
        expect(result.code).toBe(1);
        expect(lineOf(result.stdout, 'FAIL', `port ${port}`)).toMatch(
          new RegExp(
            `metrics.port\\) is held by pid ${process.pid} .*not by kedge node\\n\\s+hint: stop that process, or give metrics.port another port`,
          ),
        );
      } finally {
        squatter.close();
      }
    });

    it('support-bundle: logs, redacted config, check output, metrics and versions; no secret inside', async () => {
      const output = path.join(dir, 'bundle.tar.gz');
      const result = await kedge([
        'support-bundle',
        '--config',
        configFile,
        '--output',
        output,
        '--since',
        '1h',
      ]);
      expect(result.stderr).toBe('');
      expect(result.stdout).toBe(`wrote ${output}\n`);
      const listing = (await run('tar', ['-tzf', output])).split('\n').filter(Boolean).sort();
      console.log(listing.join('\n'));
      expect(listing).toEqual(
        [
          'kedge-check.txt',
          'config/node.yaml',
          'versions.json',
          'logs/kedge-node.journal.txt',
          'logs/modules/one.log',
          'metrics.txt',
          'status.json',
        ]
          .map((n) => `kedge-support/${n}`)
          .sort(),
      );
      const out = path.join(dir, 'bundle');
      await mkdir(out);
      await run('tar', ['-xzf', output, '-C', out]);
      const read = (name: string): Promise<string> =>
        readFile(path.join(out, 'kedge-support', name), 'utf8');
      expect(await read('kedge-check.txt')).toMatch(/^ok {3}gateway TLS/m);
      expect(await read('logs/modules/one.log')).toMatch(/^\S+Z started /m);
      expect(await read('metrics.txt')).toMatch(/^kedge_agent_/m);
      expect(JSON.parse(await read('status.json'))).toHaveProperty('modules.one');
      const versions = JSON.parse(await read('versions.json'));
      expect(versions.node).toBe(process.version);
      expect(versions.engine).toMatch(/^docker \d/);
      const config = await read('config/node.yaml');
      expect(config).toContain('key: <redacted>');
      expect(config).toContain('primaryKey: <redacted>');
      expect(config).toContain(`device: ${deviceId}`);
      const everything = gunzipSync(await readFile(output)).toString('latin1');
      expect(everything).not.toContain(key);
      expect(everything).not.toContain(leafKey);
      expect(everything).not.toContain('PRIVATE KEY');
    });
  });

  it('reports a wrong gateway address (port and host) as a failure naming cloud.url', async () => {
    const closed = await freePort();
    const wrongPort = await writeConfig('wrong-port.yaml', {
      cloud: {
        url: `mqtts://localhost:${closed}`,
        namespace: NS,
        device: deviceId,
        key,
        caPem: rig.ca.certPem,
      },
    });
    const byPort = await kedge(['check', '--config', wrongPort]);
    console.log(byPort.stdout);
    expect(byPort.code).toBe(1);
    expect(lineOf(byPort.stdout, 'FAIL', 'gateway TCP')).toMatch(
      new RegExp(
        `cannot connect to localhost:${closed}: .*ECONNREFUSED.*\\n\\s+hint: check the host and port in cloud.url`,
      ),
    );
    expect(lineOf(byPort.stdout, 'skip', 'gateway TLS')).toContain('needs a TCP connection');

    const wrongHost = await writeConfig('wrong-host.yaml', {
      cloud: {
        url: 'mqtts://no-such-gateway.invalid:8883',
        namespace: NS,
        device: deviceId,
        key,
        caPem: rig.ca.certPem,
      },
    });
    const byHost = await kedge(['check', '--config', wrongHost]);
    expect(byHost.code).toBe(1);
    expect(lineOf(byHost.stdout, 'FAIL', 'gateway DNS')).toMatch(
      /no-such-gateway.invalid does not resolve.*\n\s+hint: check the host name in cloud.url/,
    );
  });

  it('reports expired certificates, served by the gateway and in the hub data dir, with hints', async () => {
    const expired = issueCertificate(rig.ca, {
      commonName: 'gw',
      altNames: ['localhost'],
      usage: ['server'],
      validitySecs: -60,
    });
    const stale = await Gateway.start({
      nc: rig.nc,
      port: 0,
      host: '127.0.0.1',
      tls: expired,
      log: silentLogger(),
    });
    const dataDir = path.join(dir, 'expired-data');
    const pki = path.join(dataDir, 'hub', 'pki');
    await mkdir(pki, { recursive: true });
    const deviceCa = createCa('kedge device CA test');
    const server = issueCertificate(deviceCa, {
      commonName: 'kedge-hub',
      usage: ['server'],
      validitySecs: -60,
    });
    await writeFile(path.join(pki, 'device-ca.crt'), deviceCa.certPem);
    await writeFile(path.join(pki, 'hub-server.crt'), server.certPem);
    try {
      const file = await writeConfig('expired.yaml', {
        dataDir,
        cloud: {
          url: `mqtts://localhost:${stale.port}`,
          namespace: NS,
          device: deviceId,
          key,
          caPem: rig.ca.certPem,
        },
      });
      const result = await kedge(['check', '--config', file]);
      console.log(result.stdout);
      expect(result.code).toBe(1);
      expect(lineOf(result.stdout, 'FAIL', 'gateway TLS')).toMatch(
        /certificate rejected: CERT_HAS_EXPIRED\n\s+hint: the gateway serves an expired certificate/,
      );
      expect(lineOf(result.stdout, 'FAIL', 'certificate gateway')).toMatch(
        /expired .*\n\s+hint: the controller renews Secret kedge-gateway-tls/,
      );
      expect(lineOf(result.stdout, 'FAIL', 'certificate hub server')).toMatch(
        /expired .*\n\s+hint: restart kedge node: the hub issues a new server certificate at start/,
      );
      expect(lineOf(result.stdout, 'ok  ', 'certificate device CA')).toMatch(/valid until/);
    } finally {
      await stale.close();
    }
  });

  it('reports a full disk under dataDir (an 8 MiB tmpfs, filled) with its hint', async () => {
    const mount = path.join(dir, 'tiny');
    await mkdir(mount);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
    try {
      const file = await writeConfig('full.yaml', {
        dataDir: mount,
        agent: { runtime: 'process' },
      });
      const before = await kedge(['check', '--config', file]);
      expect(lineOf(before.stdout, 'warn', 'disk space')).toMatch(
        /MiB free of 8.0 MiB \(100.0 %\)/,
      );
      await run('dd', ['if=/dev/zero', `of=${mount}/fill`, 'bs=1M', 'count=16']).catch(() => '');
      const result = await kedge(['check', '--config', file]);
      console.log(result.stdout);
      expect(result.code).toBe(1);
      expect(lineOf(result.stdout, 'FAIL', 'disk space')).toMatch(
        new RegExp(
          `0.0 MiB free of 8.0 MiB \\(0.0 %\\) for ${mount}\\n\\s+hint: free space on the filesystem of dataDir`,
        ),
      );
    } finally {
      await run('umount', [mount]);
    }
  });

  it('reports a broken config as one failure naming the key, and skips the rest', async () => {
    const file = path.join(dir, 'broken.yaml');
    await writeFile(file, 'agent:\n  runtim: docker\n');
    const result = await kedge(['check', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stdout.match(/^FAIL/gm)).toHaveLength(1);
    expect(lineOf(result.stdout, 'FAIL', 'config')).toMatch(
      /agent.runtim: unknown key\n\s+hint: fix the key named above/,
    );
    expect(lineOf(result.stdout, 'skip', 'gateway')).toContain('needs a valid config');
  });
});
