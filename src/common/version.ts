import { readFileSync } from 'node:fs';

/** kedge's version, from package.json; reported as the node's kubeletVersion and agent version. */
export const KEDGE_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;
