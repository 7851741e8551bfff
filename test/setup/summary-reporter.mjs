// Prints the plain "N passed, N failed" line CI reads, and records it for .ci/run.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    const line = `${results.numPassedTests} passed, ${failed} failed`;
    const dir = path.resolve(import.meta.dirname, '../../.test-artifacts');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'summary.txt'), `${line}\n`);
    console.log(line);
  }
}
