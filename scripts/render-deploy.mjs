// `npm run render`: writes deploy/kedge.yaml from the chart (after the build). `--check` fails
// instead of writing when the file differs, for CI.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureBinaries } from '../dist/localcluster/control-plane.js';
import { DEPLOY_FILE, renderDeploy } from '../dist/localcluster/render-deploy.js';

const binDir = await ensureBinaries((line) => console.error(line));
const text = await renderDeploy(path.join(binDir, 'helm'));
if (process.argv.includes('--check')) {
  const current = await readFile(DEPLOY_FILE, 'utf8').catch(() => '');
  if (current !== text) {
    console.error(`${DEPLOY_FILE} is stale: run npm run render`);
    process.exit(1);
  }
} else {
  await writeFile(DEPLOY_FILE, text);
  console.log(`wrote ${path.relative(process.cwd(), DEPLOY_FILE)}`);
}
