import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PACKAGE_ROOT } from '../src/localcluster/kubectl.js';

const CLI = path.join(PACKAGE_ROOT, 'dist/cli/main.js');

function kedge(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? '');
  });
}

async function tempFile(name: string, content: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-validate-'));
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

function expectOneCleanLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('kedge validate on bad input', () => {
  it('reports malformed YAML in one line with the line number', async () => {
    const file = await tempFile('bad.yaml', 'kind: EdgeDevice\nmetadata: {name: x\nspec: [\n');
    const res = await kedge(['validate', '-f', file]);
    expect(res.code).not.toBe(0);
    expectOneCleanLine(res.stderr, /^kedge: .*bad\.yaml: malformed YAML at line \d+/);
  });

  it('reports an unknown kind naming the kind', async () => {
    const file = await tempFile(
      'unknown.yaml',
      'apiVersion: kedge.io/v1alpha1\nkind: EdgeGizmo\nmetadata:\n  name: g\nspec: {}\n',
    );
    const res = await kedge(['validate', '-f', file]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(
      'kind: unknown kind "EdgeGizmo"; expected one of EdgeDevice, EdgeDeployment, Route',
    );
    expectOneCleanLine(res.stderr, /^kedge: 1 of 1 objects are invalid$/);
  });

  it('reports a missing file in one line', async () => {
    const res = await kedge(['validate', '-f', '/no/such/file.yaml']);
    expect(res.code).toBe(1);
    expectOneCleanLine(res.stderr, /^kedge: \/no\/such\/file\.yaml: no such file or directory$/);
  });

  it('reads stdin and names the object and field of each problem', async () => {
    const doc =
      'apiVersion: kedge.io/v1alpha1\nkind: Route\nmetadata:\n  name: r\nspec:\n  deviceSelector: {}\n  route: FROM /messages/* INTO $upstream\n  priority: 12\n';
    const res = await kedge(['validate', '-f', '-'], doc);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('-: Route/r: spec.priority: must be <= 9');
  });

  it('compiles routes: a $twin condition is refused with the field and offset', async () => {
    const doc =
      'apiVersion: kedge.io/v1alpha1\nkind: EdgeDeployment\nmetadata:\n  name: d\nspec:\n  selector: {}\n  routes:\n    - name: hot\n      from: /messages/*\n      condition: "$twin.tags.site = \'lyon\'"\n      to: $upstream\n';
    const res = await kedge(['validate', '-f', await tempFile('twin.yaml', doc)]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(
      /twin\.yaml: EdgeDeployment\/d: spec\.routes\[0\]\.condition: route does not compile at offset 0: \$twin conditions are not supported/,
    );
    expectOneCleanLine(res.stderr, /^kedge: 1 of 1 objects are invalid$/);
  });

  it('accepts a valid multi-document file', async () => {
    const docs = [
      'apiVersion: kedge.io/v1alpha1\nkind: EdgeDevice\nmetadata:\n  name: a\nspec: {}',
      'apiVersion: kedge.io/v1alpha1\nkind: EdgeDevice\nmetadata:\n  name: b\nspec: {}',
    ].join('\n---\n');
    const res = await kedge(['validate', '-f', await tempFile('ok.yaml', docs)]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('2 objects valid');
  });
});
