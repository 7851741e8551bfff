#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../common/errors.js';
import { KEDGE_VERSION } from '../common/version.js';
import { registerClusterCommands } from './cluster.js';
import { registerControllerCommand } from './controller.js';
import { registerDashboardCommand } from './dashboard.js';
import { registerDeviceCommands } from './device.js';
import { registerGatewayCommand } from './gateway.js';
import { registerInvokeCommand } from './invoke.js';
import { registerC2dCommand } from './c2d.js';
import { registerManifestCommands } from './manifest.js';
import { registerNodeCommand } from './node.js';
import { registerRouteCommands } from './route.js';
import { registerUpCommand } from './up.js';
import { registerValidateCommand } from './validate.js';

/** Builds the `kedge` command tree. Exported so tests can drive it in-process. */
export function buildProgram(): Command {
  const program = new Command('kedge')
    .description(
      'Run IoT edge fleets the Azure IoT Edge way, with Kubernetes as the control plane.',
    )
    .version(KEDGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerValidateCommand(program);
  registerClusterCommands(program);
  registerControllerCommand(program);
  registerDashboardCommand(program);
  registerDeviceCommands(program);
  registerGatewayCommand(program);
  registerInvokeCommand(program);
  registerC2dCommand(program);
  registerManifestCommands(program);
  registerNodeCommand(program);
  registerRouteCommands(program);
  registerUpCommand(program);
  return program;
}

/** Runs the CLI; every failure becomes one line on stderr and a non-zero exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed help, the version or a usage error.
      return err.exitCode;
    }
    process.stderr.write(`kedge: ${errorMessage(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
