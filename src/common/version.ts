import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The nearest package.json above this module: `dist/common` → the package root, and also
 * `dist-bench/src/common` (benchmark build) → the package root.
 */
export function packageJsonPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('kedge: package.json not found above the install');
    dir = parent;
  }
}

/** kedge's version, from package.json; reported as the node's kubeletVersion and agent version. */
export const KEDGE_VERSION: string = (
  JSON.parse(readFileSync(packageJsonPath(), 'utf8')) as { version: string }
).version;

/** The package (or repository) root: where deploy/, charts/ and samples/ live. */
export const PACKAGE_ROOT: string = path.dirname(packageJsonPath());
