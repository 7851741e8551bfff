import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { docker } from './docker.js';
import { PACKAGE_ROOT } from './kubectl.js';

const run = promisify(execFile);

/** Images built locally from files on this machine, with no registry: the sample modules and a shell. */
export const LOCAL_IMAGES = {
  /** A static busybox: `sh`, `sleep`, `echo`, `wget`, `nc`… */
  busybox: 'kedge-local/busybox:1',
  /** Node.js plus the Azure IoT device SDK; the sample modules (samples/modules) are in /app/modules. */
  node: 'kedge-local/node-module:1',
} as const;

const NODE_SDK_PACKAGES = ['azure-iot-device', 'azure-iot-device-mqtt', 'azure-iot-common'];
const BUSYBOX = '/bin/busybox';
const HASH_LABEL = 'io.kedge.content-hash';

/** Builds the local images unless images with the same content hash exist. */
export async function ensureLocalImages(): Promise<void> {
  await ensureImage(LOCAL_IMAGES.busybox, busyboxRootfs, ['CMD ["/bin/sh"]']);
  await ensureImage(LOCAL_IMAGES.node, nodeRootfs, [
    'ENV NODE_PATH=/app/node_modules',
    'WORKDIR /app',
    'CMD ["node", "/app/modules/sensor.mjs"]',
  ]);
}

type RootfsBuilder = (root: string) => Promise<void>;

async function ensureImage(tag: string, build: RootfsBuilder, changes: string[]): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'kedge-image-'));
  try {
    const root = path.join(dir, 'rootfs');
    await mkdir(root);
    await build(root);
    const hash = (
      await run('bash', [
        '-c',
        `cd ${root} && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum`,
      ])
    ).stdout.slice(0, 16);
    const existing = await docker([
      'image',
      'inspect',
      '--format',
      `{{index .Config.Labels "${HASH_LABEL}"}}`,
      tag,
    ]).catch(() => '');
    if (existing === hash) return;
    const flags = [...changes, `LABEL ${HASH_LABEL}=${hash}`].flatMap((c) => ['--change', c]);
    await run('bash', [
      '-c',
      `tar -C ${root} -c . | docker import ${flags.map(quote).join(' ')} - ${tag}`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

async function busyboxRootfs(root: string): Promise<void> {
  if (!existsSync(BUSYBOX))
    throw new Error('busybox is not installed: apt-get install busybox-static');
  await mkdir(path.join(root, 'bin'));
  await mkdir(path.join(root, 'tmp'));
  await mkdir(path.join(root, 'etc'));
  await cp(BUSYBOX, path.join(root, 'bin/busybox'));
  const applets = (await run(BUSYBOX, ['--list'])).stdout.split('\n').filter(Boolean);
  for (const applet of applets) {
    if (applet !== 'busybox') await symlink('busybox', path.join(root, 'bin', applet));
  }
  await writeFile(
    path.join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
  );
  await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
}

async function nodeRootfs(root: string): Promise<void> {
  await busyboxRootfs(root);
  const nodeBin = realpathSync(process.execPath);
  await copyWithLibraries(nodeBin, root, '/usr/bin/node');
  await mkdir(path.join(root, 'etc/ssl/certs'), { recursive: true });
  const modulesDir = path.join(root, 'app/node_modules');
  for (const dir of await dependencyClosure(NODE_SDK_PACKAGES)) {
    const rel = path.relative(path.join(PACKAGE_ROOT, 'node_modules'), dir);
    // Nested node_modules are visited as packages of their own.
    const nested = path.join(dir, 'node_modules');
    await cp(dir, path.join(modulesDir, rel), {
      recursive: true,
      dereference: true,
      filter: (src) => !src.startsWith(nested),
    });
  }
  await cp(path.join(PACKAGE_ROOT, 'samples/modules'), path.join(root, 'app/modules'), {
    recursive: true,
  });
}

async function copyWithLibraries(binary: string, root: string, target: string): Promise<void> {
  await mkdir(path.join(root, path.dirname(target)), { recursive: true });
  await cp(binary, path.join(root, target));
  const { stdout } = await run('ldd', [binary]);
  for (const match of stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) {
    const lib = match[1]!;
    const dest = path.join(root, lib);
    await mkdir(path.dirname(dest), { recursive: true });
    await cp(realpathSync(lib), dest);
  }
}

/** Package directories needed to run `roots`, resolved the way Node resolves them. */
async function dependencyClosure(roots: string[]): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (name: string, fromDir: string): Promise<void> => {
    const dir = resolvePackageDir(name, fromDir);
    if (!dir || seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies }))
      await visit(dep, dir);
  };
  for (const name of roots) await visit(name, PACKAGE_ROOT);
  return [...seen].sort();
}

function resolvePackageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir) || dir === PACKAGE_ROOT) {
      const top = path.join(PACKAGE_ROOT, 'node_modules', name);
      return existsSync(path.join(top, 'package.json')) ? top : undefined;
    }
  }
}

/** Lists the images built by {@link ensureLocalImages}. */
export async function listLocalImages(): Promise<string[]> {
  return (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', 'kedge-local/*']))
    .split('\n')
    .filter(Boolean);
}
