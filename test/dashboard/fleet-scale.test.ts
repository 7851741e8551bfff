/**
 * The fleet page with 5,000 EdgeDevices (objects only; no controller or devices): it shows the
 * whole fleet quickly, keeps only the visible rows in the page, scrolls to the last device, and
 * filters and groups on the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { KubeClient, Resources } from '../../src/controller/kube/client.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { ensureChromium } from '../support/chromium.js';
import { eventually, startTestCluster, type TestCluster } from '../support/cluster.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const ARTIFACTS = path.join(PACKAGE_ROOT, '.test-artifacts', 'dashboard');
const DEVICES = 5_000;
const SITES = 20;
/** Creations in flight at once: enough to fill the API server, not to starve the other tests. */
const CREATE_CONCURRENCY = 16;
/** A user must see the fleet within this after opening the page. */
const FIRST_VIEW_WITHIN_MS = 10_000;

/** Devices whose status turns Connected while the page is open. */
const CONNECTING = 500;

const nameOf = (i: number): string => `dev-${String(i).padStart(4, '0')}`;

async function createFleet(client: KubeClient): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < DEVICES) {
      const i = next++;
      await client.create(Resources.edgeDevices('default'), {
        apiVersion: 'kedge.io/v1alpha1',
        kind: 'EdgeDevice',
        metadata: { name: nameOf(i), labels: { site: `site-${i % SITES}` } },
        spec: {},
      });
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
}

/** Writes status.phase Connected on the first `count` devices, as the controller would. */
async function connect(client: KubeClient, count: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const name = nameOf(next++);
      await client.patch(
        Resources.edgeDevices('default'),
        name,
        { status: { phase: 'Connected', lastSeen: new Date().toISOString() } },
        { subresource: 'status' },
      );
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
}

describe('kedge dashboard with 5,000 devices', () => {
  let cluster: TestCluster;
  let browser: Browser;
  let dashboard: ChildProcess | undefined;

  beforeAll(async () => {
    const executablePath = await ensureChromium();
    await mkdir(ARTIFACTS, { recursive: true });
    cluster = await startTestCluster('dashboard-scale');
    await createFleet(KubeClient.fromConfig(cluster.cp.kubeconfigPath));
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  }, 300_000);

  afterAll(async () => {
    if (dashboard?.exitCode === null) dashboard.kill('SIGKILL');
    await browser?.close();
    await cluster?.cp.stop();
  });

  it('shows the fleet in seconds, renders only visible rows, and filters and groups on the server', async () => {
    dashboard = spawn(
      process.execPath,
      [CLI, 'dashboard', '--no-open', '--kubeconfig', cluster.cp.kubeconfigPath],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    dashboard.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    const url = await eventually(
      'the dashboard URL',
      async () => /kedge dashboard: (http:\/\/\S+)/.exec(output)?.[1],
    );
    const page = await browser.newPage();
    const started = Date.now();
    await page.goto(url);
    await page.getByText(`${DEVICES} devices`).waitFor({ timeout: FIRST_VIEW_WITHIN_MS });
    await page.getByTestId(`device-default/${nameOf(0)}`).waitFor();
    const firstViewMs = Date.now() - started;
    console.log(`fleet of ${DEVICES} shown ${firstViewMs} ms after opening the page`);
    await page.screenshot({ path: path.join(ARTIFACTS, '8-fleet-5000.png') });

    // Virtualized: a screenful of rows in the page, not 5,000.
    const rendered = await page.locator('[data-testid^="device-default/"]').count();
    expect(rendered).toBeLessThan(100);
    await page.getByTestId('fleet-list').evaluate((el) => (el.scrollTop = el.scrollHeight));
    await page.getByTestId(`device-default/${nameOf(DEVICES - 1)}`).waitFor();

    // Live at scale: devices connecting while the page is open show up without a reload.
    await connect(KubeClient.fromConfig(cluster.cp.kubeconfigPath), CONNECTING);
    await page.getByText(`${CONNECTING} connected`).waitFor({ timeout: 30_000 });

    await page.getByLabel('Filter devices').fill(nameOf(4321));
    await eventually('the filter to leave one row', async () =>
      (await page.locator('[data-testid^="device-default/"]').count()) === 1 ? true : undefined,
    );

    await page.getByLabel('Filter devices').fill('');
    await page.getByLabel('Group by').selectOption('site');
    await page.getByText(/^site=site-0 · /).waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, '9-fleet-5000-by-site.png') });

    const exited = new Promise<number | null>((resolve) => dashboard!.once('exit', resolve));
    dashboard.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 120_000);
});
