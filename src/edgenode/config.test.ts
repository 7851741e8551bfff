import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configFromEnv, loadConfig } from './config.js';

async function file(text: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-config-'));
  const f = path.join(dir, 'node.yaml');
  await writeFile(f, text);
  return f;
}

describe('node config', () => {
  it('applies defaults, file, environment and flags in that order', async () => {
    const f = await file(
      'deviceId: dev1\nagent:\n  maxRestarts: 3\n  network: fromfile\nhub:\n  anything: [1, 2]\n',
    );
    const config = await loadConfig({
      file: f,
      env: {
        KEDGE_AGENT_NETWORK: 'fromenv',
        KEDGE_METRICS_PORT: '0',
        KEDGE_AGENT_STOP_MODULES_ON_EXIT: 'true',
      },
      overrides: { dataDir: '/tmp/x' },
    });
    expect(config).toMatchObject({
      deviceId: 'dev1',
      dataDir: '/tmp/x',
      agent: {
        maxRestarts: 3,
        network: 'fromenv',
        runtime: 'docker',
        restartBackoffUnitSecs: 10,
        stopModulesOnExit: true,
      },
      metrics: { port: 0, enabled: true, host: '127.0.0.1' },
      hub: { anything: [1, 2] },
    });
  });

  it('names the bad key of the file', async () => {
    const f = await file('agent:\n  runtime: podman\n  maxRestart: 3\nmetrics:\n  port: -1\n');
    await expect(loadConfig({ file: f, env: {} })).rejects.toThrow(
      `${f}: agent.maxRestart: unknown key; agent.runtime: must be one of docker, process; metrics.port: must be >= 0`,
    );
  });

  it('names the bad key of the environment', async () => {
    await expect(loadConfig({ env: { KEDGE_AGENT_MAX_RESTARTS: 'many' } })).rejects.toThrow(
      'environment: agent.maxRestarts: must be integer',
    );
  });

  it('rejects a hub section that is not an object, and YAML that does not parse', async () => {
    await expect(loadConfig({ file: await file('hub: 3\n'), env: {} })).rejects.toThrow(
      'hub: must be object',
    );
    await expect(loadConfig({ file: await file('agent: [\n'), env: {} })).rejects.toThrow(
      /not valid YAML/,
    );
  });

  it('refuses a plaintext cloud link unless allowed for development', async () => {
    const cloud = (url: string, extra = ''): string =>
      `cloud:\n  url: ${url}\n  namespace: ns\n  device: d1\n  key: ${'k'.repeat(44)}\n` +
      `  caPem: "-----BEGIN CERTIFICATE-----"\n${extra}`;
    const plain = await file(cloud('mqtt://hub.example:1883'));
    await expect(loadConfig({ file: plain, env: {} })).rejects.toThrow(
      `${plain}: cloud.url: mqtt:// is unencrypted (device tokens, desired state and telemetry in clear); use mqtts://, or set cloud.allowPlaintext: true for development only`,
    );
    const allowed = await file(cloud('mqtt://hub.example:1883', '  allowPlaintext: true\n'));
    await expect(loadConfig({ file: allowed, env: {} })).resolves.toMatchObject({
      cloud: { url: 'mqtt://hub.example:1883', allowPlaintext: true },
    });
    const secure = await file(cloud('mqtts://hub.example:8883'));
    await expect(loadConfig({ file: secure, env: {} })).resolves.toMatchObject({
      cloud: { url: 'mqtts://hub.example:8883' },
    });
  });

  it('maps camelCase keys to KEDGE_SECTION_KEY names', () => {
    expect(
      configFromEnv({
        KEDGE_AGENT_RESTART_BACKOFF_UNIT_SECS: '0.5',
        KEDGE_DEVICE_ID: 'd',
        OTHER: 'x',
      }),
    ).toEqual({
      deviceId: 'd',
      agent: { restartBackoffUnitSecs: 0.5 },
    });
  });
});
