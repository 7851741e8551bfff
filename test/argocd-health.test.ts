import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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

const SAMPLES = path.join(PACKAGE_ROOT, 'test/fixtures/argocd');
/** Debian's Lua interpreter (package lua5.4). */
const LUA = 'lua5.4';

/** A Lua literal for a JSON-like value; strings are escaped byte by byte. */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') {
    const bytes = [...Buffer.from(value, 'utf8')];
    return `"${bytes.map((b) => (b >= 32 && b < 127 && b !== 34 && b !== 92 ? String.fromCharCode(b) : `\\${b}`)).join('')}"`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v != null);
  return `{${entries.map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`).join(', ')}}`;
}

/** Runs a health script the way Argo CD does: global `obj`, the chunk returns `{status, message}`. */
async function health(script: string, obj: unknown): Promise<{ status: string; message: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-lua-'));
  const harness = path.join(dir, 'harness.lua');
  await writeFile(
    harness,
    `obj = ${toLua(obj)}\nlocal hs = dofile(${toLua(script)})\nio.write(hs.status, "\\n", hs.message or "", "\\n")\n`,
  );
  return new Promise((resolve, reject) => {
    execFile(LUA, [harness], (err, stdout, stderr) => {
      if (err) return reject(new Error(`${LUA} failed: ${stderr}`));
      const [status = '', message = ''] = stdout.split('\n');
      resolve({ status, message });
    });
  });
}

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
