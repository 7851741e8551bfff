import type { Command } from 'commander';
import { createLogger } from '../common/logger.js';
import { loadConfig } from '../edgenode/config.js';
import { runNode } from '../edgenode/node-runner.js';

interface NodeFlags {
  manifest?: string;
  config?: string;
  dataDir?: string;
  runtime?: string;
  deviceId?: string;
  metricsPort?: string;
  stopModulesOnExit?: boolean;
}

function overridesOf(flags: NodeFlags): Record<string, unknown> {
  const overrides: Record<string, unknown> = {};
  const agent: Record<string, unknown> = {};
  if (flags.dataDir) overrides.dataDir = flags.dataDir;
  if (flags.deviceId) overrides.deviceId = flags.deviceId;
  if (flags.runtime) agent.runtime = flags.runtime;
  if (flags.stopModulesOnExit) agent.stopModulesOnExit = true;
  if (Object.keys(agent).length > 0) overrides.agent = agent;
  if (flags.metricsPort !== undefined) overrides.metrics = { port: Number(flags.metricsPort) };
  return overrides;
}

/** `kedge node`: the device side (agent today; hub and cloud link join later). */
export function registerNodeCommand(program: Command): void {
  program
    .command('node')
    .description(
      'Run the modules of an IoT Edge deployment manifest on this device (the kedge agent).',
    )
    .option(
      '-m, --manifest <file>',
      'IoT Edge deployment manifest (standalone mode); watched for changes',
    )
    .option('-c, --config <file>', 'node config YAML (see docs/agent.md)')
    .option('--data-dir <dir>', 'state directory (default /var/lib/kedge)')
    .option('--runtime <runtime>', 'docker (default) or process')
    .option('--device-id <id>', 'device id (default: host name)')
    .option('--metrics-port <port>', 'local /metrics port (default 9600; 0 = any free port)')
    .option(
      '--stop-modules-on-exit',
      'stop the modules on SIGTERM/SIGINT (default: leave them running)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  kedge node --manifest deployment.json --data-dir /var/lib/kedge',
        '  kedge node --config /etc/kedge/node.yaml        # restarts the persisted modules',
        '  KEDGE_AGENT_MAX_RESTARTS=5 kedge node -m deployment.json --runtime process',
        '',
      ].join('\n'),
    )
    .action(async (flags: NodeFlags) => {
      const config = await loadConfig({
        ...(flags.config ? { file: flags.config } : {}),
        overrides: overridesOf(flags),
      });
      const logger = createLogger({ name: 'kedge-node', level: config.logLevel });
      const node = await runNode({
        config,
        logger,
        ...(flags.manifest ? { manifestFile: flags.manifest } : {}),
      });
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string): void => {
          logger.info({ signal }, 'shutting down');
          node.stop().then(resolve, (err: unknown) => {
            logger.error({ err: String(err) }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
    });
}
