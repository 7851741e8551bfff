import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';

const UNIT = path.join(PACKAGE_ROOT, 'packaging/systemd/kedge-node.service');

/** `systemd-analyze verify` (Debian package systemd); it exits 0 on warnings, so output counts. */
function verify(file: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', ['verify', '--man=no', file], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

async function variant(name: string, edit: (text: string) => string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-unit-'));
  const file = path.join(dir, name);
  await writeFile(file, edit(await readFile(UNIT, 'utf8')));
  return file;
}

describe('packaging/systemd/kedge-node.service', () => {
  it('passes systemd-analyze verify with no complaint', async () => {
    // verify wants the unit file name to end in .service; a copy keeps the real one untouched.
    const res = await verify(await variant('kedge-node.service', (t) => t));
    expect(res).toEqual({ code: 0, output: '' });
  });

  it('is checked for real: a bad directive or value is reported', async () => {
    const typo = await verify(
      await variant('kedge-node.service', (t) => t.replace('KillMode=', 'KillMod=')),
    );
    expect(typo.output).toMatch(/Unknown key 'KillMod'/);
    const bad = await verify(
      await variant('kedge-node.service', (t) => t.replace('Restart=always', 'Restart=sometimes')),
    );
    expect(bad.output).toMatch(/restart specifier/);
  });

  it('runs kedge node with the documented config, restarts forever, and leaves modules running', async () => {
    const text = await readFile(UNIT, 'utf8');
    expect(text).toMatch(
      /^ExecStart=\/usr\/bin\/env kedge node --config \/etc\/kedge\/node\.yaml$/m,
    );
    expect(text).toMatch(/^Restart=always$/m);
    expect(text).toMatch(/^KillMode=process$/m);
    expect(text).toMatch(/^StateDirectory=kedge$/m);
    expect(text).toMatch(/^WantedBy=multi-user\.target$/m);
    // Hardening must not hide the Docker socket or forbid unix sockets.
    expect(text).not.toMatch(
      /^(PrivateNetwork|PrivateDevices|ProtectSystem=strict|InaccessiblePaths=.*\/run)/m,
    );
    expect(text).toMatch(/^RestrictAddressFamilies=.*AF_UNIX/m);
  });
});
