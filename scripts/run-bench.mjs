// `npm run bench -- <name> [args…]`: runs dist-bench/bench/<name>.js after the bench build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

const [name, ...args] = process.argv.slice(2);
const dir = path.resolve(import.meta.dirname, '../dist-bench/bench');
const available = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.slice(0, -3))
  : [];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>\navailable: ${available.join(', ') || '(none)'}`);
  process.exit(2);
}
const result = spawnSync(process.execPath, ['--expose-gc', path.join(dir, `${name}.js`), ...args], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
