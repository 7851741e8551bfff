import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ErrorCode, KedgeError } from '../common/errors.js';
import { routeProblems, validateObject } from './validate.js';

/** The outcome of validating a set of files. */
export interface ValidationReport {
  /** One line per object: `ok` or one line per problem. */
  lines: string[];
  total: number;
  invalid: number;
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Validates every kedge object in the given files, directories or `-` (stdin). */
export async function validateFiles(inputs: string[]): Promise<ValidationReport> {
  const report: ValidationReport = { lines: [], total: 0, invalid: 0 };
  for (const input of inputs) {
    for (const file of await expand(input)) {
      validateText(file, await readInput(file), report);
    }
  }
  return report;
}

/** Validates every document of one YAML/JSON text, appending to `report`. */
export function validateText(file: string, text: string, report: ValidationReport): void {
  const docs = parseAllDocuments(text);
  for (const [index, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      throw new KedgeError(
        ErrorCode.InvalidInput,
        `${file}: malformed YAML at line ${e.linePos?.[0].line ?? '?'}: ${e.message.split('\n')[0]}`,
      );
    }
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) continue;
    report.total++;
    const problems = validateObject(obj);
    if (problems.length === 0) problems.push(...routeProblems(obj as Record<string, unknown>));
    const label = `${file}: ${describe(obj, index)}`;
    if (problems.length === 0) {
      report.lines.push(`${label}: ok`);
      continue;
    }
    report.invalid++;
    for (const p of problems)
      report.lines.push(`${label}: ${p.path ? `${p.path}: ` : ''}${p.message}`);
  }
}

function describe(obj: unknown, index: number): string {
  const o = obj as { kind?: unknown; metadata?: { name?: unknown } };
  const kind = typeof o.kind === 'string' ? o.kind : 'object';
  const name = typeof o.metadata?.name === 'string' ? o.metadata.name : `#${index + 1}`;
  return `${kind}/${name}`;
}

async function expand(input: string): Promise<string[]> {
  if (input === '-') return ['-'];
  const info = await stat(input).catch((cause: unknown) => {
    throw new KedgeError(ErrorCode.NotFound, `${input}: no such file or directory`, { cause });
  });
  if (!info.isDirectory()) return [input];
  const entries = await readdir(input);
  return entries
    .filter((e) => MANIFEST_EXTENSIONS.has(path.extname(e)))
    .sort()
    .map((e) => path.join(input, e));
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
