import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { KubeClient } from '../controller/kube/client.js';
import { openBrowser } from '../dashboard/open-browser.js';
import { startDashboard } from '../dashboard/server.js';

interface DashboardFlags {
  kubeconfig?: string;
  namespace?: string;
  port: string;
  open: boolean;
}

/** Where the build put the page: dist/dashboard/ui beside dist/cli. */
const UI_DIR = fileURLToPath(new URL('../dashboard/ui/', import.meta.url));

export function registerDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description(
      'Serve a web UI of the fleet on 127.0.0.1, reading the cluster as your kubeconfig user (RBAC decides what it shows).',
    )
    .option('--kubeconfig <path>', 'kubeconfig to use')
    .option('-n, --namespace <namespace>', 'show only this namespace (default: all namespaces)')
    .option('--port <port>', 'port on 127.0.0.1 (0 picks a free one)', '0')
    .option('--no-open', 'print the URL without opening a browser')
    .action(async (flags: DashboardFlags) => {
      if (!existsSync(`${UI_DIR}/index.html`))
        throw new KedgeError(
          ErrorCode.InvalidConfig,
          `the dashboard page is missing from ${UI_DIR}: run npm run build`,
        );
      const dashboard = await startDashboard({
        client: KubeClient.fromConfig(flags.kubeconfig),
        namespace: flags.namespace,
        port: Number(flags.port),
        uiDir: UI_DIR,
      });
      console.log(`kedge dashboard: ${dashboard.url}`);
      if (flags.open && !(await openBrowser(dashboard.url)))
        console.log('kedge dashboard: could not open a browser; open the URL above');
      console.log('Press Ctrl-C to stop.');
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await dashboard.close();
    });
}
