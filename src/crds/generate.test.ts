import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staleFiles } from './generate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('generated CRD files', () => {
  it('match the CRD sources (run `npm run generate` after changing src/crds)', async () => {
    expect(await staleFiles(root)).toEqual([]);
  });
});
