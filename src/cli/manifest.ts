import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, KedgeError } from '../common/errors.js';
import {
  importDocument,
  parsePriority,
  parseSelector,
  parseSetPairs,
  toYaml,
} from '../crds/import/index.js';

interface ImportFlags {
  namespace?: string;
  name?: string;
  selector?: string;
  registrySecret?: string;
  priority?: string;
  set: string[];
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((cause: unknown) => {
    throw new KedgeError(ErrorCode.NotFound, `${file}: cannot read the file`, { cause });
  });
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new KedgeError(
      ErrorCode.InvalidInput,
      `${file}: not JSON (${(cause as Error).message})`,
      {
        cause,
      },
    );
  }
}

/** `kedge manifest import`: an Azure IoT Edge deployment manifest to EdgeDeployment YAML. */
export function registerManifestCommands(program: Command): void {
  const manifest = program
    .command('manifest')
    .description('Work with Azure IoT Edge deployment manifests.');
  manifest
    .command('import')
    .description(
      'Convert an Azure IoT Edge deployment manifest into EdgeDeployment YAML on stdout; anything not carried over is named on stderr.',
    )
    .argument(
      '<deployment.json>',
      'the manifest: {modulesContent}, its inner form, {content: {modulesContent}} or an at-scale deployment; layered deployments and deployment.template.json included',
    )
    .option('-n, --namespace <ns>', 'metadata.namespace of the EdgeDeployment (default: none)')
    .option('--name <name>', 'metadata.name (default: the at-scale id, else the file name)')
    .option(
      '--selector <k=v,...>',
      'EdgeDevice labels the deployment targets (default: every device)',
    )
    .option(
      '--set <NAME=VALUE>',
      'fill the ${NAME} / $NAME placeholders of a deployment.template.json (repeatable; the environment fills the rest; *.template.json files are filled even without it)',
      collect,
      [],
    )
    .option(
      '--priority <n>',
      'spec.priority (default: the at-scale priority, else none); layered deployments need one above their base',
    )
    .option(
      '--registry-secret <name>',
      'dockerconfigjson Secret that holds the registry credentials (default: <name>-registry)',
    )
    .addHelpText(
      'after',
      '\nExample:\n  kedge manifest import deployment.json -n factory --selector site=lyon > deployment.yaml\n  kubectl apply -f deployment.yaml\n  kedge manifest import layered.json --priority 10 --selector site=lyon > layer.yaml\n  kedge manifest import deployment.template.json --set CONTAINER_REGISTRY_ADDRESS=myacr.azurecr.io > deployment.yaml\n',
    )
    .action(async (file: string, flags: ImportFlags) => {
      const result = importDocument(await readJson(file), {
        set: parseSetPairs(flags.set),
        env: process.env,
        priority: flags.priority === undefined ? undefined : parsePriority(flags.priority),
        namespace: flags.namespace,
        name: flags.name,
        selector: flags.selector === undefined ? undefined : parseSelector(flags.selector),
        registrySecret: flags.registrySecret,
        sourceName: path.basename(file, path.extname(file)),
      });
      for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(toYaml(result.objects));
    });
}
