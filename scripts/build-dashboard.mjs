// Bundles the dashboard page (src/dashboard/ui) into dist/dashboard/ui with esbuild, as part of
// `npm run build`: one script and one stylesheet, everything included, so the page needs no
// network when it is served.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const source = path.join(root, 'src/dashboard/ui');
const out = path.join(root, 'dist/dashboard/ui');

await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: path.join(source, 'main.tsx'), 'app-style': path.join(source, 'app.css') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  entryNames: '[name]',
  logLevel: 'warning',
});
await copyFile(path.join(source, 'index.html'), path.join(out, 'index.html'));
