// `npm run render`: writes deploy/kedge.yaml from the chart and deploy/argocd/argocd-cm-patch.yaml
// from docs/argocd/*.lua (after the build). `--check` fails instead of writing when a file
// differs, for CI.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureBinaries } from '../dist/localcluster/control-plane.js';
import {
  ARGOCD_PATCH_FILE,
  DEPLOY_FILE,
  renderArgoCdPatch,
  renderDeploy,
} from '../dist/localcluster/render-deploy.js';

const binDir = await ensureBinaries((line) => console.error(line));
const outputs = new Map([
  [DEPLOY_FILE, await renderDeploy(path.join(binDir, 'helm'))],
  [ARGOCD_PATCH_FILE, await renderArgoCdPatch()],
]);
let stale = 0;
for (const [file, text] of outputs) {
  const relative = path.relative(process.cwd(), file);
  if (process.argv.includes('--check')) {
    const current = await readFile(file, 'utf8').catch(() => '');
    if (current !== text) {
      console.error(`${relative} is stale: run npm run render`);
      stale++;
    }
    continue;
  }
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  console.log(`wrote ${relative}`);
}
process.exit(stale > 0 ? 1 : 0);
