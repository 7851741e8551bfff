import { execFile } from 'node:child_process';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateFiles } from '../src/crds/validate-files.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { startTestCluster, type TestCluster } from './support/cluster.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const FIXTURES = path.join(PACKAGE_ROOT, 'test/fixtures/iotedge');

/** What a fixture needs on top of the common flags: its placeholders' values, a priority. */
const FIXTURE_ARGS: Record<string, string[]> = {
  'deployment.template.json': [
    '--set',
    'CONTAINER_REGISTRY_USERNAME_contosoregistry=contosoregistry',
    '--set',
    'CONTAINER_REGISTRY_PASSWORD_contosoregistry=not-a-real-password-tmpl',
    '--set',
    'MODULES.PlcReader=contosoregistry.azurecr.io/plc-reader:0.3.1-amd64',
    '--set',
    'PLC_ENDPOINT=opc.tcp://plc-7:4840',
    '--set',
    'AGGREGATOR_TAG=1.4.0',
    '--set',
    'WINDOW_SECS=60',
    '--set',
    'LINE_NAME=line-7',
  ],
  'layered-monitoring.json': ['--priority', '10'],
};
/** The template's registry address comes from the environment, as the dev tools' .env gives it. */
const FIXTURE_ENV = { CONTAINER_REGISTRY_ADDRESS: 'contosoregistry.azurecr.io' };

function kedge(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('kedge manifest import against a real API server', () => {
  let cluster: TestCluster;
  let fixtures: string[];

  beforeAll(async () => {
    cluster = await startTestCluster('manifest-import');
    fixtures = (await readdir(FIXTURES)).filter((f) => f.endsWith('.json')).sort();
    await cluster.kubectlOk(['create', 'namespace', 'imported']);
  });
  afterAll(async () => cluster?.cp.stop());

  it('has the sample manifests', () => {
    expect(fixtures).toEqual([
      'deployment.template.json',
      'layered-monitoring.json',
      'mqtt-broker.json',
      'multi-module.json',
      'proxy.json',
      'simulated-temperature-sensor.json',
    ]);
  });

  it('converts every fixture; the output passes kedge validate and applies to the cluster', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kedge-import-'));
    for (const f of fixtures) {
      const res = await kedge(
        [
          'manifest',
          'import',
          path.join(FIXTURES, f),
          '-n',
          'imported',
          '--selector',
          'site=lyon',
          ...(FIXTURE_ARGS[f] ?? []),
        ],
        FIXTURE_ENV,
      );
      expect({ f, code: res.code }).toEqual({ f, code: 0 });
      // Warnings go to stderr, one line each, and never a stack trace or a password.
      expect(res.stderr).toMatch(/^warning: /m);
      expect(res.stderr).not.toMatch(/\n\s+at |not-a-real-password/);
      expect(res.stdout).not.toMatch(/not-a-real-password/);
      const out = path.join(dir, f.replace(/\.json$/, '.yaml'));
      await writeFile(out, res.stdout);
      const report = await validateFiles([out]);
      expect({ f, lines: report.lines, invalid: report.invalid }).toEqual({
        f,
        lines: report.lines,
        invalid: 0,
      });
      expect(report.total).toBe(1);
      await cluster.kubectlOk(['apply', '--dry-run=server', '-f', out]);
      await cluster.kubectlOk(['apply', '-f', out]);
    }
    const names = await cluster.kubectlOk([
      'get',
      'edgedeployments',
      '-n',
      'imported',
      '-o',
      'jsonpath={.items[*].metadata.name}',
    ]);
    expect(names.split(' ').sort()).toEqual([
      'deployment-template',
      'layered-monitoring',
      'mqtt-broker',
      'multi-module',
      'proxy',
      'simulated-temperature-sensor',
    ]);
    const get = async (name: string): Promise<any> =>
      JSON.parse(
        await cluster.kubectlOk(['get', 'edgedeployment', name, '-n', 'imported', '-o', 'json']),
      );
    const layered = await get('layered-monitoring');
    expect(layered.spec.priority).toBe(10);
    expect(layered.spec.desiredProperties).toContainEqual({
      module: expect.any(String),
      path: 'layeredProperties.SendInterval',
      value: 5,
    });
    const templated = await get('deployment-template');
    expect(templated.spec.modules.map((m: any) => m.image)).toEqual([
      'contosoregistry.azurecr.io/plc-reader:0.3.1-amd64',
      'contosoregistry.azurecr.io/aggregator:1.4.0',
    ]);
    const stored = JSON.parse(
      await cluster.kubectlOk([
        'get',
        'edgedeployment',
        'multi-module',
        '-n',
        'imported',
        '-o',
        'json',
      ]),
    );
    expect(
      stored.spec.modules.find((m: any) => m.name === 'modbus-tcp').createOptions.Labels,
    ).toEqual({ 'com.contoso.role': 'field-bus', 'com.contoso.site': 'lyon' });
  });

  it('fails in one line on a file that is not a manifest', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'kedge-import-'));
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ modulesContent: { $edgeAgent: {} } }));
    const res = await kedge(['manifest', 'import', bad]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^kedge: invalid deployment manifest: .*properties\.desired/);
    const missing = await kedge(['manifest', 'import', path.join(dir, 'nope.json')]);
    expect(missing.stderr).toMatch(/^kedge: .*nope\.json: cannot read the file\n$/);
  });

  it('names every unresolved template placeholder in one line and writes nothing', async () => {
    const res = await kedge(
      ['manifest', 'import', path.join(FIXTURES, 'deployment.template.json')],
      {
        CONTAINER_REGISTRY_ADDRESS: '',
      },
    );
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(
      /^kedge: unresolved placeholders CONTAINER_REGISTRY_USERNAME_contosoregistry \(at modulesContent\.\$edgeAgent\["properties\.desired"\]\.runtime\.settings\.registryCredentials\.contosoregistry\.username\), .*LINE_NAME \(at modulesContent\.Aggregator\["properties\.desired"\]\.Line\): pass --set /,
    );
  });

  it('has --help with an example', async () => {
    const res = await kedge(['manifest', 'import', '--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Example:\n\s+kedge manifest import deployment\.json/);
  });
});
