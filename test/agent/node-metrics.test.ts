// `kedge node` serves the hub's metrics next to the agent's on its local /metrics endpoint.
import mqtt from 'mqtt';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { uniqueId, waitFor } from './helpers.js';
import { startNode, type NodeProcess } from './node-process.js';

describe('kedge node metrics', () => {
  let dir: string;
  let node: NodeProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kedge-node-metrics-'));
  });

  afterEach(async () => {
    node?.child.kill('SIGKILL');
    await node?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  it('serves kedge_hub_* series with live values: a refused CONNECT counts one auth failure', async () => {
    const deviceId = uniqueId('km');
    await writeFile(
      path.join(dir, 'node.yaml'),
      [
        `deviceId: ${deviceId}`,
        `dataDir: ${dir}/data`,
        'agent:',
        '  runtime: process',
        'hub:',
        '  tlsPort: 0',
        '  methodsPort: 0',
        '  workloadPort: 0',
        'metrics:',
        '  port: 0',
      ].join('\n'),
    );
    node = startNode(['--config', path.join(dir, 'node.yaml')]);
    const url = await node.started();
    const hubLine = await waitFor('hub started', () =>
      node!.lines.find((l) => l.msg === 'hub started'),
    );
    const tlsPort = (hubLine.ports as { tls: number }).tls;
    const ca = await readFile(path.join(dir, 'data/hub/pki/device-ca.crt'), 'utf8');
    const clientId = `${deviceId}/intruder`;
    const client = mqtt.connect(`mqtts://127.0.0.1:${tlsPort}`, {
      clientId,
      username: `kedge.local/${clientId}/?api-version=2021-04-12`,
      password: 'SharedAccessSignature sr=x&sig=forged&se=9999999999',
      ca,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    const refused = await new Promise<string>((resolve) => {
      client.once('error', (err) => resolve(err.message));
      client.once('connect', () => resolve('connected'));
    });
    client.end(true);
    expect(refused).toMatch(/Bad username or password/);

    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^kedge_hub_auth_failures_total\{reason="[^"]+"\} 1$/m);
    expect(text).toMatch(/^kedge_hub_queue_depth 0$/m);
    expect(text).toMatch(/^kedge_agent_reconcile_duration_seconds_count /m);
  });
});
