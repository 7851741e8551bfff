#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { errorMessage } from '../common/errors.js';
import { KEDGE_VERSION } from '../common/version.js';

type Register = (program: Command) => void;

/**
 * Each top-level command and the module that defines it, in `--help` order. Only the module of
 * the command being run is loaded (all of them for help): loading everything, the Kubernetes
 * client above all, takes about a second, which `kedge up` would spend before naming a missing
 * prerequisite.
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  validate: async () => (await import('./validate.js')).registerValidateCommand,
  cluster: async () => (await import('./cluster.js')).registerClusterCommands,
  check: async () => (await import('./check.js')).registerCheckCommand,
  controller: async () => (await import('./controller.js')).registerControllerCommand,
  dashboard: async () => (await import('./dashboard.js')).registerDashboardCommand,
  device: async () => (await import('./device.js')).registerDeviceCommands,
  gateway: async () => (await import('./gateway.js')).registerGatewayCommand,
  invoke: async () => (await import('./invoke.js')).registerInvokeCommand,
  restart: async () => (await import('./invoke.js')).registerRestartCommand,
  c2d: async () => (await import('./c2d.js')).registerC2dCommand,
  twin: async () => (await import('./twin.js')).registerTwinCommand,
  manifest: async () => (await import('./manifest.js')).registerManifestCommands,
  node: async () => (await import('./node.js')).registerNodeCommand,
  route: async () => (await import('./route.js')).registerRouteCommands,
  'support-bundle': async () => (await import('./support-bundle.js')).registerSupportBundleCommand,
  up: async () => (await import('./up.js')).registerUpCommand,
};

/**
 * Builds the `kedge` command tree for `argv`: the command it names, or every command when it names
 * none (help, version, a typo). Exported so tests can drive it in-process.
 */
export async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('kedge')
    .description(
      'Run IoT edge fleets the Azure IoT Edge way, with Kubernetes as the control plane.',
    )
    .version(KEDGE_VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const named = argv[2] !== undefined ? COMMANDS[argv[2]] : undefined;
  const loaders = named ? [named] : Object.values(COMMANDS);
  const registers = await Promise.all(loaders.map((load) => load()));
  for (const register of registers) register(program);
  return program;
}

/** Runs the CLI; every failure becomes one line on stderr and a non-zero exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv);
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
