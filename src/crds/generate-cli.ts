import { writeGenerated } from './generate.js';

/** `npm run generate`: rewrites deploy/crds, charts/kedge/crds and the CRD TypeScript types. */
for (const file of await writeGenerated(process.cwd())) console.log(`wrote ${file}`);
