/**
 * `kedge dashboard` in a real browser (Chromium through playwright-core) against `kedge up`:
 * the fleet, a device, deployments and live telemetry, a user without rights, and a device
 * going away while the page stays open. Screenshots go to .test-artifacts/dashboard/.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { DEFAULT_OFFLINE_AFTER_SECS } from '../../src/controller/manager.js';
import { PACKAGE_ROOT } from '../../src/localcluster/kubectl.js';
import { ensureChromium } from '../support/chromium.js';
import { eventually } from '../support/cluster.js';
import {
  descendants,
  printedSteps,
  startUp,
  stopAfterFailure,
  waitForTelemetry,
  type UpRun,
} from '../support/up.js';

const run = promisify(execFile);
const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');
const ARTIFACTS = path.join(PACKAGE_ROOT, '.test-artifacts', 'dashboard');
/**
 * The heartbeat window: the device's offline tolerance (the EdgeDevice default), plus the
 * controller's liveness check, its status write and the page's push.
 */
const DISCONNECT_WITHIN_MS = (DEFAULT_OFFLINE_AFTER_SECS + 20) * 1000;
/** Ctrl-C stops the dashboard within this, or the test kills it and fails. */
const STOP_WITHIN_MS = 10_000;
/** A phone held upright, as the page must work on one. */
const PHONE = { width: 390, height: 844 };

interface RunningDashboard {
  child: ChildProcess;
  url: string;
}

async function startDashboard(kubeconfig: string): Promise<RunningDashboard> {
  const child = spawn(
    process.execPath,
    [CLI, 'dashboard', '--no-open', '--kubeconfig', kubeconfig],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const url = await eventually(
    'kedge dashboard to print its URL',
    async () => {
      if (child.exitCode !== null) throw new Error(`kedge dashboard exited:\n${output}`);
      return /kedge dashboard: (http:\/\/\S+)/.exec(output)?.[1];
    },
    30_000,
  );
  return { child, url };
}

/** Ctrl-C: the dashboard must end at once, whatever its pages had open. */
async function stopDashboard(d: RunningDashboard): Promise<number | null> {
  if (d.child.exitCode !== null) return d.child.exitCode;
  const exited = new Promise<number | null>((resolve) => d.child.once('exit', resolve));
  d.child.kill('SIGINT');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), STOP_WITHIN_MS);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

function kubectl(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return run('kubectl', args, { env }).then((r) => r.stdout);
}

/** A kubeconfig for a ServiceAccount that has no RBAC rights at all. */
async function nobodyConfig(env: NodeJS.ProcessEnv): Promise<string> {
  await kubectl(['create', 'serviceaccount', 'dashboard-nobody', '-n', 'default'], env);
  const token = (
    await kubectl(['create', 'token', 'dashboard-nobody', '-n', 'default'], env)
  ).trim();
  const admin = JSON.parse(
    await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json'], env),
  );
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'local', cluster: admin.clusters[0].cluster }],
    users: [{ name: 'nobody', user: { token } }],
    contexts: [{ name: 'nobody', context: { cluster: 'local', user: 'nobody' } }],
    'current-context': 'nobody',
  };
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'kedge-dash-')), 'kubeconfig');
  await writeFile(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** The device's `kedge node` process among those `kedge up` started. */
async function nodeProcess(up: UpRun): Promise<number> {
  for (const pid of await descendants(up.child.pid!)) {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmdline.includes('node') && cmdline.includes('--config')) return pid;
  }
  throw new Error('kedge up runs no kedge node process');
}

async function chartPoints(page: Page): Promise<number> {
  const chart = page.locator('[data-testid^="chart-"]').first();
  return Number(await chart.getAttribute('data-points'));
}

describe('kedge dashboard', () => {
  const base = { ...process.env };
  delete base.KUBECONFIG;
  let up: UpRun;
  let env: NodeJS.ProcessEnv;
  let browser: Browser;
  const dashboards: RunningDashboard[] = [];

  beforeAll(async () => {
    const executablePath = await ensureChromium();
    await mkdir(ARTIFACTS, { recursive: true });
    const home = await mkdtemp(path.join(tmpdir(), 'kedge-dash-home-'));
    up = startUp({ ...base, KEDGE_HOME: home }, ['--runtime', 'process']);
    await waitForTelemetry(up);
    env = printedSteps(up.output(), base).env;
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  }, 420_000);

  afterAll(async () => {
    await browser?.close();
    for (const d of dashboards) await stopDashboard(d);
    if (up) await stopAfterFailure(up);
  }, 180_000);

  it('shows the fleet, the device with its modules, deployments and a growing chart; stopping the device turns it disconnected with no reload', async () => {
    const dashboard = await startDashboard(env.KUBECONFIG!);
    dashboards.push(dashboard);
    const page = await browser.newPage();
    await page.goto(dashboard.url);

    const row = page.getByTestId('device-default/demo');
    await row.getByText('Connected', { exact: true }).waitFor({ timeout: 30_000 });
    await shot(page, '1-fleet');

    await row.click();
    for (const module of ['sensor', 'filter'])
      await page.getByTestId(`module-${module}`).getByText('running').waitFor({ timeout: 60_000 });
    await page.getByTestId('log').filter({ hasText: /\S/ }).waitFor({ timeout: 30_000 });
    await page.getByTestId('twin').filter({ hasText: '"reported"' }).waitFor({ timeout: 30_000 });
    await shot(page, '2-device');

    await page.getByText('Live telemetry').click();
    await page.locator('[data-testid^="chart-"]').first().waitFor({ timeout: 30_000 });
    const before = await chartPoints(page);
    await eventually('the telemetry chart to grow', async () =>
      (await chartPoints(page)) > before ? true : undefined,
    );
    await page.getByTestId('pause').click();
    const paused = await chartPoints(page);
    await page.waitForTimeout(3_000);
    expect(await chartPoints(page)).toBe(paused);
    await page.getByTestId('pause').click();
    await shot(page, '3-telemetry');

    await page.goto(new URL('/#/deployments', dashboard.url).toString());
    await page.locator('[data-testid^="deployment-default/"]').first().waitFor();
    await shot(page, '4-deployments');
    await page.getByText('Live telemetry').first().click();
    await page.locator('[data-testid^="chart-"]').first().waitFor({ timeout: 30_000 });
    await page.getByText('devices: demo').waitFor();
    await shot(page, '4b-deployment-telemetry');

    const phone = await browser.newPage({ viewport: PHONE });
    await phone.goto(dashboard.url);
    await phone
      .getByTestId('device-default/demo')
      .getByText('Connected', { exact: true })
      .waitFor();
    await shot(phone, '5-fleet-phone');

    // The fleet page stays open; the device goes away under it.
    await page.goto(new URL('/#/', dashboard.url).toString());
    await row.getByText('Connected', { exact: true }).waitFor();
    const loads: string[] = [];
    page.on('load', () => loads.push(page.url()));
    // Frozen, not killed: the link stays open but heartbeats stop, so the controller must notice
    // the silence; and once thawed, kedge up still stops the device and its modules cleanly.
    const node = await nodeProcess(up);
    process.kill(node, 'SIGSTOP');
    await row.getByText('Disconnected', { exact: true }).waitFor({ timeout: DISCONNECT_WITHIN_MS });
    expect(loads).toEqual([]);
    await shot(page, '6-fleet-disconnected');
    process.kill(node, 'SIGCONT');
    await row.getByText('Connected', { exact: true }).waitFor({ timeout: DISCONNECT_WITHIN_MS });

    // Its pages (a log tail and telemetry among them) must not keep it running after Ctrl-C.
    expect(await stopDashboard(dashboard)).toBe(0);
  }, 300_000);

  it('tells a user whose kubeconfig cannot list EdgeDevices that they are not allowed', async () => {
    const dashboard = await startDashboard(await nobodyConfig(env));
    dashboards.push(dashboard);
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    const failure = page.getByTestId('failure');
    await failure.waitFor({ timeout: 30_000 });
    expect(await failure.textContent()).toMatch(/^Not allowed.*cannot list edgedevices/s);
    await shot(page, '7-not-allowed');
    expect(await stopDashboard(dashboard)).toBe(0);
  }, 120_000);
});
