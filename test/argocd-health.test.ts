import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { validateObject } from '../src/crds/validate.js';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';
import {
  ARGOCD_DIR,
  ARGOCD_HEALTH_CHECKS,
  ARGOCD_PATCH_FILE,
  renderArgoCdPatch,
} from '../src/localcluster/render-deploy.js';
import { health } from './support/argocd-health.js';

const SAMPLES = path.join(PACKAGE_ROOT, 'test/fixtures/argocd');
const VERDICTS: Record<string, string> = {
  healthy: 'Healthy',
  progressing: 'Progressing',
  degraded: 'Degraded',
};

describe('Argo CD health checks (Lua) on a real Lua interpreter', () => {
  let samples: string[];

  beforeAll(async () => {
    samples = (await readdir(SAMPLES)).filter((f) => f.endsWith('.yaml')).sort();
  });

  it('has Healthy, Progressing and Degraded samples for every kind, each a valid object', async () => {
    for (const kind of ['edgedevice', 'edgedeployment', 'route']) {
      for (const verdict of Object.keys(VERDICTS)) {
        expect(samples.some((s) => s.startsWith(`${kind}.${verdict}.`))).toBe(true);
      }
    }
    for (const s of samples) {
      const obj = parse(await readFile(path.join(SAMPLES, s), 'utf8'));
      expect({ s, problems: validateObject(obj) }).toEqual({ s, problems: [] });
    }
  });

  it('gives the verdict each sample names', async () => {
    for (const s of samples) {
      const [kindFile, verdict] = s.split('.') as [string, string];
      const obj = parse(await readFile(path.join(SAMPLES, s), 'utf8')) as { kind: string };
      const script = path.join(
        ARGOCD_DIR,
        ARGOCD_HEALTH_CHECKS[obj.kind as keyof typeof ARGOCD_HEALTH_CHECKS],
      );
      expect(path.basename(script)).toBe(`${kindFile}.lua`);
      const hs = await health(script, obj);
      expect({ s, status: hs.status }).toEqual({ s, status: VERDICTS[verdict] });
      expect(hs.message.length).toBeGreaterThan(0);
    }
  });

  it('explains the verdict in the message', async () => {
    const read = async (s: string): Promise<unknown> =>
      parse(await readFile(path.join(SAMPLES, s), 'utf8'));
    const route = await health(
      path.join(ARGOCD_DIR, 'route.lua'),
      await read('route.degraded.parse-error.yaml'),
    );
    expect(route.message).toMatch(/^invalid route: expected an expression \(at position 23/);
    const stale = await health(
      path.join(ARGOCD_DIR, 'edgedeployment.lua'),
      await read('edgedeployment.progressing.stale-generation.yaml'),
    );
    expect(stale.message).toBe('the controller has not yet observed generation 6');
    const layered = await health(
      path.join(ARGOCD_DIR, 'edgedeployment.lua'),
      await read('edgedeployment.healthy.layered-conflict.yaml'),
    );
    expect(layered.message).toMatch(/lost to higher-priority deployments/);
    const rolledBack = await health(
      path.join(ARGOCD_DIR, 'edgedeployment.lua'),
      await read('edgedeployment.healthy.rolled-back.yaml'),
    );
    expect(rolledBack.message).toMatch(
      /^rolled back to revision 1b2c3d4e5f; .*generation 3.*failed/,
    );
    const offline = await health(
      path.join(ARGOCD_DIR, 'edgedevice.lua'),
      await read('edgedevice.degraded.disconnected.yaml'),
    );
    expect(offline.message).toBe('device disconnected, last seen 2025-01-10T09:00:00Z');
  });

  it('the argocd-cm patch carries exactly the scripts (fails on drift: npm run render)', async () => {
    expect((await readFile(ARGOCD_PATCH_FILE, 'utf8')) === (await renderArgoCdPatch())).toBe(true);
    const patch = parse(await readFile(ARGOCD_PATCH_FILE, 'utf8')) as {
      data: Record<string, string>;
    };
    expect(Object.keys(patch.data).sort()).toEqual([
      'resource.customizations.health.kedge.io_EdgeDeployment',
      'resource.customizations.health.kedge.io_EdgeDevice',
      'resource.customizations.health.kedge.io_Route',
    ]);
  });
});
