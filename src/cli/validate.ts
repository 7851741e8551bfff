import type { Command } from 'commander';
import { validateFiles } from '../crds/validate-files.js';

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description(
      'Check kedge custom resources offline against the CRD schemas and CEL rules, and compile their routes (errors give the offset).',
    )
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin (repeatable)')
    .addHelpText(
      'after',
      '\nExamples:\n  kedge validate -f device.yaml\n  cat deploy.yaml | kedge validate -f -\n',
    )
    .action(async (opts: { filename: string[] }) => {
      const report = await validateFiles(opts.filename);
      for (const line of report.lines) console.log(line);
      if (report.invalid > 0) {
        process.stderr.write(`kedge: ${report.invalid} of ${report.total} objects are invalid\n`);
        process.exitCode = 1;
      } else {
        console.log(`${report.total} objects valid`);
      }
    });
}
