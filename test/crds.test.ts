import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CRD_SOURCES } from '../src/crds/index.js';
import { objectSchema } from '../src/crds/crd.js';
import type { CelRule, Schema } from '../src/crds/schema.js';
import { validateFiles } from '../src/crds/validate-files.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import { startTestCluster, type TestCluster } from './support/cluster.js';

const FIXTURES = path.join(PACKAGE_ROOT, 'test/fixtures/crs');

interface Sample {
  file: string;
  /** The field the rejection must name (invalid samples only). */
  field?: string;
}

async function samples(kind: 'valid' | 'invalid'): Promise<Sample[]> {
  const dir = path.join(FIXTURES, kind);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  return Promise.all(
    files.map(async (f) => {
      const text = await readFile(path.join(dir, f), 'utf8');
      const field = /^# expect-field: (\S+)/m.exec(text)?.[1];
      return { file: path.join(dir, f), field };
    }),
  );
}

function celRules(schema: Schema): CelRule[] {
  return [
    ...(schema['x-kubernetes-validations'] ?? []),
    ...Object.values(schema.properties ?? {}).flatMap(celRules),
    ...(schema.items ? celRules(schema.items) : []),
  ];
}

describe('kedge CRDs on a real kube-apiserver', () => {
  let cluster: TestCluster;
  let valid: Sample[];
  let invalid: Sample[];

  beforeAll(async () => {
    cluster = await startTestCluster('crds');
    valid = await samples('valid');
    invalid = await samples('invalid');
  });
  afterAll(async () => cluster?.cp.stop());

  it('has a corpus of at least 20 valid and 20 invalid samples', () => {
    expect(valid.length).toBeGreaterThanOrEqual(20);
    expect(invalid.length).toBeGreaterThanOrEqual(20);
    for (const s of invalid) expect(s.field).toBeDefined();
  });

  it('establishes all three CRDs', async () => {
    const out = await cluster.kubectlOk(['get', 'crd', '-o', 'json']);
    const crds = (JSON.parse(out) as { items: any[] }).items.filter(
      (c) => c.spec.group === 'kedge.io',
    );
    expect(crds.map((c) => c.spec.names.kind).sort()).toEqual([
      'EdgeDeployment',
      'EdgeDevice',
      'Route',
    ]);
    for (const crd of crds) {
      const established = crd.status.conditions.find((c: any) => c.type === 'Established');
      expect(established?.status).toBe('True');
    }
  });

  it('accepts every valid sample, and kedge validate agrees', async () => {
    for (const s of valid) {
      const res = await cluster.kubectl(['create', '--dry-run=server', '-f', s.file]);
      expect({ file: s.file, code: res.code, stderr: res.stderr }).toEqual({
        file: s.file,
        code: 0,
        stderr: '',
      });
      const report = await validateFiles([s.file]);
      expect({ file: s.file, invalid: report.invalid, lines: report.lines }).toMatchObject({
        invalid: 0,
      });
    }
  });

  it('rejects every invalid sample naming the field, and kedge validate agrees', async () => {
    for (const s of invalid) {
      const res = await cluster.kubectl(['create', '--dry-run=server', '-f', s.file]);
      expect({ file: s.file, code: res.code }).toEqual({ file: s.file, code: 1 });
      expect(res.stderr).toContain(s.field!);
      const report = await validateFiles([s.file]);
      expect({ file: s.file, invalid: report.invalid }).toEqual({ file: s.file, invalid: 1 });
      expect(
        report.lines.some(
          (l) =>
            l.includes(`: ${s.field}: `) ||
            l.includes(`: ${s.field}[`) ||
            l.includes(`: ${s.field}.`),
        ),
      ).toBe(true);
    }
  });

  it('exercises every CEL rule of the CRDs through the API server', async () => {
    const rules = CRD_SOURCES.flatMap((s) => celRules(objectSchema(s)));
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const messages = new Set<string>();
    for (const s of invalid) {
      const res = await cluster.kubectl(['create', '--dry-run=server', '-f', s.file]);
      for (const rule of rules) if (res.stderr.includes(rule.message)) messages.add(rule.message);
    }
    expect([...new Set(rules.map((r) => r.message))].filter((m) => !messages.has(m))).toEqual([]);
  });

  it('shows the printer columns in kubectl get kedge and kubectl get edgedevices', async () => {
    for (const s of valid) await cluster.kubectlOk(['create', '-f', s.file]);
    const device = {
      status: {
        phase: 'Connected',
        nodeName: 'kedge-dev-labels',
        moduleSummary: '2/2',
        lastSeen: new Date().toISOString(),
      },
    };
    await cluster.kubectlOk([
      'patch',
      'edgedevice',
      'dev-labels',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify(device),
    ]);

    const devices = await cluster.kubectlOk(['get', 'edgedevices']);
    expect(devices.split('\n')[0]).toMatch(/^NAME\s+PHASE\s+NODE\s+MODULES\s+LAST SEEN\s+AGE$/);
    expect(devices).toMatch(/dev-labels\s+Connected\s+kedge-dev-labels\s+2\/2\s+\d+s/);

    const all = await cluster.kubectlOk(['get', 'kedge']);
    expect(all).toMatch(
      /NAME\s+PRIORITY\s+TARGETED\s+APPLIED\s+SUCCESSFUL\s+FAILED\s+ROLLOUT\s+READY\s+AGE/,
    );
    expect(all).toContain('edgedeployment.kedge.io/sensor-filter');
    expect(all).toContain('edgedevice.kedge.io/dev-labels');
    expect(all).toContain('route.kedge.io/telemetry-upstream');
    const short = await cluster.kubectlOk(['get', 'ed,edep,rt', '-o', 'name']);
    expect(short).toContain('edgedevice.kedge.io/leaf-1');
  });
});
