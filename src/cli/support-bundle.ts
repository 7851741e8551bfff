import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';

interface BundleFlags {
  config: string;
  output?: string;
  since: string;
}

function defaultOutput(): string {
  return `kedge-support-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`;
}

/** `kedge support-bundle`: logs, redacted config, check output, metrics and versions in one archive. */
export function registerSupportBundleCommand(program: Command): void {
  program
    .command('support-bundle')
    .description(
      "Collect this device's logs, config (secrets redacted), kedge check output, metrics and versions into one .tar.gz.",
    )
    .option('-c, --config <file>', 'node config YAML', '/etc/kedge/node.yaml')
    .option('-o, --output <file>', 'archive to write (default kedge-support-<time>.tar.gz)')
    .option('--since <duration>', 'logs from this long ago: 90s, 30m, 1h, 2d', '1h')
    .addHelpText(
      'after',
      '\nExample:\n  sudo kedge support-bundle --since 2h --output /tmp/kedge-support.tar.gz\n',
    )
    .action(async (flags: BundleFlags) => {
      const { parseSince, supportBundle } = await import('../check/support-bundle.js');
      const sinceSecs = parseSince(flags.since);
      const output = flags.output ?? defaultOutput();
      await writeFile(output, await supportBundle({ configFile: flags.config, sinceSecs }), {
        mode: 0o600,
      });
      process.stdout.write(`wrote ${output}\n`);
    });
}
