import type { Command } from 'commander';
import { anyFailed, formatResults, type CheckResult } from '../check/result.js';

interface CheckFlags {
  config: string;
  cluster?: boolean;
  kubeconfig?: string;
  namespace: string;
  device?: string;
}

async function clusterResults(flags: CheckFlags): Promise<CheckResult[]> {
  const { KubeClient } = await import('../controller/kube/client.js');
  const { runClusterChecks } = await import('../check/cluster.js');
  return runClusterChecks({
    client: KubeClient.fromConfig(flags.kubeconfig),
    namespace: flags.namespace,
    ...(flags.device ? { device: flags.device } : {}),
  });
}

async function deviceResults(flags: CheckFlags): Promise<CheckResult[]> {
  const { runDeviceChecks } = await import('../check/device.js');
  return runDeviceChecks({ configFile: flags.config });
}

/** `kedge check`: diagnoses a device (default) or the cluster side (`--cluster`). */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description(
      'Diagnose this device (config, gateway link, certificates, clock, disk, engine, ports) or, with --cluster, the cluster side; every failure comes with a fix hint.',
    )
    .option('-c, --config <file>', 'node config YAML', '/etc/kedge/node.yaml')
    .option('--cluster', 'check the cluster side instead, with a kubeconfig')
    .option(
      '--kubeconfig <file>',
      'with --cluster: kubeconfig (default KUBECONFIG or ~/.kube/config)',
    )
    .option(
      '-n, --namespace <ns>',
      'with --cluster: namespace of kedge controller and gateways',
      'kedge-system',
    )
    .option('--device <ns/name>', 'with --cluster: also check this EdgeDevice')
    .addHelpText(
      'after',
      [
        '',
        'Exits 1 when a check fails (warnings do not count).',
        '',
        'Examples:',
        '  sudo kedge check                                 # on the device, reads /etc/kedge/node.yaml',
        '  kedge check --config ./node.yaml',
        '  kedge check --cluster --device factory/sensor-1  # from a machine with cluster access',
        '',
      ].join('\n'),
    )
    .action(async (flags: CheckFlags) => {
      const results = flags.cluster ? await clusterResults(flags) : await deviceResults(flags);
      process.stdout.write(formatResults(results));
      if (anyFailed(results)) process.exitCode = 1;
    });
}
