// Argo CD health checks evaluated as Argo CD does (global `obj`, the chunk returns
// {status, message}), on a real Lua interpreter, for the health test and the e2e rollout test.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Debian's Lua interpreter (package lua5.4). */
const LUA = 'lua5.4';

/** A Lua literal for a JSON-like value; strings are escaped byte by byte. */
function toLua(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') {
    const bytes = [...Buffer.from(value, 'utf8')];
    return `"${bytes.map((b) => (b >= 32 && b < 127 && b !== 34 && b !== 92 ? String.fromCharCode(b) : `\\${b}`)).join('')}"`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v != null);
  return `{${entries.map(([k, v]) => `[${toLua(k)}] = ${toLua(v)}`).join(', ')}}`;
}

/** Runs a health script the way Argo CD does: global `obj`, the chunk returns `{status, message}`. */
export async function health(
  script: string,
  obj: unknown,
): Promise<{ status: string; message: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-lua-'));
  const harness = path.join(dir, 'harness.lua');
  await writeFile(
    harness,
    `obj = ${toLua(obj)}\nlocal hs = dofile(${toLua(script)})\nio.write(hs.status, "\\n", hs.message or "", "\\n")\n`,
  );
  return new Promise((resolve, reject) => {
    execFile(LUA, [harness], (err, stdout, stderr) => {
      if (err) return reject(new Error(`${LUA} failed: ${stderr}`));
      const [status = '', message = ''] = stdout.split('\n');
      resolve({ status, message });
    });
  });
}
