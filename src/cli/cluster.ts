import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import {
  readClusterState,
  runClusterForeground,
  startClusterInBackground,
  stopBackgroundCluster,
} from '../localcluster/daemon.js';

const progress = (line: string): void => void process.stderr.write(`${line}\n`);

export function registerClusterCommands(program: Command): void {
  const cluster = program
    .command('cluster')
    .description(
      'Run a local Kubernetes control plane (etcd, apiserver, scheduler, controller-manager) with the kedge CRDs, and a nats-server with JetStream for the device plane.',
    );
  cluster
    .command('up')
    .description(
      'Start the local control plane and nats-server in the background and print how to reach them.',
    )
    .option('--foreground', 'run in this process until interrupted')
    .addHelpText(
      'after',
      '\nExample:\n  kedge cluster up && export KUBECONFIG=~/.kedge/local-cluster/kubeconfig\n',
    )
    .action(async (opts: { foreground?: boolean }) => {
      if (opts.foreground) {
        const local = await runClusterForeground(progress);
        progress(`[control-plane] ready at ${local.cp.server}`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await local.stop();
        return;
      }
      const state = await startClusterInBackground(
        fileURLToPath(new URL('./main.js', import.meta.url)),
        progress,
      );
      console.log(`Local cluster running at ${state.server}`);
      console.log(`export KUBECONFIG=${state.kubeconfigPath}`);
      console.log(`export PATH=${state.binDir}:$PATH   # kubectl and helm matching the cluster`);
      console.log(`export KEDGE_NATS_URL=${state.natsUrl}   # for kedge controller and gateway`);
    });
  cluster
    .command('down')
    .description('Stop the local control plane and nats-server started by `kedge cluster up`.')
    .addHelpText('after', '\nExample:\n  kedge cluster down\n')
    .action(async () => {
      console.log(
        (await stopBackgroundCluster()) ? 'Local cluster stopped.' : 'No local cluster is running.',
      );
    });
  cluster
    .command('status')
    .description('Show whether the local control plane runs.')
    .addHelpText('after', '\nExample:\n  kedge cluster status\n')
    .action(async () => {
      const state = await readClusterState();
      console.log(
        state
          ? `running at ${state.server} (kubeconfig ${state.kubeconfigPath}, NATS ${state.natsUrl})`
          : 'not running',
      );
    });
}
